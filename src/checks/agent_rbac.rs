//! `agent.rbac`: what the agent's ServiceAccount may do, from the Roles and bindings of the cluster,
//! evaluated here as the RBAC authorizer would (GETs only: no access review is created).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{
    Cx, Outcome,
    agent::{agent_deployment, agent_env},
    cluster_cx::release,
    kube_failed,
};
use crate::probes::kube::KubeError;

/// A permission: API group, resource (`pods/log` for a subresource), verb; and whether the agent
/// cannot work without it.
struct Need {
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    required: bool,
}

const fn need(
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    required: bool,
) -> Need {
    Need {
        group,
        resource,
        verb,
        required,
    }
}

/// What Prefect 1's Kubernetes agent calls: it creates, lists, reads and deletes its Jobs and lists
/// their pods; it lists a pending pod's events and reads pods' logs only to report them.
const NEEDS: &[Need] = &[
    need("batch", "jobs", "create", true),
    need("batch", "jobs", "get", true),
    need("batch", "jobs", "list", true),
    need("batch", "jobs", "delete", true),
    need("", "pods", "get", true),
    need("", "pods", "list", true),
    need("", "events", "list", false),
    need("", "pods/log", "get", false),
];

impl Need {
    fn text(&self) -> String {
        format!("{} {}", self.verb, self.resource)
    }
}

/// Does a rule allow `n`? As the RBAC authorizer matches: `*` wildcards, `*/sub` for a
/// subresource of anything; a rule limited to resourceNames grants neither create nor list, and
/// only some objects for the rest, so it is not counted.
fn allows(rule: &PolicyRule, n: &Need) -> bool {
    let any = |list: &Option<Vec<String>>, want: &str| {
        list.iter().flatten().any(|x| x == "*" || x == want)
    };
    let sub = n.resource.split_once('/').map(|(_, s)| s);
    let resource_ok = rule.resources.iter().flatten().any(|r| {
        r == "*" || r == n.resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s))
    });
    let named = rule.resource_names.as_ref().is_some_and(|r| !r.is_empty());
    any(&rule.api_groups, n.group)
        && resource_ok
        && rule.verbs.iter().any(|v| v == "*" || v == n.verb)
        && !named
}

/// Does a binding's subject name the ServiceAccount `ns/name`? A ServiceAccount subject of a
/// RoleBinding without a namespace means the binding's own.
fn names(subject: &Subject, binding_ns: Option<&str>, ns: &str, name: &str) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            subject.name == name
                && subject
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .or(binding_ns)
                    == Some(ns)
        }
        "User" => subject.name == format!("system:serviceaccount:{ns}:{name}"),
        "Group" => {
            matches!(
                subject.name.as_str(),
                "system:serviceaccounts" | "system:authenticated"
            ) || subject.name == format!("system:serviceaccounts:{ns}")
        }
        _ => false,
    }
}

/// A binding that applies, with the rules of its role (`None`: the role does not exist).
struct Grant {
    via: String,
    rules: Option<Vec<PolicyRule>>,
    /// Bound only through a group (every account, every service account …), not by name.
    by_group: bool,
}

async fn role_rules(
    k: &super::cluster_cx::KubeCx,
    ns: &str,
    r: &RoleRef,
) -> Result<Option<Vec<PolicyRule>>, KubeError> {
    Ok(match r.kind.as_str() {
        "Role" => k
            .probe
            .get::<Role>(ns, &r.name)
            .await?
            .map(|r| r.rules.unwrap_or_default()),
        _ => k
            .probe
            .get_cluster::<ClusterRole>(&r.name)
            .await?
            .map(|r| r.rules.unwrap_or_default()),
    })
}

