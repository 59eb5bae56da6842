//! The release's parts as real Helm renders them: the users' way in (Ingress, LoadBalancer), the
//! database Secret, the agent, and a namespace without a release.

use super::*;

/// The users' way in, as real Helm and the real API server keep it: the chart's own Ingress of Apollo
/// (`apollo.ingress.*`; its host is what the users reach, and nothing answers there); the Ingress
/// turned off by an upgrade, one the team made beside the release; then Apollo's LoadBalancer
/// Service once the cloud's controller has written its address into the status.
#[test]
fn the_users_way_in_is_read_from_a_real_ingress_and_load_balancer() {
    let cp = control_plane!();
    let r = running_release(
        cp,
        "wayin",
        Scenario {
            helm: &[
                "--set",
                "apollo.ingress.enabled=true",
                "--set",
                "apollo.ingress.hosts[0]=api.prefect.example",
            ],
            ..Scenario::default()
        },
    );
    let kc = r.kubeconfig.display().to_string();
    // The ingress host as this machine resolves it (nothing listens on port 80 here).
    let run = checked(
        &kc,
        &[
            "--only",
            "api.*",
            "--resolve",
            "api.prefect.example:80:127.0.0.1",
        ],
    );
    assert_eq!(run.status("api.reachable"), "fail", "{}", run.text);
    assert!(
        run.message("api.reachable").contains("api.prefect.example"),
        "{}",
        run.message("api.reachable")
    );
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains("http://api.prefect.example/graphql"),
        "{targets}"
    );
    assert!(
        targets.contains("ingress prefect-apollo of release prefect"),
        "{targets}"
    );

    let chart = cp.chart().display().to_string();
    cp.helm_ok(&[
        "upgrade",
        "prefect",
        &chart,
        "-n",
        &r.ns,
        "--reuse-values",
        "--set",
        "apollo.ingress.enabled=false",
        "--server-side=false",
    ]);
    // An Ingress the team made beside the release (not Helm's), routing to its Apollo.
    cp.apply(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: team-api\n  namespace: {}\n\
         spec:\n  rules:\n  - host: team-api.example\n    http:\n      paths:\n      - path: /\n        \
         pathType: Prefix\n        backend:\n          service:\n            name: prefect-apollo\n            \
         port:\n              number: 4200\n",
        r.ns
    ));
    let run = checked(
        &kc,
        &[
            "--only",
            "api.*",
            "--resolve",
            "team-api.example:80:127.0.0.1",
        ],
    );
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains("http://team-api.example/graphql"),
        "{targets}"
    );
    assert!(
        targets.contains(&format!(
            "ingress team-api in namespace {} (not of release prefect) routing to service prefect-apollo",
            r.ns
        )),
        "{targets}"
    );
    cp.kubectl_ok(&["delete", "ingress", "team-api", "-n", &r.ns]);

    let port = r.apollo.addr.port();
    cp.kubectl_ok(&[
        "patch",
        "service",
        "prefect-apollo",
        "-n",
        &r.ns,
        "--type=json",
        "-p",
        &format!(r#"[{{"op": "replace", "path": "/spec/ports/0/port", "value": {port}}}]"#),
    ]);
    cp.kubectl_ok(&[
        "patch",
        "service",
        "prefect-apollo",
        "-n",
        &r.ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}"#,
    ]);
    let run = checked(&kc, &["--only", "api.*"]);
    assert_eq!(run.status("api.reachable"), "pass", "{}", run.text);
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains("LoadBalancer of service prefect-apollo"),
        "{targets}"
    );
    assert!(
        targets.contains(&format!("http://127.0.0.1:{port}/graphql")),
        "{targets}"
    );
    let _ = &r.pg;
}

/// A namespace without a release: the doctor says so and checks the local defaults, saying that too.
#[test]
fn no_release_falls_back_to_the_local_defaults_and_says_so_on_a_real_cluster() {
    let cp = control_plane!();
    let ns = cp.namespace("empty");
    let kc = cp.admin_in(&ns);
    let (_, report, _) = doctor(&kc, &["--only", "kube.release", "--only", "db.reachable"]);
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "skip", "{r}");
    assert!(
        r["message"].as_str().unwrap_or("").contains(&format!(
            "no Prefect Server (chart prefect-server) release in namespace {ns}"
        )),
        "{r}"
    );
    let notices = report["notices"].to_string();
    assert!(
        notices.contains("checking the local defaults instead"),
        "{notices}"
    );
    assert!(
        report["targets"].to_string().contains("localhost:5432"),
        "{}",
        report["targets"]
    );
}

