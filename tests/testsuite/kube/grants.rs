//! deploy/rbac.yaml and rbac-fleet.yaml grant exactly the reads a full run makes.

use super::*;

/// (scope, API group, resource, verb): what RBAC authorizes. `scope` is `namespace` or `cluster`, or
/// `url` for a non-resource URL (the resource is then the path).
type Grant = (&'static str, String, String, String);

/// What the API server authorizes for one request the in-test server received.
fn grants_of(method: &str, uri: &str) -> Vec<Grant> {
    let path = uri.split('?').next().unwrap_or(uri);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest): (String, &[&str]) = match segs.as_slice() {
        ["api"] | ["apis"] | ["version"] => {
            return vec![("url", String::new(), path.to_string(), "get".to_string())];
        }
        ["api", "v1", rest @ ..] => (String::new(), rest),
        ["apis", group, _, rest @ ..] => (group.to_string(), rest),
        _ => panic!("unexpected request {method} {uri}"),
    };
    let (scope, rest) = match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => ("namespace", rest),
        other => ("cluster", other),
    };
    assert_eq!(method, "GET", "{uri}");
    let watch = uri.contains("watch=true") || uri.contains("watch=1");
    let one = |resource: String, verb: &str| (scope, group.clone(), resource, verb.to_string());
    match rest {
        [r] => vec![one(r.to_string(), if watch { "watch" } else { "list" })],
        [r, _] => vec![one(r.to_string(), "get")],
        // A WebSocket port-forward is a GET (authorized as get; Kubernetes 1.31+ also as create).
        [r, _, "portforward"] => vec![
            one(format!("{r}/portforward"), "get"),
            one(format!("{r}/portforward"), "create"),
        ],
        [r, _, sub] => vec![one(format!("{r}/{sub}"), "get")],
        _ => panic!("unexpected request {method} {uri}"),
    }
}

fn grants_of_rules(rules: &Value, scope: &'static str) -> Vec<Grant> {
    let mut out = Vec::new();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
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

/// `check` with every check through `kubeconfig` (and `extra`); it must not be a usage error.
fn run_every_check(kubeconfig: &str, extra: &[&str]) {
    let mut args = vec![
        "check",
        "-o",
        "json",
        "--kubeconfig",
        kubeconfig,
        "--timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    let (code, out, err, _) = run_once(&args);
    assert_ne!(code, 2, "{out}{err}");
}

/// Every grant a full run (every check) needs, from the requests the in-test API server received: a
/// release with an agent, its Role, and a create-tenant job whose pod has a log, so every kind of read
/// the checks make.
fn full_run_grants() -> Vec<Grant> {
    let install = Install::healthy();
    let mut c = install.cluster_rendered(
        json!({"agent": {"enabled": true}, "jobs": {"createTenant": {"enabled": true}}}),
        &agent_manifest(1, ""),
    );
    c.objects.push(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "prefect-create-tenant-job", "namespace": "default", "labels": {"app.kubernetes.io/instance": "prefect"}},
        "spec": {"template": {"spec": {"containers": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest"}]}}},
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}));
    c.objects.push(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "prefect-create-tenant-job-x1", "namespace": "default", "labels": {"job-name": "prefect-create-tenant-job"}},
        "spec": {"containers": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest"}]},
        "status": {"phase": "Failed"}}));
    // As every real cluster binds its defaults to every account (the API server's bootstrap
    // policy): the agent's ServiceAccount is bound to a ClusterRole through a group.
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:basic-user"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]}));
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:basic-user"},
        "rules": [{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}]}));
    let server = c.start();
    let kc = server.kubeconfig();
    run_every_check(&kc, &[]);
    let mut used: Vec<Grant> = Vec::new();
    for h in server.hits() {
        if h.path.contains("/namespaces/") {
            assert!(
                h.path.contains("/namespaces/default/"),
                "one namespace only: {}",
                h.path
            );
        }
        used.extend(grants_of(&h.method, &h.path));
    }
    used
}

