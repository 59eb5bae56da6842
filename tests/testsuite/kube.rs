//! Kubernetes end to end on the built binary: an in-test API server serving the chart's rendered
//! manifest and a Helm release secret encoded as Helm does, with the real test PostgreSQL and the
//! in-process Apollo and UI behind its port-forwards.

use crate::support;

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use support::{
    check,
    http::{Apollo, Server, ui},
    kube::{
        Cluster, KubeServer, agent_manifest, b64, helm_encode, reference, release_json,
        release_secret,
    },
    pg::PgServer,
    prefect::{CANARY, Seed, seed},
    run_once,
};

const TOKEN: &str = "kube-token-canary-9f8e7d";
/// The superuser password the rendered manifest's secret holds (`cVpSUVc0MlRZSg==`).
const MANIFEST_SUPERUSER_PW: &str = "qZRQW42TYJ";

struct Install {
    pg: PgServer,
    apollo: Server,
    ui: Server,
}

impl Install {
    /// A healthy database, an Apollo with a tenant, and a UI whose server_url is that Apollo.
    fn healthy() -> Install {
        let pg = PgServer::start();
        seed(&pg, &Seed::healthy("prefect"));
        let apollo = Apollo::default().start();
        let ui = ui(&format!("{}/graphql", apollo.url));
        Install { pg, apollo, ui }
    }

    /// The chart's release with every pod's port forwarded to the real parts, and the secret holding
    /// the app user's real password under both keys.
    fn cluster(&self, config: Value) -> Cluster {
        self.cluster_rendered(config, &reference("manifest-rendered.yaml"))
    }

    fn cluster_rendered(&self, config: Value, manifest: &str) -> Cluster {
        let mut c = Cluster::prefect_rendered(config, manifest);
        c.forward(
            "prefect-postgresql",
            5432,
            ([127, 0, 0, 1], self.pg.port).into(),
        );
        c.forward("prefect-apollo", 4200, self.apollo.addr);
        c.forward("prefect-ui", 8080, self.ui.addr);
        c.set_secret_key("prefect-postgresql", "postgres-password", CANARY);
        c.set_secret_key("prefect-postgresql", "password", CANARY);
        c
    }
}

fn doctor_on(server: &KubeServer, extra: &[&str]) -> support::Run {
    let kc = server.kubeconfig();
    let mut args = vec!["--kubeconfig", kc.as_str(), "--timeout", "3s"];
    args.extend_from_slice(extra);
    // The passwords as the Secrets and the manifest hold them (base64) too: the bundle's tape
    // keeps the cluster's answers.
    check(
        &args,
        &[
            CANARY,
            TOKEN,
            MANIFEST_SUPERUSER_PW,
            "cVpSUVc0MlRZSg==",
            &b64(CANARY.as_bytes()),
        ],
    )
}

fn assert_read_only(server: &KubeServer) {
    let hits = server.hits();
    assert!(hits.len() >= 5, "{hits:?}");
    for h in &hits {
        assert_eq!(h.method, "GET", "the doctor only reads: {h:?}");
    }
}

#[test]
fn the_rendered_manifests_password_defect_is_caught() {
    // As rendered: postgres-password (superuser) differs from password (user prefect's). The database
    // holds prefect's password; the chart hands every service the superuser's.
    let install = Install::healthy();
    let mut c = install.cluster(json!({}));
    c.set_secret_key(
        "prefect-postgresql",
        "postgres-password",
        MANIFEST_SUPERUSER_PW,
    );
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.*", "--only", "db.*"]);
    assert_eq!(run.status("kube.db-secret"), "fail", "{}", run.text);
    assert!(
        run.message("kube.db-secret")
            .contains("the postgres superuser's password) to user prefect"),
        "{}",
        run.message("kube.db-secret")
    );
    let fix = run.fix("kube.db-secret");
    assert!(fix.contains("--set postgresql.auth.password=<PASSWORD> --set postgresql.auth.postgresPassword=<PASSWORD>"), "{fix}");
    assert!(
        fix.contains("helm upgrade prefect prefecthq/prefect-server -n default"),
        "{fix}"
    );
    // What the services see: "bad password".
    assert_eq!(run.status("db.password"), "fail", "{}", run.text);
    assert!(
        run.fix("db.password").contains("helm upgrade prefect"),
        "{}",
        run.fix("db.password")
    );
    assert_eq!(run.code, 1);
    assert_read_only(&server);
}