pub async fn agent_rbac(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let Some(dep) = agent_deployment(f) else {
        return super::agent::no_agent(f);
    };
    let spec = &dep["spec"]["template"]["spec"];
    let sa_name = spec["serviceAccountName"]
        .as_str()
        .or(spec["serviceAccount"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    let sa_ns = f.release.namespace.clone();
    let job_ns = agent_env(dep, "NAMESPACE")
        .unwrap_or(&f.release.namespace)
        .to_string();
    let sa = format!("{sa_ns}/{sa_name}");

    let rbs = match k.probe.list::<RoleBinding>(Some(&job_ns), "").await {
        Ok(r) => r,
        Err(e) => {
            return kube_failed(&format!("list the rolebindings in namespace {job_ns}"), &e);
        }
    };
    // Cluster-wide bindings may be unreadable to the doctor; that is said if it matters.
    let crbs = k.probe.list_cluster::<ClusterRoleBinding>().await;
    let mut grants: Vec<Grant> = Vec::new();
    let mut cache: BTreeMap<(String, String), Option<Vec<PolicyRule>>> = BTreeMap::new();
    let mut bound: Vec<(String, RoleRef, bool)> = Vec::new();
    let by_group = |subjects: &Option<Vec<Subject>>, ns: Option<&str>| {
        !subjects
            .iter()
            .flatten()
            .any(|s| s.kind != "Group" && names(s, ns, &sa_ns, &sa_name))
    };
    for b in &rbs {
        let ns = b.metadata.namespace.as_deref();
        if b.subjects
            .iter()
            .flatten()
            .any(|s| names(s, ns, &sa_ns, &sa_name))
        {
            let via = format!(
                "RoleBinding {} → {} {}",
                b.metadata.name.as_deref().unwrap_or("?"),
                b.role_ref.kind,
                b.role_ref.name
            );
            bound.push((via, b.role_ref.clone(), by_group(&b.subjects, ns)));
        }
    }
    for b in crbs.as_deref().unwrap_or_default() {
        if b.subjects
            .iter()
            .flatten()
            .any(|s| names(s, None, &sa_ns, &sa_name))
        {
            let via = format!(
                "ClusterRoleBinding {} → ClusterRole {}",
                b.metadata.name.as_deref().unwrap_or("?"),
                b.role_ref.name
            );
            bound.push((via, b.role_ref.clone(), by_group(&b.subjects, None)));
        }
    }
    for (via, r, by_group) in bound.into_iter().take(50) {
        let key = (r.kind.clone(), r.name.clone());
        let rules = match cache.get(&key) {
            Some(rules) => rules.clone(),
            None => match role_rules(k, &job_ns, &r).await {
                Ok(rules) => {
                    cache.insert(key, rules.clone());
                    rules
                }
                Err(e) => return kube_failed(&format!("read {} {}", r.kind, r.name), &e),
            },
        };
        grants.push(Grant {
            via,
            rules,
            by_group,
        });
    }
    let granted = |n: &Need| {
        grants
            .iter()
            .any(|g| g.rules.iter().flatten().any(|rule| allows(rule, n)))
    };
    let missing: Vec<&Need> = NEEDS.iter().filter(|n| n.required && !granted(n)).collect();
    let advisory: Vec<&Need> = NEEDS
        .iter()
        .filter(|n| !n.required && !granted(n))
        .collect();
    // The bindings that matter: those naming the agent's account, granting something it needs, or
    // naming a role that does not exist. A real cluster binds every account to its defaults
    // (system:basic-user, system:discovery … through system:authenticated), which grant none of it.
    let vias: Vec<String> = grants
        .iter()
        .filter(|g| {
            !g.by_group
                || g.rules.as_ref().is_none_or(|rules| {
                    rules
                        .iter()
                        .any(|rule| NEEDS.iter().any(|n| allows(rule, n)))
                })
        })
        .map(|g| g.via.clone())
        .collect();
    let dangling: Vec<String> = grants
        .iter()
        .filter(|g| g.rules.is_none())
        .map(|g| g.via.clone())
        .collect();
    let join = |v: &[&Need]| v.iter().map(|n| n.text()).collect::<Vec<_>>().join(", ");
    let through = if grants.is_empty() {
        "no Role or ClusterRole is bound to it".to_string()
    } else if vias.is_empty() {
        format!(
            "none of the {} roles bound to it grants any of these",
            grants.len()
        )
    } else {
        format!("bound: {}", vias.join("; "))
    };
    let evidence = |o: Outcome| {
        o.with("service_account", sa.clone())
            .with("job_namespace", job_ns.clone())
            .with("bindings", vias.clone())
            .var("agent_sa", sa.clone())
            .var("agent_sa_name", sa_name.clone())
            .var("job_namespace", job_ns.clone())
    };
    if missing.is_empty() {
        let note = if advisory.is_empty() {
            String::new()
        } else {
            format!(
                "; it may not {} (the agent only reports those in flow run logs)",
                join(&advisory)
            )
        };
        return evidence(Outcome::pass(format!(
            "service account {sa} may create, get, list and delete jobs and get and list pods in \
             namespace {job_ns} ({through}){note}"
        )));
    }
    if let Err(e) = &crbs {
        return evidence(kube_failed("list the clusterrolebindings", e).with(
            "missing_in_namespace",
            missing.iter().map(|n| n.text()).collect::<Vec<_>>(),
        ));
    }
    let dangling_text = if dangling.is_empty() {
        String::new()
    } else {
        format!("; the role of {} does not exist", dangling.join("; "))
    };
    evidence(
        Outcome::finding(format!(
            "service account {sa} may not {} in namespace {job_ns}, so the agent cannot run flows \
             as Jobs ({through}{dangling_text})",
            join(&missing)
        ))
        .with(
            "missing",
            missing.iter().map(|n| n.text()).collect::<Vec<_>>(),
        )
        .var("missing_permissions", join(&missing)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..PolicyRule::default()
        }
    }

    #[test]
    fn rules_match_as_the_authorizer_does() {
        let jobs = need("batch", "jobs", "create", true);
        let log = need("", "pods/log", "get", false);
        assert!(allows(
            &rule(&["batch", "extensions"], &["jobs"], &["*"]),
            &jobs
        ));
        assert!(allows(&rule(&["*"], &["*"], &["*"]), &jobs));
        assert!(!allows(&rule(&["extensions"], &["jobs"], &["*"]), &jobs));
        assert!(!allows(
            &rule(&["batch"], &["jobs"], &["get", "list"]),
            &jobs
        ));
        assert!(
            !allows(&rule(&[""], &["pods"], &["*"]), &log),
            "pods does not cover pods/log"
        );
        assert!(allows(&rule(&[""], &["*/log"], &["get"]), &log));
        let mut named = rule(&["batch"], &["jobs"], &["*"]);
        named.resource_names = Some(vec!["one".into()]);
        assert!(!allows(&named, &jobs));
    }

    #[test]
    fn subjects_name_the_account() {
        let sa = |ns: Option<&str>| Subject {
            kind: "ServiceAccount".into(),
            name: "agent".into(),
            namespace: ns.map(str::to_string),
            ..Subject::default()
        };
        assert!(names(&sa(None), Some("prod"), "prod", "agent"));
        assert!(!names(&sa(None), Some("dev"), "prod", "agent"));
        assert!(!names(&sa(None), None, "prod", "agent"));
        assert!(names(&sa(Some("prod")), Some("dev"), "prod", "agent"));
        let group = Subject {
            kind: "Group".into(),
            name: "system:serviceaccounts:prod".into(),
            ..Subject::default()
        };
        assert!(names(&group, None, "prod", "agent"));
    }
}
