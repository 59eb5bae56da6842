//! The `kube.*` checks: the Helm release and what it runs, read from the cluster. Every read is a GET
//! or LIST; RBAC refusals make the check `skip` naming what it needed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use serde_json::{Value, json};

use super::{
    Cx, Outcome,
    cluster_cx::{NO_CLUSTER, image_tag, pod_name, release},
    kube_failed,
    logs::redact_log,
};
use crate::{
    chart::facts::{SecretKeys, judge_secret_keys, lookup_bool},
    targets::release::{Discovery, pod_ready, secret_data},
};

pub async fn kube_release(cx: std::sync::Arc<Cx>) -> Outcome {
    let k = match cx.kube.or_skip("cluster", NO_CLUSTER) {
        Ok(k) => k,
        Err(o) => return o,
    };
    let ctx = format!("context {}", k.probe.context);
    match k.discovery.as_ref() {
        Discovery::Release(f) => {
            let r = &f.release;
            let what = format!(
                "release {} (chart {}-{}, app {}) revision {} in namespace {}",
                r.name, r.chart_name, r.chart_version, r.app_version, r.revision, r.namespace
            );
            let desc = if r.description.is_empty() {
                String::new()
            } else {
                format!(": {}", r.description)
            };
            let out = match r.status.as_str() {
                "deployed" => {
                    let mut o = Outcome::pass(format!("{what} is deployed"));
                    if let Some(e) = &f.manifest_error {
                        o = Outcome::warn(format!(
                            "{what} is deployed, but its manifest cannot be read ({e}); checks that read it fall back to the values"
                        ));
                    }
                    o
                }
                s if s.starts_with("pending-") => {
                    Outcome::finding(format!("{what} is stuck in {s}{desc}")).fix("pending")
                }
                s => Outcome::finding(format!("{what} is {s}{desc}")).fix("failed"),
            };
            out.with("release", r.name.clone())
                .with("namespace", r.namespace.clone())
                .with("revision", r.revision)
                .with("status", r.status.clone())
                .with("chart_version", r.chart_version.clone())
                .with("app_version", r.app_version.clone())
                .with("values_generation", f.db.generation.label())
                .var("status", r.status.clone())
        }
        Discovery::NoRelease { searched } => Outcome::skip(format!(
            "no Prefect Server (chart prefect-server) release in {searched} ({ctx}); checked the local defaults instead"
        )),
        Discovery::NotFound { reason, .. } => Outcome::finding(reason.clone()).fix("not_found"),
        Discovery::Several(listed) => {
            let list: Vec<String> = listed.iter().map(|l| l.text.clone()).collect();
            Outcome::finding(format!(
                "{} Prefect Server releases found: {}; pick one with --release NAME, or diagnose \
                 each with -n NAMESPACE / -A",
                list.len(),
                crate::untrusted::list(&list, 20)
            ))
            .fix("several")
            .with("releases", list)
        }
        Discovery::Failed(e) if e.is_unreachable() && !k.explicit => Outcome::skip(format!(
            "the cluster of the kube config ({ctx}) is out of reach, so the local defaults were checked: {e}"
        )),
        Discovery::Failed(e) => kube_failed("list Helm releases", e),
    }
}