#[test]
fn a_secret_of_the_old_chart() {
    // (Here because the real path's test chart renders one Secret name; the missing Secret is
    // `a_missing_database_secret_is_named_with_its_fix_on_a_real_cluster`.)
    let install = Install::healthy();
    // A secret made for the chart before 2022.07: only `postgresql-password`.
    // What the chart renders with `postgresql.auth.existingSecret=my-db-secret`: every secretKeyRef
    // names that secret.
    let manifest = reference("manifest-rendered.yaml").replace(
        "name: prefect-postgresql\n                  key: postgres-password",
        "name: my-db-secret\n                  key: postgres-password",
    );
    assert!(manifest.contains("name: my-db-secret"));
    let mut c = install.cluster_rendered(
        json!({"postgresql": {"auth": {"existingSecret": "my-db-secret"}}}),
        &manifest,
    );
    c.objects.push(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "my-db-secret", "namespace": "default"},
        "data": {"postgresql-password": b64(CANARY.as_bytes())}}),
    );
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.db-secret"]);
    assert_eq!(run.status("kube.db-secret"), "fail", "{}", run.text);
    assert!(
        run.message("kube.db-secret")
            .contains("postgresql-password but not postgres-password")
    );
    assert!(
        run.fix("kube.db-secret")
            .contains("postgres-password=<the password of prefect>")
    );
    assert_read_only(&server);
}

#[test]
fn release_statuses_encodings_and_choices() {
    let install = Install::healthy();
    // A stuck upgrade: revision 2 pending over a deployed revision 1.
    let mut c = install.cluster(json!({}));
    let payload = helm_encode(&release_json(
        "prefect",
        "default",
        2,
        "pending-upgrade",
        json!({}),
    ));
    c.objects.push(release_secret(
        "prefect",
        "default",
        2,
        "pending-upgrade",
        &payload,
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "fail");
    assert!(
        run.message("kube.release")
            .contains("revision 2 in namespace default is stuck in pending-upgrade"),
        "{}",
        run.message("kube.release")
    );
    assert!(
        run.fix("kube.release")
            .contains("helm rollback prefect <LAST DEPLOYED REVISION> -n default")
    );
    drop(server);

    // An old, uncompressed release next to a garbage one: the garbage is passed over.
    let mut c = install.cluster(json!({}));
    c.remove("Secret", "sh.helm.release.v1.prefect.v1");
    let plain = b64(release_json("prefect", "default", 1, "deployed", json!({}))
        .to_string()
        .as_bytes());
    c.objects
        .push(release_secret("prefect", "default", 1, "deployed", &plain));
    c.objects.push(release_secret(
        "junk",
        "default",
        1,
        "deployed",
        "H4sI////garbage%%%",
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "pass", "{}", run.text);
    let run2 = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--release",
        "junk",
        "--only",
        "kube.release",
    ]);
    let j: Value = serde_json::from_str(&run2.1).expect("json");
    let r = support::result_in(&j, "kube.release");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("cannot read release junk"),
        "{r}"
    );
    drop(server);

    // Two Prefect releases: pick one.
    let mut c = install.cluster(json!({}));
    let payload = helm_encode(&release_json(
        "prefect2",
        "default",
        1,
        "deployed",
        json!({}),
    ));
    c.objects.push(release_secret(
        "prefect2", "default", 1, "deployed", &payload,
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "fail");
    assert!(
        run.message("kube.release")
            .contains("2 Prefect Server releases found: prefect (namespace default"),
        "{}",
        run.message("kube.release")
    );
    assert!(run.fix("kube.release").contains("--release NAME"));
    let run = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--release",
        "prefect",
        "--only",
        "kube.release",
    ]);
    assert!(run.1.contains("\"status\": \"pass\""), "{}", run.1);
}

