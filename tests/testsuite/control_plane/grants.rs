//! deploy/rbac.yaml and deploy/rbac-fleet.yaml grant exactly what a run reads, as the real API
//! server authorizes it: the deployed ServiceAccount runs every check against releases that make
//! every kind of read the checks make, each request of the audit log is turned into what RBAC checks
//! for it, and the roles grant all of them (the run was refused nothing) and nothing more.

use super::*;

/// (scope, API group, resource, verb): what RBAC authorizes. `scope` is `namespace` or `cluster`, or
/// `url` for a non-resource URL (the resource is then the path).
type Grant = (&'static str, String, String, String);

/// What the authorizer checks for one audited request.
fn grants_of(event: &Value) -> Vec<Grant> {
    let verb = event["verb"].as_str().unwrap_or("?").to_string();
    let o = &event["objectRef"];
    if o.is_null() {
        let uri = event["requestURI"].as_str().unwrap_or("?");
        let path = uri.split('?').next().unwrap_or(uri).to_string();
        return vec![("url", String::new(), path, verb)];
    }
    let scope = if o["namespace"].is_string() {
        "namespace"
    } else {
        "cluster"
    };
    let group = o["apiGroup"].as_str().unwrap_or_default().to_string();
    let resource = match o["subresource"].as_str() {
        Some(sub) => format!("{}/{sub}", o["resource"].as_str().unwrap_or("?")),
        None => o["resource"].as_str().unwrap_or("?").to_string(),
    };
    let one = |verb: &str| (scope, group.clone(), resource.clone(), verb.to_string());
    // A WebSocket port-forward is a GET, which Kubernetes 1.31+ also authorizes as create.
    if resource == "pods/portforward" {
        return vec![one("get"), one("create")];
    }
    vec![one(&verb)]
}

fn grants_of_rules(rules: &Value, scope: &'static str) -> Vec<Grant> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for rule in rules.as_array().expect("rules") {
        for verb in strs(&rule["verbs"]) {
            for url in strs(&rule["nonResourceURLs"]) {
                out.push(("url", String::new(), url, verb.clone()));
            }
            for group in strs(&rule["apiGroups"]) {
                for resource in strs(&rule["resources"]) {
                    out.push((scope, group.clone(), resource, verb.clone()));
                }
            }
        }
    }
    out
}

/// The documents of a file in deploy/.
fn deploy_docs(file: &str) -> Vec<Value> {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).expect("deploy file"))
        .expect("deploy YAML")
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// What `file` grants is exactly what the requests used: nothing missing, nothing extra.
fn assert_grants_exactly(file: &str, mut granted: Vec<Grant>, mut used: Vec<Grant>) {
    used.sort();
    used.dedup();
    granted.sort();
    granted.dedup();
    let missing: Vec<&Grant> = used.iter().filter(|g| !granted.contains(g)).collect();
    let extra: Vec<&Grant> = granted.iter().filter(|g| !used.contains(g)).collect();
    assert!(missing.is_empty(), "deploy/{file} lacks {missing:?}");
    assert!(
        extra.is_empty(),
        "deploy/{file} grants {extra:?}, which no request used"
    );
}

/// A release whose run makes every kind of read the checks make: an agent whose log is read (with
/// its Role and RoleBinding, read for agent.rbac), the chart's tenant Job failed at its backoff
/// limit with its pod's log, pods behind port-forwards, and an Ingress of the team's beside it.
fn every_read_release(cp: &ControlPlane, prefix: &str) -> Running {
    let agent = "prefect-agent-6d4b9c7f5-x2x9k";
    let job_pod = "prefect-create-tenant-job-x1k2d";
    let r = running_release(
        cp,
        prefix,
        Scenario {
            helm: &[
                "--set",
                "agent.enabled=true",
                "--set",
                "jobs.createTenant.enabled=true",
            ],
            logs: vec![
                (agent, "agent", "Waiting for flow runs..."),
                (job_pod, "create-tenant-job", "Max retries exceeded"),
            ],
            ..Scenario::default()
        },
    );
    fail_tenant_job(cp, &r.ns, &r.kubelet.node, job_pod);
    cp.apply(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: team-ingress\n  \
         namespace: {}\nspec:\n  rules:\n  - host: other.example.com\n    http:\n      paths:\n      \
         - path: /\n        pathType: Prefix\n        backend:\n          service:\n            \
         name: something-else\n            port:\n              number: 80\n",
        r.ns
    ));
    r
}

/// Every grant `user`'s requests needed, from the audit log (each a read the run was not refused).
fn used_by(cp: &ControlPlane, user: &str) -> Vec<Grant> {
    only_reads(cp, user);
    cp.audit_of(user).iter().flat_map(grants_of).collect()
}