/// The chart's database Secret deleted from under a running release: the Secret check says how to
/// make it again, and the database checks say the password could not be read.
#[test]
fn a_missing_database_secret_is_named_with_its_fix_on_a_real_cluster() {
    let cp = control_plane!();
    let r = running_release(cp, "nosecret", Scenario::default());
    cp.kubectl_ok(&["delete", "secret", "prefect-postgresql", "-n", &r.ns]);
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &["--only", "kube.db-secret", "--only", "db.*"]);
    assert_eq!(run.status("kube.db-secret"), "fail", "{}", run.text);
    assert!(
        run.fix("kube.db-secret").contains(&format!(
            "kubectl create secret generic prefect-postgresql -n {}",
            r.ns
        )),
        "{}",
        run.fix("kube.db-secret")
    );
    assert_eq!(run.status("db.password"), "fail", "{}", run.text);
    assert!(
        run.text.contains(
            "the database password could not be read (secret prefect-postgresql does not exist)"
        ),
        "{}",
        run.text
    );
    let _ = &r.pg;
}

/// The agent as real Helm renders it from `agent.*`: one replica talking to this release's Apollo,
/// two replicas, `agent.env` pointing at the pod's localhost, at Prefect Cloud, and at another
/// address; and a release without an agent. Each its own install: `agent.env` naming a variable the
/// chart sets makes a Deployment with the name twice, which a later `helm upgrade` (client-side) can
/// refuse to patch ("The order in patch list … doesn't match $setElementOrder").
#[test]
fn the_agent_runs_once_and_talks_to_this_release_as_helm_renders_it() {
    let cp = control_plane!();
    let agent = |extra: &[&str]| -> (String, Value) {
        let ns = cp.namespace("agent");
        let mut args = vec!["--set", "agent.enabled=true"];
        args.extend_from_slice(extra);
        cp.install(&ns, "prefect", &args);
        let (_, report, _) = doctor(
            &cp.admin_in(&ns),
            &["--only", "agent.replicas", "--only", "agent.api-url"],
        );
        (ns, report)
    };
    let (ns, report) = agent(&[]);
    assert_eq!(
        result(&report, "agent.replicas")["status"],
        "pass",
        "{report}"
    );
    assert_eq!(
        result(&report, "agent.api-url")["status"],
        "pass",
        "{report}"
    );
    assert!(
        message(&report, "agent.api-url")
            .contains(&format!("http://prefect-apollo.{ns}:4200/graphql")),
        "{report}"
    );

    // Two replicas: each may submit the same run.
    let (_, report) = agent(&["--set", "agent.replicas=2"]);
    let r = result(&report, "agent.replicas");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        message(&report, "agent.replicas").contains("runs 2 agent replicas"),
        "{r}"
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap_or("")
            .contains("--set agent.replicas=1"),
        "{r}"
    );

    // agent.env: the pod's localhost.
    let (ns, report) = agent(&[
        "--set-json",
        r#"agent.env=[{"name": "PREFECT__CLOUD__API", "value": "http://localhost:4200/graphql"}]"#,
    ]);
    let r = result(&report, "agent.api-url");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        message(&report, "agent.api-url").contains("a pod's localhost is the pod itself"),
        "{r}"
    );
    assert!(
        r["fix"].as_str().unwrap_or("").contains(&format!(
            "--set 'agent.env[0].value=http://prefect-apollo.{ns}:4200/graphql'"
        )),
        "{r}"
    );
    // Prefect Cloud.
    let (_, report) = agent(&[
        "--set-json",
        r#"agent.env=[{"name": "PREFECT__CLOUD__API", "value": "https://api.prefect.io"}, {"name": "PREFECT__BACKEND", "value": "cloud"}]"#,
    ]);
    let m = message(&report, "agent.api-url");
    assert_eq!(
        result(&report, "agent.api-url")["status"],
        "fail",
        "{report}"
    );
    assert!(
        m.contains("PREFECT__BACKEND is \"cloud\"") && m.contains("that is Prefect Cloud"),
        "{m}"
    );
    // Another address (an ingress host): it may work from pods; a warning says so.
    let (_, report) = agent(&[
        "--set-json",
        r#"agent.env=[{"name": "PREFECT__CLOUD__API", "value": "https://prefect.example.com/graphql"}]"#,
    ]);
    assert_eq!(
        result(&report, "agent.api-url")["status"],
        "warn",
        "{report}"
    );

    // No agent in the release.
    let ns = cp.namespace("agent");
    cp.install(&ns, "prefect", &[]);
    let (_, report, _) = doctor(&cp.admin_in(&ns), &["--only", "agent.replicas"]);
    assert_eq!(
        result(&report, "agent.replicas")["status"],
        "skip",
        "{report}"
    );
}