pub async fn kube_pods(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let pods = match k.pods(f).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded"))
        .collect();
    if live.is_empty() {
        return Outcome::finding(format!(
            "no pods of release {} in namespace {} (label app.kubernetes.io/instance={})",
            f.release.name, f.release.namespace, f.release.name
        ))
        .fix("no_pods");
    }
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    let mut secret_key_problem = false;
    // (image, is the chart's PostgreSQL) of the first container whose image cannot be pulled.
    let mut pull_problem: Option<(String, bool)> = None;
    for p in &live {
        let name = pod_name(p);
        let status = p.status.clone().unwrap_or_default();
        let phase = status
            .phase
            .clone()
            .unwrap_or_else(|| "Unknown".to_string());
        let statuses: Vec<_> = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .collect();
        let restarts: i32 = statuses.iter().map(|s| s.restart_count).sum();
        if phase == "Running" && pod_ready(p) {
            evidence
                .push(json!({"pod": name, "phase": phase, "ready": true, "restarts": restarts}));
            continue;
        }
        let mut entry = json!({"pod": name, "phase": phase, "ready": false, "restarts": restarts});
        // The first container that is waiting or has terminated badly says why.
        let bad = statuses.iter().find_map(|s| {
            let st = s.state.as_ref()?;
            if let Some(w) = &st.waiting {
                return Some((s, w.reason.clone().unwrap_or_default(), w.message.clone()));
            }
            if let Some(t) = &st.terminated
                && t.exit_code != 0
            {
                return Some((s, t.reason.clone().unwrap_or_default(), t.message.clone()));
            }
            None
        });
        let line = match bad {
            Some((s, reason, message)) => {
                let msg = message.map(|m| format!(": {m}")).unwrap_or_default();
                if msg.contains("couldn't find key")
                    || msg.contains("secret") && msg.contains("not found")
                {
                    secret_key_problem = true;
                }
                entry["container"] = json!(s.name);
                entry["reason"] = json!(reason);
                if matches!(
                    reason.as_str(),
                    "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull"
                ) && pull_problem.is_none()
                {
                    let postgres = s.image.contains("postgresql") || name.contains("postgresql");
                    pull_problem = Some((s.image.clone(), postgres));
                }
                if reason == "CrashLoopBackOff" || reason == "Error" {
                    // The crashed run's log says why; the current one may be empty.
                    let ns = &f.release.namespace;
                    let log = match k.probe.logs(ns, name, &s.name, true, 20).await {
                        Ok(l) if !l.trim().is_empty() => Ok(l),
                        _ => k.probe.logs(ns, name, &s.name, false, 20).await,
                    };
                    match log {
                        Ok(l) => entry["last_log_lines"] = json!(redact_log(&l, 10)),
                        Err(e) => entry["log_error"] = json!(e.to_string()),
                    }
                }
                format!(
                    "pod {name}: container {} {reason}{msg} (restarts {})",
                    s.name, s.restart_count
                )
            }
            None => {
                let why = status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.status == "False" && c.message.is_some())
                    .map(|c| {
                        format!(
                            ": {} {}",
                            c.reason.clone().unwrap_or_default(),
                            c.message.clone().unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                format!("pod {name} is {phase} and not ready{why}")
            }
        };
        problems.push(line);
        evidence.push(entry);
    }
    let o = if problems.is_empty() {
        Outcome::pass(format!(
            "all {} pods of release {} are Running and Ready",
            live.len(),
            f.release.name
        ))
    } else {
        let o = Outcome::finding(format!(
            "{} of {} pods are not Running and Ready: {}",
            problems.len(),
            live.len(),
            problems.join("; ")
        ));
        match &pull_problem {
            _ if secret_key_problem => o.fix("secret_key"),
            Some((image, true)) => o.fix("postgres_image").var("image", image.as_str()),
            Some((image, false)) => o.fix("image_pull").var("image", image.as_str()),
            None => o,
        }
    };
    o.with("pods", evidence)
}

pub async fn kube_db_secret(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let w = f.db_wiring();
    let ns = &f.release.namespace;
    let data = match secret_data(&k.probe, ns, &w.secret).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Outcome::finding(format!(
                "secret {} does not exist in namespace {ns}: every Prefect service waits in \
                 CreateContainerConfigError",
                w.secret
            ))
            .fix("missing_secret")
            .var("secret", w.secret.clone())
            .var("secret_key", w.key.clone());
        }
        Err(e) => return kube_failed(&format!("read secret {}", w.secret), &e),
    };
    let keys: Vec<String> = data.keys().cloned().collect();
    let base = |o: Outcome| {
        o.with("secret", w.secret.clone())
            .with("key", w.key.clone())
            .with("keys", keys.clone())
            .with("db_user", w.user.clone())
            .var("db_user", w.user.clone())
            .var("secret", w.secret.clone())
            .var("secret_key", w.key.clone())
    };
    base(
        match judge_secret_keys(&data, &w.key, &w.user, f.db.use_subchart) {
            SecretKeys::Renamed => Outcome::finding(format!(
                "secret {} has key postgresql-password but not postgres-password: charts from 2022.07 \
                 read postgres-password (the Bitnami PostgreSQL 11 subchart renamed it)",
                w.secret
            ))
            .fix("renamed"),
            SecretKeys::Missing => Outcome::finding(format!(
                "secret {} has no key {} (it has: {})",
                w.secret,
                w.key,
                if keys.is_empty() {
                    "no keys".to_string()
                } else {
                    keys.join(", ")
                }
            ))
            .fix("missing_key"),
            SecretKeys::SuperuserPasswordDiffers => Outcome::finding(format!(
                "the chart hands key postgres-password of secret {} (the postgres superuser's password) to \
                 user {}, whose password is key password; the two differ, so every service fails with \
                 \"bad password\"",
                w.secret, w.user
            ))
            .fix("superuser_password"),
            SecretKeys::Fine => Outcome::pass(format!(
                "secret {} has key {}, the password the services use for user {}",
                w.secret, w.key, w.user
            )),
        },
    )
}