#[test]
fn the_deployed_rbac_grants_exactly_what_a_full_run_reads() {
    let cp = control_plane!();
    let r = every_read_release(cp, "exact");
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    let (_, report, _) = doctor(&kc, &[]);
    // Each kind of read was made: the agent's log and the tenant Job's, both read.
    for id in ["agent.tenant-errors", "kube.tenant-job", "agent.rbac"] {
        assert_ne!(result(&report, id)["status"], "skip", "{id}: {report}");
    }
    let used = used_by(cp, &user);
    let docs = deploy_docs("rbac.yaml");
    let kinds = |kind: &str| of_kind(&docs, kind);
    let (role, cluster_role) = (kinds("Role"), kinds("ClusterRole"));
    assert_eq!((role.len(), cluster_role.len()), (1, 1));
    let mut granted = grants_of_rules(&role[0]["rules"], "namespace");
    granted.extend(grants_of_rules(&cluster_role[0]["rules"], "cluster"));
    // Each bound to the ServiceAccount the workloads run as, and the workloads' arguments a command
    // line the doctor takes.
    for binding in kinds("RoleBinding")
        .into_iter()
        .chain(kinds("ClusterRoleBinding"))
    {
        assert_eq!(binding["subjects"][0]["name"], "prefect-doctor");
        assert_eq!(binding["roleRef"]["name"], "prefect-doctor");
    }
    for file in ["serve.yaml", "cronjob.yaml"] {
        let docs = deploy_docs(file);
        let workload = docs
            .iter()
            .find(|d| d["kind"] == "Deployment" || d["kind"] == "CronJob")
            .expect("a workload");
        let pod = if workload["kind"] == "CronJob" {
            &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &workload["spec"]["template"]["spec"]
        };
        assert_eq!(pod["serviceAccountName"], "prefect-doctor", "{file}");
        let args: Vec<String> = pod["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        let parsed = <prefect_doctor::cli::args::Cli as clap::Parser>::try_parse_from(
            std::iter::once("prefect-doctor".to_string()).chain(args.clone()),
        );
        assert!(parsed.is_ok(), "{file}: {args:?}: {:?}", parsed.err());
    }
    assert_grants_exactly("rbac.yaml", granted, used);
}

/// deploy/rbac-fleet.yaml: one ClusterRole bound cluster-wide, granting exactly what a fleet run of
/// every namespace reads (`check -A`: the releases listed across namespaces, then each one's full
/// run in its own), whatever the scope of each read.
#[test]
fn the_fleet_rbac_grants_exactly_what_a_fleet_run_reads() {
    let cp = control_plane!();
    let docs = deploy_docs("rbac-fleet.yaml");
    let kinds = |kind: &str| of_kind(&docs, kind);
    // Only cluster-wide grants: a Role would bind one namespace.
    assert!(kinds("Role").is_empty() && kinds("RoleBinding").is_empty());
    let (cluster_role, binding) = (kinds("ClusterRole"), kinds("ClusterRoleBinding"));
    assert_eq!((cluster_role.len(), binding.len()), (1, 1));
    assert_eq!(
        binding[0]["roleRef"]["name"],
        cluster_role[0]["metadata"]["name"]
    );
    assert_eq!(binding[0]["subjects"][0]["name"], "prefect-doctor");
    let (a, b) = (
        every_read_release(cp, "allreads-a"),
        every_read_release(cp, "allreads-b"),
    );
    let home = cp.namespace("allreads-home");
    let (kc, user) = as_the_account_of(cp, &home, &deploy_in("rbac-fleet.yaml", &home));
    let (_, report, _) = doctor(&kc, &["-A"]);
    // Both of ours were diagnosed (the other tests' releases on this cluster were too).
    let listed = report.to_string();
    for r in [&a, &b] {
        assert!(
            listed.contains(&format!("\"namespace\":\"{}\"", r.ns)),
            "{} not in {report}",
            r.ns
        );
    }
    // Every request a read, and none refused by RBAC (the other tests' releases may be half
    // installed, their kubelets stopped: those answers are theirs).
    let events = cp.audit_of(&user);
    for e in &events {
        let (verb, uri) = (
            e["verb"].as_str().unwrap_or("?"),
            e["requestURI"].as_str().unwrap_or("?"),
        );
        let path = uri.split('?').next().unwrap_or("");
        assert!(
            ["get", "list", "watch"].contains(&verb)
                || (verb == "create" && path.ends_with("/portforward")),
            "not a read: {verb} {uri}"
        );
        let code = e["responseStatus"]["code"].as_i64().unwrap_or(0);
        assert!(
            ![401, 403].contains(&code),
            "refused ({code}): {verb} {uri}"
        );
    }
    assert!(
        events.iter().any(|e| e["requestURI"]
            .as_str()
            .is_some_and(|u| u.starts_with("/api/v1/secrets?"))),
        "the fleet run lists release secrets across namespaces"
    );
    // A ClusterRole bound cluster-wide grants its rules in every namespace and across them: what
    // matters is the (group, resource, verb), whatever the request's scope.
    let unscoped = |g: &Grant| -> Grant {
        let scope = if g.0 == "url" { "url" } else { "any" };
        (scope, g.1.clone(), g.2.clone(), g.3.clone())
    };
    let granted = grants_of_rules(&cluster_role[0]["rules"], "cluster")
        .iter()
        .map(unscoped)
        .collect();
    let used = events
        .iter()
        .flat_map(grants_of)
        .map(|g| unscoped(&g))
        .collect();
    assert_grants_exactly("rbac-fleet.yaml", granted, used);
}