#[test]
fn a_silent_api_server_costs_one_timeout() {
    let server = Cluster {
        hang: true,
        ..Cluster::default()
    }
    .start();
    let (code, out, err, took) = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--timeout",
        "1s",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let r = support::result_in(&j, "kube.release");
    assert_eq!(r["status"], "error", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1s"),
        "{r}"
    );
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // Found only through KUBECONFIG (not asked for): fall back to the local defaults, say so.
    let through = |kubeconfig: &str| -> Value {
        let out = support::doctor()
            .env("KUBECONFIG", kubeconfig)
            .args([
                "check",
                "-o",
                "json",
                "--timeout",
                "1s",
                "--only",
                "kube.release",
            ])
            .output()
            .expect("run");
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let j = through(&server.kubeconfig());
    assert_eq!(
        support::result_in(&j, "kube.release")["status"],
        "skip",
        "{j}"
    );
    assert!(j["notices"].to_string().contains("out of reach"), "{j}");
    // A KUBECONFIG list naming a file that does not exist: kubectl skips it and reads the rest;
    // so does the doctor (it reaches the same, silent, API server).
    let j = through(&format!("/nonexistent/none:{}", server.kubeconfig()));
    let notices = j["notices"].to_string();
    assert!(
        notices.contains("out of reach") && !notices.contains("cannot load"),
        "{j}"
    );
}

#[test]
fn a_published_load_balancer_is_used_and_mismatched_tags_are_named() {
    let install = Install::healthy();
    let mut c = install.cluster(json!({}));
    let svc = c.find_mut("Service", "prefect-apollo");
    svc["spec"]["ports"][0]["port"] = json!(install.apollo.addr.port());
    svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}});
    let pod = c.find_mut("Pod", "prefect-towel");
    pod["spec"]["containers"][0]["image"] = json!("prefecthq/server:2022.09.23");
    pod["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.images", "--only", "api.*"]);
    assert_eq!(run.status("api.reachable"), "pass", "{}", run.text);
    assert!(
        run.json["targets"]
            .to_string()
            .contains("LoadBalancer of service prefect-apollo")
    );
    assert!(run.json["targets"].to_string().contains(&format!(
        "http://127.0.0.1:{}/graphql",
        install.apollo.addr.port()
    )));
    assert_eq!(run.status("kube.images"), "warn");
    assert!(
        run.message("kube.images").contains("different server tags"),
        "{}",
        run.message("kube.images")
    );
    assert!(
        run.message("kube.images")
            .contains("towel prefecthq/server:2022.09.23")
    );
}

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
        support::kube::fleet_install(&[("prefect", "team-a"), ("prefect", "team-b")], |_| {});
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

/// A kube config file: clusters (name, server), contexts (name, cluster, user, namespace), users,
/// and its current context.
fn kc_file(
    clusters: &[(&str, &str)],
    contexts: &[(&str, &str, &str, Option<&str>)],
    current: Option<&str>,
) -> String {
    let mut y = String::from("apiVersion: v1\nkind: Config\n");
    if let Some(c) = current {
        y.push_str(&format!("current-context: {c}\n"));
    }
    y.push_str("clusters:\n");
    for (name, server) in clusters {
        y.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server}\n"
        ));
    }
    y.push_str("contexts:\n");
    for (name, cluster, user, ns) in contexts {
        y.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {cluster}\n    user: {user}\n"
        ));
        if let Some(n) = ns {
            y.push_str(&format!("    namespace: {n}\n"));
        }
    }
    y.push_str("users:\n");
    let mut users: Vec<&str> = contexts.iter().map(|c| c.2).collect();
    users.dedup();
    for u in users {
        y.push_str(&format!("- name: {u}\n  user:\n    token: token-of-{u}\n"));
    }
    y
}