pub async fn kube_chart_env(cx: std::sync::Arc<Cx>) -> Outcome {
    let (_, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Some(e) = &f.manifest_error {
        return Outcome::skip(format!("the release manifest cannot be read: {e}"));
    }
    let mut empty: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut graphql_has_url = false;
    for d in f.objects.iter().filter(|o| o["kind"] == "Deployment") {
        let dname = d["metadata"]["name"].as_str().unwrap_or("?");
        let containers = ["initContainers", "containers"].iter().flat_map(|k| {
            d["spec"]["template"]["spec"][k]
                .as_array()
                .into_iter()
                .flatten()
        });
        for c in containers {
            for e in c["env"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap_or_default();
                if name == "PREFECT_SERVER__DATABASE__CONNECTION_URL"
                    && d["metadata"]["labels"]["app.kubernetes.io/component"] == "graphql"
                    && e["value"].as_str().is_some_and(|v| !v.is_empty())
                {
                    graphql_has_url = true;
                }
                if matches!(
                    name,
                    "PREFECT_SERVER__DATABASE__USERNAME" | "PREFECT_SERVER__DATABASE__PORT"
                ) && e.get("valueFrom").is_none()
                    && e["value"].as_str().is_none_or(str::is_empty)
                {
                    empty
                        .entry(name.to_string())
                        .or_default()
                        .insert(dname.to_string());
                }
            }
        }
    }
    if empty.is_empty() {
        return Outcome::pass("no PREFECT_SERVER__DATABASE__USERNAME/PORT rendered empty");
    }
    let list = empty
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} in {}",
                v.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let evidence: Value = json!(empty);
    let db_user = f.db_wiring().user;
    let o = if graphql_has_url {
        Outcome::finding(format!(
            "chart defect: the release renders {list} empty; harmless here because graphql connects \
             with PREFECT_SERVER__DATABASE__CONNECTION_URL"
        ))
        .with("empty", evidence)
    } else {
        Outcome::warn(format!(
            "chart defect: the release renders {list} empty and graphql has no \
             PREFECT_SERVER__DATABASE__CONNECTION_URL to mask it"
        ))
        .with("empty", evidence)
    };
    o.var("db_user", db_user)
}

pub async fn kube_images(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let pods = match k.pods(f).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    // component → (image, pull policy) of its first pod, every (component, image, pod) seen (a
    // rollout stuck half-way leaves pods of the old tag beside the new), and image → image IDs.
    let mut server: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    // Components with a pod on tag `latest` pulled Always.
    let mut floating: BTreeSet<String> = BTreeSet::new();
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in pods {
        let pod = p.metadata.name.clone().unwrap_or_default();
        let labels = p.metadata.labels.clone().unwrap_or_default();
        let component = labels
            .get("app.kubernetes.io/component")
            .cloned()
            .unwrap_or_default();
        let Some(spec) = &p.spec else { continue };
        for c in &spec.containers {
            let image = c.image.clone().unwrap_or_default();
            if matches!(component.as_str(), "apollo" | "graphql" | "towel") && c.name == component {
                server.entry(component.clone()).or_insert((
                    image.clone(),
                    c.image_pull_policy.clone().unwrap_or_default(),
                ));
                seen.insert((component.clone(), image.clone(), pod.clone()));
                if image_tag(&image) == "latest" && c.image_pull_policy.as_deref() == Some("Always")
                {
                    floating.insert(component.clone());
                }
            }
        }
        for s in p
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
        {
            if !s.image_id.is_empty() {
                ids.entry(s.image.clone())
                    .or_default()
                    .insert(s.image_id.clone());
            }
        }
    }
    if server.is_empty() {
        return Outcome::skip("no apollo, graphql or towel pod to read images from");
    }
    let tags: BTreeSet<&str> = seen.iter().map(|(_, i, _)| image_tag(i)).collect();
    let images: Value = server
        .iter()
        .map(|(c, (i, pp))| (c.clone(), json!({"image": i, "pullPolicy": pp})))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let mut problems = Vec::new();
    // A component whose pods run several images (a rollout stuck half-way): each pod named.
    let mixed: BTreeSet<&String> = server
        .iter()
        .filter(|(c, (first, _))| seen.iter().any(|(sc, i, _)| sc == *c && i != first))
        .map(|(c, _)| c)
        .collect();
    let mixed_pods: Vec<&(String, String, String)> =
        seen.iter().filter(|(c, _, _)| mixed.contains(c)).collect();
    if tags.len() > 1 {
        let words: Vec<String> = server
            .iter()
            .filter(|(c, _)| !mixed.contains(c))
            .map(|(c, (i, _))| format!("{c} {i}"))
            .chain(
                mixed_pods
                    .iter()
                    .map(|(c, i, pod)| format!("{c} {i} (pod {pod})")),
            )
            .collect();
        problems.push(format!(
            "apollo, graphql and towel run different server tags: {}",
            words.join(", ")
        ));
    }
    if !floating.is_empty() {
        problems.push(format!(
            "{} run{} tag `latest` with imagePullPolicy Always: each restart may pull a different \
             version",
            floating
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if floating.len() == 1 { "s" } else { "" }
        ));
    }
    let drift: Vec<String> = ids
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(i, v)| format!("{i} ({} different image IDs)", v.len()))
        .collect();
    if !drift.is_empty() {
        problems.push(format!(
            "pods of one tag run different images: {}",
            drift.join(", ")
        ));
    }
    let o = if problems.is_empty() {
        Outcome::pass(format!(
            "apollo, graphql and towel run server tag {}",
            tags.iter().next().copied().unwrap_or("?")
        ))
    } else {
        Outcome::finding(problems.join("; "))
    };
    let o = o.with("images", images);
    if mixed_pods.is_empty() {
        return o;
    }
    o.with(
        "mixed_pods",
        mixed_pods
            .iter()
            .map(|(c, i, pod)| json!({"component": c, "image": i, "pod": pod}))
            .collect::<Vec<_>>(),
    )
}