/// The documents of a file in deploy/.
fn deploy_docs(file: &str) -> Vec<Value> {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
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

#[test]
fn the_deployed_rbac_grants_exactly_the_reads_a_full_run_makes() {
    let docs = deploy_docs("rbac.yaml");
    let of_kind = |kind: &str| of_kind(&docs, kind);
    let role = of_kind("Role");
    let cluster_role = of_kind("ClusterRole");
    assert_eq!((role.len(), cluster_role.len()), (1, 1));
    let mut granted: Vec<Grant> = grants_of_rules(&role[0]["rules"], "namespace");
    granted.extend(grants_of_rules(&cluster_role[0]["rules"], "cluster"));
    // Each bound to the ServiceAccount the workloads run as.
    for binding in of_kind("RoleBinding")
        .into_iter()
        .chain(of_kind("ClusterRoleBinding"))
    {
        assert_eq!(binding["subjects"][0]["name"], "prefect-doctor");
        assert_eq!(binding["roleRef"]["name"], "prefect-doctor");
    }
    for file in ["serve.yaml", "cronjob.yaml"] {
        let docs = deploy_docs(file);
        let workload = docs
            .iter()
            .find(|d| d["kind"] == "Deployment" || d["kind"] == "CronJob")
            .unwrap();
        let pod = if workload["kind"] == "CronJob" {
            &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &workload["spec"]["template"]["spec"]
        };
        assert_eq!(pod["serviceAccountName"], "prefect-doctor", "{file}");
        // The container's arguments are a command line the doctor takes.
        let args: Vec<String> = pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let parsed = <prefect_doctor::cli::args::Cli as clap::Parser>::try_parse_from(
            std::iter::once("prefect-doctor".to_string()).chain(args.clone()),
        );
        assert!(parsed.is_ok(), "{file}: {args:?}: {:?}", parsed.err());
    }

    assert_grants_exactly("rbac.yaml", granted, full_run_grants());
}

#[test]
fn the_fleet_rbac_grants_exactly_the_reads_of_a_full_run_in_every_namespace() {
    let docs = deploy_docs("rbac-fleet.yaml");
    let of_kind = |kind: &str| of_kind(&docs, kind);
    // Only cluster-wide grants: a Role would bind one namespace.
    assert!(of_kind("Role").is_empty() && of_kind("RoleBinding").is_empty());
    let cluster_role = of_kind("ClusterRole");
    assert_eq!(cluster_role.len(), 1);
    let binding = of_kind("ClusterRoleBinding");
    assert_eq!(binding.len(), 1);
    assert_eq!(
        binding[0]["roleRef"]["name"],
        cluster_role[0]["metadata"]["name"]
    );
    assert_eq!(binding[0]["subjects"][0]["name"], "prefect-doctor");
    // A ClusterRole bound cluster-wide grants its resource rules in every namespace and across
    // them: what matters is the (group, resource, verb), whatever the request's scope.
    let unscoped = |g: &Grant| -> Grant {
        let scope = if g.0 == "url" { "url" } else { "any" };
        (scope, g.1.clone(), g.2.clone(), g.3.clone())
    };
    let granted: Vec<Grant> = grants_of_rules(&cluster_role[0]["rules"], "cluster")
        .iter()
        .map(unscoped)
        .collect();
    // What a full run of one release reads, and what a fleet run reads: the releases listed in
    // every namespace, then each one's run in its own.
    let mut used: Vec<Grant> = full_run_grants().iter().map(unscoped).collect();
    let fleet =
        support::kube_fleet::fleet_install(&[("prefect", "team-a"), ("prefect", "team-b")], |_| {});
    let kc = fleet.server.kubeconfig();
    run_every_check(&kc, &["-A"]);
    let hits = fleet.server.hits();
    assert!(
        hits.iter()
            .any(|h| h.path.starts_with("/api/v1/secrets") && h.path.contains("owner")),
        "the fleet run lists release secrets across namespaces"
    );
    for h in hits {
        used.extend(grants_of(&h.method, &h.path).iter().map(unscoped));
    }
    assert_grants_exactly("rbac-fleet.yaml", granted, used);
}