/// What kubectl resolves a kube config to: (server, context, namespace), or its refusal.
fn kubectl_resolves(
    home: &Path,
    kubeconfig_env: Option<&str>,
    flags: &[&str],
) -> Result<(String, String, String), String> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["config", "view", "--minify", "-o"])
        .arg("jsonpath={.clusters[0].cluster.server}|{.contexts[0].name}|{.contexts[0].context.namespace}");
    if let Some(k) = kubeconfig_env {
        cmd.env("KUBECONFIG", k);
    }
    // `config view` takes --context and --kubeconfig; -n is the doctor's and kubectl's namespace
    // flag for every other command, applied on top below.
    let mut namespace_flag = None;
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        if *f == "-n" {
            namespace_flag = it.next().map(|s| s.to_string());
        } else {
            cmd.arg(f);
        }
    }
    let out = cmd.output().expect("kubectl runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.splitn(3, '|').map(str::to_string);
    let (server, context, ns) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if server.is_empty() {
        return Err(format!("kubectl resolved no cluster: {text}"));
    }
    let ns = namespace_flag.unwrap_or(if ns.is_empty() { "default".into() } else { ns });
    Ok((server, context, ns))
}

/// What the doctor resolves the same kube config to, from its report's `kubernetes` target.
fn doctor_resolves(
    home: &Path,
    kubeconfig_env: Option<&str>,
    flags: &[&str],
) -> Result<(String, String, String), String> {
    let mut cmd = support::doctor();
    cmd.env("HOME", home);
    if let Some(k) = kubeconfig_env {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "1s",
            "--release",
            "prefect",
            "--only",
            "kube.release",
        ])
        .args(flags)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|_| stderr.clone())?;
    let target = json["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == "kubernetes"))
        .ok_or_else(|| format!("no kubernetes target: {json}"))?;
    let source = target["source"].as_str().unwrap_or("");
    // "kube context NAME in FILE, namespace NS"
    let rest = source.strip_prefix("kube context ").unwrap_or(source);
    let (context, ns) = rest.split_once(", namespace ").unwrap_or((rest, ""));
    let (context, file) = context.split_once(" in ").unwrap_or((context, ""));
    Ok((
        target["address"].as_str().unwrap_or("").to_string(),
        context.to_string(),
        format!("{ns}|{file}"),
    ))
}