/// The chart's own password defect as real Helm installs it: the services are handed the Secret's
/// `postgres-password` (the postgres superuser's) to log in as user prefect, whose password is
/// `password`. Both said, with the `helm upgrade` that makes them one; the run only read.
#[test]
fn the_charts_password_defect_is_caught_on_a_real_cluster() {
    let cp = control_plane!();
    let r = running_release(
        cp,
        "superpw",
        Scenario {
            superuser_password: Some("qZRQW42TYJ"),
            ..Scenario::default()
        },
    );
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    // One run as the deployed account, whose every request the audit log then shows was a read.
    let (code, report, stderr) = doctor(&kc, &["--only", "kube.*", "--only", "db.*"]);
    assert!(!report.to_string().contains("qZRQW42TYJ") && !stderr.contains("qZRQW42TYJ"));
    let (status, fix_of) = (
        |id: &str| {
            result(&report, id)["status"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        },
        |id: &str| {
            result(&report, id)["fix"]
                .as_str()
                .unwrap_or("")
                .to_string()
        },
    );
    assert_eq!(status("kube.db-secret"), "fail", "{report}");
    assert!(
        message(&report, "kube.db-secret")
            .contains("the postgres superuser's password) to user prefect"),
        "{report}"
    );
    let fix = fix_of("kube.db-secret");
    for part in [
        "--set postgresql.auth.password=<PASSWORD> --set postgresql.auth.postgresPassword=<PASSWORD>"
            .to_string(),
        format!("helm upgrade prefect prefecthq/prefect-server -n {}", r.ns),
    ] {
        assert!(fix.contains(&part), "{part}: {fix}");
    }
    // What the services see: "bad password".
    assert_eq!(status("db.password"), "fail", "{report}");
    assert!(
        fix_of("db.password").contains("helm upgrade prefect"),
        "{report}"
    );
    assert_eq!(code, 1);
    only_reads(cp, &user);
}

/// A Secret made for the chart before 2022.07 (`postgresql-password` only), named with
/// `postgresql.auth.existingSecret` as real Helm installs it: every service's password comes from
/// it, and the key they read is not there.
#[test]
fn an_existing_secret_of_the_old_chart_is_named_with_its_fix_on_a_real_cluster() {
    let cp = control_plane!();
    let r = running_release(
        cp,
        "oldsecret",
        Scenario {
            helm: &["--set", "postgresql.auth.existingSecret=my-db-secret"],
            ..Scenario::default()
        },
    );
    let manifest = cp.helm_ok(&["get", "manifest", "prefect", "-n", &r.ns]);
    assert!(
        manifest.contains("name: my-db-secret\n                  key: postgres-password"),
        "the services read the existing Secret"
    );
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "my-db-secret", "namespace": r.ns},
            "stringData": {"postgresql-password": support::prefect::CANARY}})
        .to_string(),
    );
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    let (_, report, _) = doctor(&kc, &["--only", "kube.db-secret"]);
    let res = result(&report, "kube.db-secret");
    assert_eq!(res["status"], "fail", "{res}");
    assert!(
        res["message"]
            .as_str()
            .is_some_and(|m| m.contains("postgresql-password but not postgres-password")),
        "{res}"
    );
    assert!(
        res["fix"]
            .as_str()
            .is_some_and(|f| f.contains("postgres-password=<the password of prefect>")),
        "{res}"
    );
    only_reads(cp, &user);
}