pub async fn kube_tenant_job(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if !lookup_bool(&f.release.values, "jobs.createTenant.enabled").unwrap_or(false) {
        return Outcome::skip(
            "jobs.createTenant.enabled is false: no tenant job to look at (tenant.exists checks the tenant)",
        );
    }
    let ns = &f.release.namespace;
    let jobs = match k
        .probe
        .list::<Job>(
            Some(ns),
            &format!("app.kubernetes.io/instance={}", f.release.name),
        )
        .await
    {
        Ok(j) => j,
        Err(e) => return kube_failed("list the release's jobs", &e),
    };
    let Some(job) = jobs.iter().find(|j| {
        j.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.contains("tenant"))
            || j.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/component"))
                .is_some_and(|c| c.contains("tenant"))
    }) else {
        return Outcome::warn(format!(
            "jobs.createTenant.enabled is true but release {} has no tenant job (deleted after it \
             finished, or never created); tenant.exists checks the tenant itself",
            f.release.name
        ))
        .fix("no_job");
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let cond = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t && c.status == "True")
    };
    let evidence = json!({"job": name, "succeeded": status.succeeded, "failed": status.failed, "active": status.active});
    if cond("Complete").is_some() || status.succeeded.unwrap_or(0) > 0 {
        return Outcome::pass(format!("job {name} completed")).with("job", evidence);
    }
    if let Some(c) = cond("Failed") {
        let mut o = Outcome::finding(format!(
            "job {name} failed after {} attempt(s): {}",
            status.failed.unwrap_or(0),
            c.message.clone().or(c.reason.clone()).unwrap_or_default()
        ))
        .with("job", evidence);
        let pods = k
            .probe
            .list::<Pod>(Some(ns), &format!("job-name={name}"))
            .await;
        if let Ok(pods) = pods
            && let Some(p) = pods.last()
        {
            let container = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_default();
            match k.probe.logs(ns, pod_name(p), &container, false, 20).await {
                Ok(l) => o = o.with("last_log_lines", redact_log(&l, 10)),
                Err(e) => o = o.with("log_error", e.to_string()),
            }
        }
        return o.var("job", name);
    }
    Outcome::warn(format!(
        "job {name} has not finished yet ({} active, {} failed attempts)",
        status.active.unwrap_or(0),
        status.failed.unwrap_or(0)
    ))
    .with("job", evidence)
    .fix("running")
    .var("job", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(image_tag("prefecthq/server:2022.09.23"), "2022.09.23");
        assert_eq!(image_tag("registry:5000/prefecthq/server"), "latest");
        assert_eq!(image_tag("registry:5000/p/s:1.0@sha256:ab"), "1.0");
    }
}