/// The kube config as kubectl reads it, kubectl the oracle: for each layout of files, KUBECONFIG
/// and flags, the doctor reaches the server, context and namespace kubectl does, or both refuse.
#[test]
fn the_kube_config_is_read_as_kubectl_reads_it() {
    let kubectl_here = std::process::Command::new("sh")
        .args(["-c", "command -v kubectl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl_here {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is on every machine CI runs on"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    let write = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Servers nothing listens on: both sides only resolve.
    let a = write(
        "a",
        kc_file(
            &[
                ("ca", "https://127.0.0.1:1"),
                ("shared", "https://127.0.0.1:2"),
            ],
            &[
                ("a", "ca", "ua", Some("team-a")),
                ("same", "shared", "ua", None),
            ],
            Some("a"),
        ),
    );
    let b = write(
        "b",
        kc_file(
            &[
                ("cb", "https://127.0.0.1:3/k8s/clusters/c-x"),
                ("shared", "https://127.0.0.1:4"),
            ],
            &[
                ("b", "cb", "ub", Some("team-b")),
                ("same", "shared", "ub", Some("from-b")),
            ],
            Some("b"),
        ),
    );
    let none = write(
        "none",
        kc_file(
            &[("cn", "https://127.0.0.1:5")],
            &[("nons", "cn", "un", None)],
            None,
        ),
    );
    // YAML 1.1, as kubectl reads it: a context named `no` is the boolean false.
    let boolean = write(
        "boolean",
        kc_file(
            &[("cy", "https://127.0.0.1:8")],
            &[("no", "cy", "uy", None)],
            Some("no"),
        ),
    );
    let dangling = write(
        "dangling",
        kc_file(
            &[("cd", "https://127.0.0.1:6")],
            &[("d", "nowhere", "ud", None)],
            Some("d"),
        ),
    );
    std::fs::write(
        home.join(".kube/config"),
        kc_file(
            &[("ch", "https://127.0.0.1:7")],
            &[("h", "ch", "uh", Some("home-ns"))],
            Some("h"),
        ),
    )
    .unwrap();
    let missing = d.join("missing").display().to_string();
    let cases: Vec<(&str, Option<String>, Vec<&str>)> = vec![
        (
            "first file's current context",
            Some(format!("{a}:{b}")),
            vec![],
        ),
        ("the other order", Some(format!("{b}:{a}")), vec![]),
        (
            "a missing file in the list",
            Some(format!("{missing}:{b}")),
            vec![],
        ),
        ("empty entries", Some(format!("::{b}:")), vec![]),
        (
            "duplicate names: the first file wins",
            Some(format!("{a}:{b}")),
            vec!["--context", "same"],
        ),
        (
            "duplicate names, other order",
            Some(format!("{b}:{a}")),
            vec!["--context", "same"],
        ),
        (
            "current-context from a later file",
            Some(format!("{none}:{b}")),
            vec![],
        ),
        (
            "--context over the file",
            Some(format!("{a}:{b}")),
            vec!["--context", "b"],
        ),
        (
            "-n over the context",
            Some(format!("{a}:{b}")),
            vec!["-n", "flagged"],
        ),
        (
            "a context without a namespace",
            Some(none.clone()),
            vec!["--context", "nons"],
        ),
        (
            "a name YAML 1.1 reads as a boolean",
            Some(boolean.clone()),
            vec![],
        ),
        ("~/.kube/config when KUBECONFIG is unset", None, vec![]),
        (
            "~/.kube/config when KUBECONFIG is empty",
            Some(String::new()),
            vec![],
        ),
        (
            "--kubeconfig over KUBECONFIG",
            Some(a.clone()),
            vec!["--kubeconfig", b.as_str()],
        ),
        (
            "a context naming a missing cluster",
            Some(dangling.clone()),
            vec![],
        ),
        (
            "an unknown --context",
            Some(a.clone()),
            vec!["--context", "nope"],
        ),
    ];
    let mut differ = Vec::new();
    let mut files: Vec<(String, String, String)> = Vec::new();
    for (name, env, flags) in &cases {
        let kubectl = kubectl_resolves(&home, env.as_deref(), flags);
        let doctor = doctor_resolves(&home, env.as_deref(), flags);
        // The doctor also says which file the context came from (kubectl does not): the first
        // file of the list that names it.
        let doctor = doctor.map(|(server, context, ns_file)| {
            let (ns, file) = ns_file.split_once('|').unwrap_or((&ns_file, "")).to_owned();
            files.push((name.to_string(), context.clone(), file.to_string()));
            (server, context, ns.to_string())
        });
        let same = match (&kubectl, &doctor) {
            (Ok(k), Ok(d)) => {
                k.0.trim_end_matches('/') == d.0.trim_end_matches('/') && k.1 == d.1 && k.2 == d.2
            }
            (Err(_), Err(_)) => true,
            _ => false,
        };
        eprintln!(
            "{name:<42} kubectl {kubectl:?}\n{:<42} doctor  {doctor:?}",
            ""
        );
        if !same {
            differ.push(format!(
                "{name}: kubectl {kubectl:?}, the doctor {doctor:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
    let file_of = |case: &str| {
        files
            .iter()
            .find(|(n, _, _)| n == case)
            .map(|(_, _, f)| f.clone())
            .unwrap_or_default()
    };
    assert_eq!(file_of("first file's current context"), a);
    assert_eq!(file_of("duplicate names: the first file wins"), a);
    assert_eq!(file_of("duplicate names, other order"), b);
    assert_eq!(
        file_of("~/.kube/config when KUBECONFIG is unset"),
        home.join(".kube/config").display().to_string()
    );
}
