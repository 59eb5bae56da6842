//! The doctor against a real Kubernetes control plane: etcd, kube-apiserver and Helm built from
//! their Go modules (`tests/cluster/build`), releases installed by real Helm from a chart made of
//! the chart's real rendering, requests proven by the API server's own audit log, and the real RBAC
//! authorizer (SubjectAccessReview) as the oracle of `agent.rbac`.

use crate::support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::{
    cluster::{self, ControlPlane},
    kubelet::{Scenario, running_release},
    run_once,
};

/// The control plane, or return (the harness said why it is skipped).
macro_rules! control_plane {
    () => {
        match cluster::shared() {
            Some(cp) => cp,
            None => return,
        }
    };
}

/// `prefect-doctor check -o json ARGS` with `kubeconfig`.
fn doctor(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let kc = kubeconfig.display().to_string();
    let mut all = vec![
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &kc,
        "--timeout",
        "10s",
    ];
    all.extend_from_slice(args);
    let (code, stdout, stderr, _) = run_once(&all);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report ({e}): {stdout}\nstderr: {stderr}"));
    support::assert_fixes_filled(&json);
    (code, json, stderr)
}

fn result(report: &Value, id: &str) -> Value {
    support::result_of(report, id)
}

/// `prefect-doctor check --kubeconfig KC --timeout 10s EXTRA`, every output searched for the
/// database's canary password.
fn checked(kc: &str, extra: &[&str]) -> support::Run {
    let mut args = vec!["--kubeconfig", kc, "--timeout", "10s"];
    args.extend_from_slice(extra);
    support::check(&args, &[support::prefect::CANARY])
}

/// The message of check `id` in `report` ("" when it has none).
fn message<'a>(report: &'a Value, id: &str) -> &'a str {
    support::result_in(report, id)["message"]
        .as_str()
        .unwrap_or("")
}

/// Helm's own view of a release: (status, revision).
fn helm_says(cp: &ControlPlane, ns: &str, release: &str) -> (String, u64) {
    let out = cp.helm_ok(&["status", release, "-n", ns, "-o", "json"]);
    let j: Value = serde_json::from_str(&out).expect("helm status json");
    (
        j["info"]["status"].as_str().unwrap_or("?").to_string(),
        j["version"].as_u64().unwrap_or(0),
    )
}

/// Runs `helm ARGS` until the release's newest Secret says `status`, then kills Helm, as a Helm
/// killed mid-operation (a CI job's timeout, a closed laptop) leaves a release.
fn interrupt_helm_at(cp: &ControlPlane, ns: &str, release: &str, status: &str, args: &[&str]) {
    let mut helm = cp
        .helm_command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("helm");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cp.kubectl_ok(&[
            "get",
            "secrets",
            "-n",
            ns,
            "-l",
            &format!("owner=helm,name={release},status={status}"),
            "-o",
            "name",
        ]);
        if !out.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "helm never reached {status} for {release}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = helm.kill();
    let _ = helm.wait();
}

#[test]
fn releases_real_helm_wrote_in_every_status_are_read_as_helm_reads_them() {
    let cp = control_plane!();
    let ns = cp.namespace("releases");
    let kc = cp.admin_in(&ns);
    let chart = cp.chart().display().to_string();

    // Installed, upgraded twice, rolled back: revision 4 deployed, the rest superseded.
    cp.install(&ns, "ok", &[]);
    for _ in 0..2 {
        cp.helm_ok(&[
            "upgrade",
            "ok",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--set",
            "ui.apolloApiUrl=http://prefect.example.com/graphql",
        ]);
    }
    cp.helm_ok(&["rollback", "ok", "1", "-n", &ns]);
    // Helm 4's default, server-side apply, refuses the chart's towel Deployment (the same env
    // variable twice in one container): the release is left failed.
    let out = cp.helm(&["install", "ssa", &chart, "-n", &ns, "--timeout", "60s"]);
    assert!(!out.status.success(), "server-side apply took the chart");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PREFECT_SERVER__HASURA__HOST"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Helm killed while it waits for the workloads (no controller manager: they never become
    // ready): pending-install, and pending-upgrade over a deployed revision.
    interrupt_helm_at(
        cp,
        &ns,
        "halfway",
        "pending-install",
        &[
            "install",
            "halfway",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--wait",
            "--timeout",
            "300s",
        ],
    );
    cp.install(&ns, "stuck", &[]);
    interrupt_helm_at(
        cp,
        &ns,
        "stuck",
        "pending-upgrade",
        &[
            "upgrade",
            "stuck",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--wait",
            "--timeout",
            "300s",
        ],
    );
    // Uninstalled, its history kept.
    cp.install(&ns, "gone", &[]);
    cp.helm_ok(&["uninstall", "gone", "-n", &ns, "--keep-history"]);

    // Without --release: every one of them is named, with the status Helm gives it.
    let (code, report, _) = doctor(&kc, &["--only", "kube.release"]);
    assert_eq!(code, 1);
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "fail", "{r}");
    let listed: Vec<String> = r["evidence"]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    for name in ["gone", "halfway", "ok", "ssa", "stuck"] {
        let (status, _) = helm_says(cp, &ns, name);
        let want = format!("{name} (namespace {ns}, chart 2022.12.22, {status})");
        assert!(listed.contains(&want), "{want} not in {listed:?}");
    }
    assert_eq!(listed.len(), 5, "{listed:?}");

    // Each by name: the revision and status Helm reports, and the verdict they deserve.
    for (name, verdict, words) in [
        ("ok", "pass", "is deployed"),
        ("ssa", "fail", "is failed"),
        ("halfway", "fail", "is stuck in pending-install"),
        ("stuck", "fail", "is stuck in pending-upgrade"),
        ("gone", "fail", "is uninstalled"),
    ] {
        let (status, revision) = helm_says(cp, &ns, name);
        let (_, report, stderr) = doctor(&kc, &["--only", "kube.release", "--release", name]);
        let r = result(&report, "kube.release");
        assert_eq!(r["status"], verdict, "{name}: {r}\n{stderr}");
        assert_eq!(r["evidence"]["status"], json!(status), "{name}: {r}");
        assert_eq!(r["evidence"]["revision"], json!(revision), "{name}: {r}");
        assert_eq!(r["evidence"]["chart_version"], "2022.12.22", "{r}");
        let m = r["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!(
                "release {name} (chart prefect-server-2022.12.22, app 2022.12.22) revision {revision} in namespace {ns} {words}"
            )),
            "{name}: {m}"
        );
    }
    assert_eq!(helm_says(cp, &ns, "ok"), ("deployed".to_string(), 4));
    assert_eq!(helm_says(cp, &ns, "stuck").1, 2);
}

/// `deploy/FILE` with every `namespace: prefect` made `ns`, and its cluster-wide objects named
/// after `ns` too (so that tests applying it at once do not rebind each other's).
fn deploy_in(file: &str, ns: &str) -> String {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect("deploy file")
        .replace("namespace: prefect", &format!("namespace: {ns}"))
        .split("\n---\n")
        .map(|doc| {
            if doc.contains("\nkind: ClusterRole") {
                doc.replace(
                    "\n  name: prefect-doctor-fleet\n",
                    &format!("\n  name: prefect-doctor-fleet-{ns}\n"),
                )
                .replace(
                    "\n  name: prefect-doctor\n",
                    &format!("\n  name: prefect-doctor-{ns}\n"),
                )
            } else {
                doc.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Every request the audit log holds of `user`: (verb, resource path, code).
fn requests_of(cp: &ControlPlane, user: &str) -> Vec<(String, String, i64)> {
    cp.audit_of(user)
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap_or("?").to_string(),
                e["requestURI"].as_str().unwrap_or("?").to_string(),
                e["responseStatus"]["code"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Every request `user` made, asserting that each was a read (a port-forward's connect counts as
/// one: `create` over SPDY, `get` over WebSocket) and none was turned away: answered, or 404, or
/// the 400 a kubelet gives for a log a container does not have.
fn only_reads(cp: &ControlPlane, user: &str) -> Vec<(String, String, i64)> {
    let requests = requests_of(cp, user);
    assert!(requests.len() >= 3, "{user}: {requests:?}");
    for (verb, uri, code) in &requests {
        let path = uri.split('?').next().unwrap_or("");
        let read = ["get", "list", "watch"].contains(&verb.as_str())
            || (verb == "create" && path.ends_with("/portforward"));
        assert!(read, "{user}: not a read: {verb} {uri}");
        // A kubelet answers 400 for a log it does not have (a container waiting to start, or with
        // no earlier run).
        let no_log = *code == 400 && path.ends_with("/log");
        assert!(
            (200..300).contains(code) || *code == 101 || *code == 404 || no_log,
            "{user}: refused ({code}): {verb} {uri}"
        );
    }
    requests
}

#[test]
fn the_deployed_rbac_is_enough_for_a_full_check_and_every_request_is_a_read() {
    let cp = control_plane!();
    let ns = cp.namespace("least");
    cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
    cp.apply(&deploy_in("rbac.yaml", &ns));
    let token = cp.service_account_token(&ns, "prefect-doctor");
    let kc = cp.dir().join(format!("doctor-{ns}.kubeconfig"));
    cp.write_kubeconfig(&kc, "prefect-doctor", &token, &ns);
    let (_, report, _) = doctor(&kc, &[]);
    let user = format!("system:serviceaccount:{ns}:prefect-doctor");
    let requests = only_reads(cp, &user);
    // What the run read, as the API server saw it.
    let read = |verb: &str, path: &str| {
        requests
            .iter()
            .any(|(v, uri, _)| v == verb && uri.split('?').next() == Some(path))
    };
    let base = format!("/api/v1/namespaces/{ns}");
    for (verb, path) in [
        ("list", format!("{base}/secrets")),
        (
            "get",
            format!("{base}/secrets/sh.helm.release.v1.prefect.v1"),
        ),
        ("get", format!("{base}/secrets/prefect-postgresql")),
        ("list", format!("{base}/pods")),
        (
            "get",
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/prefect-agent-role"),
        ),
        (
            "list",
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        ),
        (
            "list",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string(),
        ),
        ("get", "/version".to_string()),
    ] {
        assert!(read(verb, &path), "no {verb} {path} in {requests:?}");
    }
    // The verdicts the real objects deserve: the chart's release, its real rendering's password
    // defect read from the Secret real Helm stored, the served API versions, the agent's grants.
    let status = |id: &str| {
        result(&report, id)["status"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(status("kube.release"), "pass", "{report}");
    assert_eq!(status("kube.db-secret"), "fail", "{report}");
    assert!(
        message(&report, "kube.db-secret")
            .contains("key postgres-password of secret prefect-postgresql"),
        "{report}"
    );
    assert_eq!(status("kube.api-versions"), "pass", "{report}");
    assert!(
        message(&report, "kube.api-versions").contains("this cluster (v1.36.3) serves"),
        "{report}"
    );
    assert_eq!(status("agent.rbac"), "pass", "{report}");
    // The cluster's default bindings (system:basic-user … to every account) were read and are not
    // named: they grant nothing the agent needs.
    let m = message(&report, "agent.rbac").to_string();
    assert!(
        m.contains("(bound: RoleBinding prefect-agent-role-binding → Role prefect-agent-role)"),
        "{m}"
    );
    assert!(read(
        "get",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user"
    ));
    // No pods without a kubelet: said as such (the kubelet side is tests of their own).
    assert_eq!(status("kube.pods"), "fail", "{report}");
}

/// What Prefect 1's Kubernetes agent must be allowed (agent.rbac's required needs):
/// (API group, resource, verb).
const AGENT_NEEDS: &[(&str, &str, &str)] = &[
    ("batch", "jobs", "create"),
    ("batch", "jobs", "get"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "delete"),
    ("", "pods", "get"),
    ("", "pods", "list"),
];

/// The real authorizer's answer for the agent's ServiceAccount (`sa_ns`/`sa`), for each need in
/// `job_ns`: the needs it refuses, as agent.rbac words them ("create jobs").
fn authorizer_refuses(cp: &ControlPlane, sa_ns: &str, sa: &str, job_ns: &str) -> Vec<String> {
    let mut refused = Vec::new();
    for (group, resource, verb) in AGENT_NEEDS {
        let review = cp.create(&format!(
            "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  \
             user: system:serviceaccount:{sa_ns}:{sa}\n  groups: [system:serviceaccounts, \
             \"system:serviceaccounts:{sa_ns}\", system:authenticated]\n  resourceAttributes:\n    \
             namespace: {job_ns}\n    group: \"{group}\"\n    resource: {resource}\n    verb: {verb}\n"
        ));
        if review["status"]["allowed"] != true {
            refused.push(format!("{verb} {resource}"));
        }
    }
    refused
}

#[test]
fn agent_rbac_agrees_with_the_real_authorizer() {
    let cp = control_plane!();
    // Each case: a release with the chart's agent, then its grants changed as users change them.
    type Tweak = fn(&ControlPlane, &str) -> Option<String>;
    // (what, whether the authorizer is expected to allow everything, the change)
    let cases: &[(&str, bool, Tweak)] = &[
        ("the chart's own Role", true, |_, _| None),
        ("the Role deleted", false, |cp, ns| {
            cp.kubectl_ok(&["delete", "role", "prefect-agent-role", "-n", ns]);
            None
        }),
        ("jobs only read", false, |cp, ns| {
            cp.kubectl_ok(&[
                "patch",
                "role",
                "prefect-agent-role",
                "-n",
                ns,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/rules/0/verbs","value":["get","list","watch"]}]"#,
            ]);
            None
        }),
        ("rules limited to resource names", false, |cp, ns| {
            cp.kubectl_ok(&[
                "patch",
                "role",
                "prefect-agent-role",
                "-n",
                ns,
                "--type=json",
                "-p",
                r#"[{"op":"add","path":"/rules/0/resourceNames","value":["one-job"]}]"#,
            ]);
            None
        }),
        (
            "the binding replaced by one to the aggregated ClusterRole edit",
            false,
            |cp, ns| {
                cp.kubectl_ok(&[
                    "delete",
                    "rolebinding",
                    "prefect-agent-role-binding",
                    "-n",
                    ns,
                ]);
                cp.kubectl_ok(&[
                    "create",
                    "rolebinding",
                    "agent-edit",
                    "-n",
                    ns,
                    "--clusterrole=edit",
                    &format!("--serviceaccount={ns}:prefect-serviceaccount"),
                ]);
                None
            },
        ),
        (
            "a ClusterRole of its own bound to the namespace's service-account group",
            true,
            |cp, ns| {
                cp.kubectl_ok(&[
                    "delete",
                    "rolebinding",
                    "prefect-agent-role-binding",
                    "-n",
                    ns,
                ]);
                let role = cp.unique("flow-runner");
                cp.apply(&format!(
                "apiVersion: {rbac}\nkind: ClusterRole\nmetadata:\n  name: {role}\nrules:\n\
                 - apiGroups: [batch]\n  resources: ['*']\n  verbs: ['*']\n\
                 - apiGroups: ['']\n  resources: [pods, pods/log]\n  verbs: [get, list]\n---\n\
                 apiVersion: {rbac}\nkind: ClusterRoleBinding\nmetadata:\n  name: {role}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\n\
                 subjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'system:serviceaccounts:{ns}'}}\n",
                rbac = "rbac.authorization.k8s.io/v1"
            ));
                None
            },
        ),
        (
            "the flows' Jobs sent to another namespace with no grants",
            false,
            |cp, ns| {
                let flows = cp.namespace("flows");
                let chart = cp.chart().display().to_string();
                cp.helm_ok(&[
                    "upgrade",
                    "prefect",
                    &chart,
                    "-n",
                    ns,
                    "--server-side=false",
                    "--reuse-values",
                    "--set-json",
                    &format!(r#"agent.env=[{{"name":"NAMESPACE","value":"{flows}"}}]"#),
                ]);
                Some(flows)
            },
        ),
    ];
    for (what, allowed, tweak) in cases {
        let ns = cp.namespace("agent");
        cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
        let job_ns = tweak(cp, &ns).unwrap_or_else(|| ns.clone());
        let refused = authorizer_refuses(cp, &ns, "prefect-serviceaccount", &job_ns);
        assert_eq!(
            refused.is_empty(),
            *allowed,
            "{what}: the case is not what it says: {refused:?}"
        );
        let kc = cp.admin_in(&ns);
        let (_, report, stderr) = doctor(&kc, &["--only", "agent.rbac"]);
        let r = result(&report, "agent.rbac");
        let verdict = if refused.is_empty() { "pass" } else { "fail" };
        assert_eq!(
            r["status"], verdict,
            "{what}: the authorizer refuses {refused:?}; {r}\n{stderr}"
        );
        assert_eq!(r["evidence"]["job_namespace"], json!(job_ns), "{what}: {r}");
        if !refused.is_empty() {
            assert_eq!(r["evidence"]["missing"], json!(refused), "{what}: {r}");
        }
        if what.contains("aggregated") {
            // Bound by name: said, though it grants nothing (no aggregation controller here,
            // as in a cluster whose controller manager is down).
            assert!(
                r["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("RoleBinding agent-edit → ClusterRole edit"),
                "{r}"
            );
        }
    }
}

#[test]
fn refused_credentials_and_refused_reads_say_who_what_and_which_role_grants_it() {
    let cp = control_plane!();
    let ns = cp.namespace("faults");
    cp.install(&ns, "prefect", &[]);
    let status = |report: &Value| result(report, "kube.release");

    // A token the API server does not know (wrong, or expired): 401, naming context and user,
    // and never the token.
    let kc = cp.dir().join(format!("wrong-{ns}.kubeconfig"));
    let token = "expired-token-canary-5d1c";
    cp.write_kubeconfig(&kc, "alice", token, &ns);
    let (code, report, stderr) = doctor(&kc, &[]);
    let r = status(&report);
    assert_eq!((code, r["status"].as_str()), (1, Some("error")), "{r}");
    let m = r["message"].as_str().unwrap_or("");
    assert!(
        m.contains("did not accept the credentials of user alice (context real): 401 Unauthorized")
            && m.contains("kubectl --context real auth whoami"),
        "{m}"
    );
    assert!(!report.to_string().contains(token) && !stderr.contains(token));
    assert_eq!(r["evidence"]["kube_error"], "unauthorized");

    // A user with no grants: the list of releases is refused, said with the user the API server
    // named and the Role that grants it.
    let kc = cp.dir().join(format!("nobody-{ns}.kubeconfig"));
    cp.write_kubeconfig(&kc, cluster::NOBODY, cluster::NOBODY_TOKEN, &ns);
    let (_, report, _) = doctor(&kc, &[]);
    let m = status(&report)["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(status(&report)["status"], "skip", "{m}");
    assert!(
        m.contains(&format!(
            "forbidden: user nobody may not list secrets in namespace {ns} (RBAC); the Role \
             prefect-doctor of deploy/rbac.yaml grants it (applied with namespace: {ns})"
        )),
        "{m}"
    );
    // Across namespaces (a fleet run): the fleet's ClusterRole.
    let (_, report, _) = doctor(&kc, &["-A"]);
    let m = report["unlisted"][0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        m.contains(
            "user nobody may not list secrets cluster-wide (RBAC); the ClusterRole \
             prefect-doctor-fleet of deploy/rbac-fleet.yaml grants it in every namespace"
        ),
        "{report}"
    );
    // Listing allowed, reading refused: the release is there but unreadable, which is the
    // answer (not "no release here, the local defaults were checked").
    cp.kubectl_ok(&[
        "create",
        "role",
        "list-only",
        "-n",
        &ns,
        "--verb=list",
        "--resource=secrets",
    ]);
    cp.kubectl_ok(&[
        "create",
        "rolebinding",
        "list-only",
        "-n",
        &ns,
        "--role=list-only",
        "--user=nobody",
    ]);
    let (_, report, _) = doctor(&kc, &[]);
    let m = status(&report)["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(status(&report)["status"], "skip", "{m}");
    assert!(
        m.contains(&format!(
            "user nobody may not get secrets in namespace {ns}"
        )) && !m.contains("local defaults"),
        "{m}"
    );

    // deploy/rbac.yaml's Role but for listing pods: only the checks that list them skip, naming
    // the read; the release is still found.
    let role = doctor_role_for_user(&ns, cluster::TEAM);
    let without_pods = role.replace(
        "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [list]\n",
        "",
    );
    assert_ne!(role, without_pods, "the Role's pods rule");
    cp.apply(&without_pods);
    let kc = cp.dir().join(format!("team-{ns}.kubeconfig"));
    cp.write_kubeconfig(&kc, cluster::TEAM, cluster::TEAM_TOKEN, &ns);
    let (_, report, _) = doctor(&kc, &["--only", "kube.*"]);
    let pods = result(&report, "kube.pods");
    assert_eq!(pods["status"], "skip", "{pods}");
    assert!(
        pods["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("may not list pods in namespace {ns}")),
        "{pods}"
    );
    assert_eq!(status(&report)["status"], "pass", "{report}");
}

#[test]
fn an_api_server_that_stops_answering_mid_run_costs_one_timeout() {
    if cluster::shared().is_none() {
        return;
    }
    // A control plane of its own: this one is frozen and killed.
    let cp = ControlPlane::start();
    cp.install("default", "prefect", &["--set", "agent.enabled=true"]);
    let kc = cp.admin_kubeconfig.display().to_string();
    let args = [
        "check",
        "-o",
        "json",
        "--kubeconfig",
        kc.as_str(),
        "--timeout",
        "2s",
    ];
    // Frozen (SIGSTOP) as soon as the doctor's first request is logged: the connection stays
    // open and nothing answers, as behind a dead load balancer. Tried again if the run was over
    // before the freeze landed.
    let mut frozen_mid_run = false;
    for _ in 0..3 {
        let started = Instant::now();
        let child = support::doctor_process()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("doctor");
        let log = std::fs::read_to_string(&cp.audit_log).unwrap_or_default();
        let seen = log.lines().count();
        while std::fs::read_to_string(&cp.audit_log)
            .unwrap_or_default()
            .lines()
            .count()
            == seen
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        cp.signal_api_server(libc::SIGSTOP);
        let out = child.wait_with_output().expect("doctor");
        let took = started.elapsed();
        cp.signal_api_server(libc::SIGCONT);
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        let text = report.to_string();
        if !text.contains("did not answer within 2s") {
            continue;
        }
        frozen_mid_run = true;
        // One timeout for the dead server, not one per check: well under the 30-odd checks' 2 s each.
        assert!(took < Duration::from_secs(12), "took {took:?}");
        assert_ne!(out.status.code(), Some(2));
        break;
    }
    assert!(
        frozen_mid_run,
        "the API server was never frozen while the doctor ran"
    );
    // Killed: the port is closed; said as unreachable at once.
    cp.stop_api_server();
    let (code, report, _) = doctor(&cp.admin_kubeconfig, &[]);
    let r = result(&report, "kube.release");
    assert_ne!(code, 2);
    assert!(
        r["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("cannot reach the Kubernetes API at {}", cp.url)),
        "{r}"
    );
}

/// The rules of `deploy/rbac.yaml`'s Role, as a Role of `ns` bound to user `user`.
fn doctor_role_for_user(ns: &str, user: &str) -> String {
    let rbac = deploy_in("rbac.yaml", ns);
    let role = rbac
        .split("\n---\n")
        .find(|d| d.contains("\nkind: Role\n"))
        .expect("the Role of deploy/rbac.yaml");
    format!(
        "{role}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  \
         name: prefect-doctor-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: \
         rbac.authorization.k8s.io\n  kind: Role\n  name: prefect-doctor\nsubjects:\n- apiGroup: \
         rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
    )
}

#[test]
fn a_fleet_across_namespaces_and_two_contexts_with_two_users() {
    let cp = control_plane!();
    let (a, b, c) = (
        cp.namespace("fleet-a"),
        cp.namespace("fleet-b"),
        cp.namespace("fleet-c"),
    );
    for (release, ns) in [("prefect", &a), ("prefect", &b), ("one", &c), ("two", &c)] {
        cp.install(ns, release, &[]);
    }
    // The fleet's ServiceAccount with deploy/rbac-fleet.yaml, in a namespace of its own.
    let home = cp.namespace("fleet-home");
    cp.apply(&deploy_in("rbac-fleet.yaml", &home));
    let fleet_token = cp.service_account_token(&home, "prefect-doctor");
    // A team's user with deploy/rbac.yaml's Role in its namespace only.
    cp.apply(&doctor_role_for_user(&b, cluster::TEAM));
    let ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem)
    };
    let kc = cp.dir().join(format!("fleet-{home}.kubeconfig"));
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fleet\nclusters:\n- name: real\n  \
             cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n\
             - name: fleet\n  context: {{cluster: real, user: fleet, namespace: {a}}}\n\
             - name: team\n  context: {{cluster: real, user: team, namespace: {b}}}\n\
             users:\n- name: fleet\n  user: {{token: {fleet_token}}}\n\
             - name: team\n  user: {{token: {team}}}\n",
            url = cp.url,
            team = cluster::TEAM_TOKEN
        ),
    )
    .expect("kubeconfig");
    let kc_arg = kc.display().to_string();
    let fleet_run = |args: &[&str]| -> Value {
        let mut all = vec![
            "check",
            "-o",
            "json",
            "--kubeconfig",
            kc_arg.as_str(),
            "--timeout",
            "10s",
        ];
        all.extend_from_slice(args);
        let (code, out, err, _) = run_once(&all);
        assert_ne!(code, 2, "{out}{err}");
        for secret in [fleet_token.as_str(), cluster::TEAM_TOKEN] {
            assert!(!out.contains(secret) && !err.contains(secret));
        }
        let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        support::assert_fixes_filled(&report);
        report
    };
    // "context/namespace/release" of each release diagnosed, and its kube.release verdict.
    let found = |report: &Value| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = report["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .map(|r| {
                let status = r["results"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|x| x["id"] == "kube.release"))
                    .map(|x| x["status"].clone())
                    .unwrap_or(Value::Null);
                let name = format!(
                    "{}/{}/{}",
                    r["context"].as_str().unwrap_or("?"),
                    r["namespace"].as_str().unwrap_or("?"),
                    r["release"].as_str().unwrap_or("?")
                );
                (name, status)
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let deployed = |names: &[String]| -> Vec<(String, Value)> {
        names.iter().map(|n| (n.clone(), json!("pass"))).collect()
    };

    // Every namespace, through the fleet's ClusterRole: these four (the other tests' releases too,
    // so only ours are compared).
    let report = fleet_run(&["-A", "--context", "fleet"]);
    // The other tests' releases are there too (some half-installed): only ours are compared.
    let ours: Vec<(String, Value)> = found(&report)
        .into_iter()
        .filter(|(r, _)| [&a, &b, &c].iter().any(|ns| r.contains(&format!("/{ns}/"))))
        .collect();
    assert_eq!(
        ours,
        deployed(&[
            format!("fleet/{a}/prefect"),
            format!("fleet/{b}/prefect"),
            format!("fleet/{c}/one"),
            format!("fleet/{c}/two"),
        ]),
        "{report}"
    );
    // Two contexts, two users, each in its context's namespace.
    let report = fleet_run(&["--context", "fleet", "--context", "team"]);
    assert_eq!(
        found(&report),
        deployed(&[format!("fleet/{a}/prefect"), format!("team/{b}/prefect")]),
        "{report}"
    );
    assert_eq!(report["unlisted"], json!([]), "{report}");
    // Both identities only read, and nothing they read was refused.
    let sa = format!("system:serviceaccount:{home}:prefect-doctor");
    for user in [sa.as_str(), cluster::TEAM] {
        only_reads(cp, user);
    }
}

#[test]
fn api_versions_are_judged_by_what_the_real_server_serves() {
    if cluster::shared().is_none() {
        return;
    }
    // A control plane of its own: its API server is started again serving less.
    let cp = ControlPlane::start();
    cp.install("default", "prefect", &["--set", "testExtras.hpa=true"]);
    let manifest = cp.helm_ok(&["get", "manifest", "prefect", "-n", "default"]);
    let objects: Vec<(String, String, String)> = serde_saphyr::from_multiple::<Value>(&manifest)
        .expect("manifest")
        .into_iter()
        .filter(|d| d.is_object())
        .map(|d| {
            let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
            (
                s(&d["kind"]),
                s(&d["metadata"]["name"]),
                s(&d["apiVersion"]),
            )
        })
        .collect();
    let judge = |cp: &ControlPlane| {
        // kubectl's discovery is the oracle of what is served.
        let served = cp.kubectl_ok(&["api-versions"]);
        let served: Vec<&str> = served.lines().collect();
        let stale: Vec<Value> = objects
            .iter()
            .filter(|(_, _, api)| !served.contains(&api.as_str()))
            .map(|(k, n, a)| json!({"kind": k, "name": n, "apiVersion": a, "replacement": null}))
            .collect();
        let (_, report, stderr) = doctor(&cp.admin_kubeconfig, &["--only", "kube.api-versions"]);
        let r = result(&report, "kube.api-versions");
        if stale.is_empty() {
            assert_eq!(r["status"], "pass", "{r}\n{stderr}");
            assert!(
                r["message"].as_str().unwrap_or("").contains(&format!(
                    "all {} objects of release prefect's manifest use API versions this cluster \
                     (v1.36.3) serves",
                    objects.len()
                )),
                "{r}"
            );
        } else {
            assert_eq!(r["status"], "warn", "{r}\n{stderr}");
            assert_eq!(r["evidence"]["objects"], json!(stale), "{r}");
        }
        stale.len()
    };
    assert_eq!(judge(&cp), 0);
    // The cluster stops serving autoscaling/v2 (as 1.26 stopped serving autoscaling/v2beta2).
    cp.restart_api_server(&["--runtime-config=autoscaling/v2=false"]);
    assert_eq!(judge(&cp), 1);
    // What the finding says next is true: Helm cannot upgrade the release any more.
    let chart = cp.chart().display().to_string();
    let out = cp.helm(&[
        "upgrade",
        "prefect",
        &chart,
        "-n",
        "default",
        "--server-side=false",
        "--reuse-values",
    ]);
    assert!(
        !out.status.success(),
        "helm upgraded a release whose manifest is not served"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("autoscaling/v2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_healthy_release_is_checked_through_real_port_forwards() {
    let cp = control_plane!();
    let r = running_release(cp, "healthy", Scenario::default());
    assert!(
        r.pods.contains(&"prefect-postgresql-0".to_string()),
        "{:?}",
        r.pods
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &[]);
    for (id, status) in [
        ("kube.release", "pass"),
        ("kube.pods", "pass"),
        ("kube.db-secret", "pass"),
        ("kube.chart-env", "pass"),
        ("kube.images", "warn"),
        ("kube.tenant-job", "skip"),
        ("agent.tenant-errors", "skip"),
        ("db.reachable", "pass"),
        ("db.password", "pass"),
        ("db.extensions", "pass"),
        ("hasura.function-owner", "pass"),
        ("api.reachable", "pass"),
        ("ui.settings-json", "pass"),
        ("ui.server-url", "pass"),
        ("tenant.exists", "pass"),
    ] {
        assert_eq!(run.status(id), status, "{id}: {}", run.text);
    }
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(
        run.message("kube.release")
            .contains("release prefect (chart prefect-server-2022.12.22"),
        "{}",
        run.message("kube.release")
    );
    // The chart's defect is named, as info.
    assert!(
        run.message("kube.chart-env")
            .contains("PREFECT_SERVER__DATABASE__USERNAME"),
        "{}",
        run.message("kube.chart-env")
    );
    assert!(run.message("kube.images").contains("latest"));
    assert!(run.fix("kube.images").contains("helm upgrade prefect"));
    // Where each part was reached, said in the report.
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains(&format!(
            "port-forward to pod {}/prefect-postgresql-0 port 5432",
            r.ns
        )),
        "{targets}"
    );
    assert!(
        targets.contains("service prefect-apollo is LoadBalancer with no external address yet"),
        "{targets}"
    );
    assert!(
        run.text.contains("checked through a port-forward"),
        "{}",
        run.text
    );
    assert_eq!(run.json["release"]["name"], "prefect");
    assert_eq!(run.json["release"]["namespace"], r.ns.as_str());
    // The metrics carry the release and its namespace.
    let (code, prom, _, _) = support::run_once_in(
        &Default::default(),
        &[
            "check",
            "-o",
            "prometheus",
            "--kubeconfig",
            &kc,
            "--timeout",
            "10s",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        prom.lines()
            .any(|l| l.starts_with("prefect_doctor_check_status{")
                && l.contains("check=\"kube.release\"")
                && l.contains("release=\"prefect\"")
                && l.contains(&format!("namespace=\"{}\"", r.ns))
                && l.ends_with(" 0")),
        "{prom}"
    );
    // The database saw only reads.
    let log = r.pg.log();
    assert!(
        !log.lines()
            .filter(|l| l.contains("prefect-doctor"))
            .any(|l| l.contains("statement:") && !l.contains("SELECT") && !l.contains("select")),
        "{log}"
    );
}

#[test]
fn the_readmes_faults_through_the_real_kubelet_side() {
    use support::prefect::Seed;
    let cp = control_plane!();
    let healthy = || Seed::healthy("prefect");
    let apollo_in_cluster = "http://prefect-apollo.default:4200/graphql".to_string();
    // (scenario, the check that must fail, words of its message)
    let cases: Vec<(Scenario, &str, &str)> = vec![
        (
            Scenario {
                seed: Seed {
                    tenant: false,
                    ..healthy()
                },
                tenants: Some(vec![]),
                ..Default::default()
            },
            "tenant.exists",
            "no tenant",
        ),
        (
            Scenario {
                secret_password: Some("not-the-password"),
                ..Default::default()
            },
            "db.password",
            "password",
        ),
        (
            Scenario {
                seed: Seed {
                    extensions: false,
                    ..healthy()
                },
                ..Default::default()
            },
            "db.extensions",
            "pg_trgm",
        ),
        (
            Scenario {
                seed: Seed {
                    hdb_function_owner: Some("postgres".into()),
                    ..healthy()
                },
                ..Default::default()
            },
            "hasura.function-owner",
            "not owned by Hasura's user",
        ),
        (
            Scenario {
                server_url: Some(apollo_in_cluster),
                ..Default::default()
            },
            "ui.server-url",
            "resolves only inside the cluster",
        ),
    ];
    for (scenario, id, words) in cases {
        let r = running_release(cp, "fault", scenario);
        let kc = r.kubeconfig.display().to_string();
        let run = support::check(
            &["--kubeconfig", &kc, "--timeout", "10s"],
            &[support::prefect::CANARY, "not-the-password"],
        );
        assert_eq!(run.status(id), "fail", "{id}: {}", run.text);
        assert!(run.message(id).contains(words), "{id}: {}", run.message(id));
        // Reached through the API server's port-forward, not found some other way.
        assert_eq!(run.status("kube.pods"), "pass", "{}", run.text);
        assert!(
            run.json["targets"]
                .to_string()
                .contains(&format!("port-forward to pod {}/", r.ns))
        );
        let _ = &r.pg;
    }
}

#[test]
fn pod_states_and_agent_logs_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let tenant_error = "[2020-11-13 19:16:02,083] ERROR - agent | 400 Client Error: Bad Request for url: http://prefect-apollo.default:4200/graphql\n\nThis is likely caused by a poorly formatted GraphQL query or mutation. GraphQL sent:\n\nquery {\n    mutation($input: get_runs_in_queue_input!) {\n            get_runs_in_queue(input: $input) {\n                flow_run_ids\n        }\n    }\n}\nvariables {\n    {\"input\": {\"before\": \"2020-11-13T19:16:01.973734+00:00\", \"labels\": [], \"tenant_id\": null}}\n}\n";
    let r = running_release(
        cp,
        "states",
        Scenario {
            helm: &["--set", "agent.enabled=true"],
            logs: vec![("prefect-agent-6d4b9c7f5-x2x9k", "agent", tenant_error)],
            ..Default::default()
        },
    );
    assert!(
        r.pods
            .contains(&"prefect-agent-6d4b9c7f5-x2x9k".to_string()),
        "{:?}",
        r.pods
    );
    // graphql in CrashLoopBackOff after an OOM kill; hasura restarted twice and Ready again.
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-graphql-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "graphql", "image": "prefecthq/server:latest", "imageID": "", "ready": false,
                "started": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:01:00Z"}}}]}}),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-x2x9k",
        &json!({"status": {"containerStatuses": [{"name": "hasura", "image": "hasura/graphql-engine:v2.0.9", "imageID": "",
            "ready": true, "started": true, "restartCount": 2,
            "state": {"running": {"startedAt": "2026-12-06T10:05:00Z"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:04:00Z"}}}]}}),
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &[]);
    assert_eq!(run.status("kube.pods"), "fail", "{}", run.text);
    let m = run.message("kube.pods");
    assert!(
        m.contains("container graphql CrashLoopBackOff") && m.contains("restarts 7"),
        "{m}"
    );
    assert!(run.text.contains("OOMKilled"), "{}", run.text);
    assert_ne!(run.status("kube.restarts"), "pass", "{}", run.text);
    // The agent's log, read through the API server's log endpoint from kwok.
    assert_eq!(run.status("agent.tenant-errors"), "fail", "{}", run.text);
    assert!(
        run.message("agent.tenant-errors")
            .contains("400 Client Error: Bad Request"),
        "{}",
        run.message("agent.tenant-errors")
    );
    assert!(
        run.fix("agent.tenant-errors")
            .contains("--set jobs.createTenant.enabled=true"),
        "{}",
        run.fix("agent.tenant-errors")
    );

    // The same run as deploy/rbac.yaml's ServiceAccount: every request, port-forwards and log
    // reads included, is a read the Role grants (the audit log).
    cp.apply(&deploy_in("rbac.yaml", &r.ns));
    let token = cp.service_account_token(&r.ns, "prefect-doctor");
    let kc = cp.dir().join(format!("doctor-{}.kubeconfig", r.ns));
    cp.write_kubeconfig(&kc, "prefect-doctor", &token, &r.ns);
    let (_, report, _) = doctor(&kc, &[]);
    assert_eq!(
        result(&report, "agent.tenant-errors")["status"],
        "fail",
        "{report}"
    );
    assert_eq!(
        result(&report, "db.reachable")["status"],
        "pass",
        "{report}"
    );
    let requests = only_reads(
        cp,
        &format!("system:serviceaccount:{}:prefect-doctor", r.ns),
    );
    let mut subresources = std::collections::BTreeSet::new();
    for (verb, uri, _) in &requests {
        let path = uri.split('?').next().unwrap_or("");
        if path.ends_with("/portforward") || path.ends_with("/log") {
            subresources.insert(format!("{verb} {}", path.rsplit('/').next().unwrap_or("")));
        }
    }
    assert!(
        subresources.iter().any(|s| s.ends_with("portforward")),
        "{subresources:?}"
    );
    assert!(subresources.contains("get log"), "{subresources:?}");
    let _ = &r.pg;
}

#[test]
fn port_forward_faults_are_clear_findings_within_the_timeout() {
    let cp = control_plane!();
    let r = running_release(cp, "pf", Scenario::default());
    let kc = r.kubeconfig.display().to_string();
    // The kubelet gone: the API server cannot open any forward. Said with the API server's reason
    // for the database, the API and the UI alike, within the timeout.
    drop(r.kubelet);
    let started = Instant::now();
    let (_, report, _) = doctor(&r.kubeconfig, &[]);
    let took = started.elapsed();
    for id in ["db.reachable", "api.reachable", "ui.settings-json"] {
        let res = result(&report, id);
        let m = res["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!("port-forward to pod {}/prefect-", r.ns))
                && m.contains("error dialing backend"),
            "{id}: {res}"
        );
    }
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let _ = (&r.pg, kc);
}

#[test]
fn fix_apply_goes_through_the_real_port_forwards_and_the_recheck_passes() {
    use support::{pg::SUPERUSER_PASSWORD, prefect::Seed};
    let cp = control_plane!();
    let r = running_release(
        cp,
        "fix",
        Scenario {
            seed: Seed {
                tenant: false,
                db_timezone: Some("Europe/Paris".into()),
                hdb_schema_owner: Some("cloudsqladmin".into()),
                ..Seed::healthy("prefect")
            },
            tenants: Some(vec![]),
            ..Default::default()
        },
    );
    let kc = r.kubeconfig.display().to_string();
    // The admin URL names only who: where is the release's database, through the same forward.
    let admin = format!("postgres://postgres:{SUPERUSER_PASSWORD}@/");
    let (code, out, err, _) = run_once(&[
        "fix",
        "-o",
        "json",
        "--kubeconfig",
        &kc,
        "--timeout",
        "10s",
        "--only",
        "db.timezone",
        "--only",
        "tenant.exists",
        "--only",
        "hasura.schema-owner",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    for secret in [support::prefect::CANARY, SUPERUSER_PASSWORD] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    for id in ["db.timezone", "tenant.exists", "hasura.schema-owner"] {
        let applied = json["applied"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["check"] == id))
            .unwrap_or_else(|| panic!("nothing applied for {id}: {json:#}"));
        assert_eq!(applied["result"], "fixed", "{id}: {json:#}");
    }
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["report"]["release"]["namespace"], json!(r.ns));
    // The database really changed: a plain check through the cluster passes them now.
    let (_, report, _) = doctor(
        &r.kubeconfig,
        &["--only", "db.timezone", "--only", "hasura.schema-owner"],
    );
    for id in ["db.timezone", "hasura.schema-owner"] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}: {report}");
    }
    let _ = &r.pg;
}

#[test]
fn tls_and_client_certificates_are_read_as_kubectl_reads_them() {
    use base64::Engine as _;
    let cp = control_plane!();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let read = |name: &str| std::fs::read_to_string(cp.dir().join(name)).expect(name);
    let other_ca = {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca")
            .pem()
    };
    let port = cp.url.rsplit(':').next().expect("port").to_string();
    let token = "    token: cluster-admin-token-3c1f\n".to_string();
    let ca_data = format!("    certificate-authority-data: {}\n", b64(&cp.ca_pem));
    let alice_data = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&read("alice.crt")),
        b64(&read("alice.key"))
    );
    // (what, server, cluster settings, user settings, files beside the kube config)
    type Case<'a> = (&'a str, String, String, String, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "the cluster CA as data",
            cp.url.clone(),
            ca_data.clone(),
            token.clone(),
            vec![],
        ),
        (
            "another CA",
            cp.url.clone(),
            format!("    certificate-authority-data: {}\n", b64(&other_ca)),
            token.clone(),
            vec![],
        ),
        (
            "no CA and insecure-skip-tls-verify",
            cp.url.clone(),
            "    insecure-skip-tls-verify: true\n".into(),
            token.clone(),
            vec![],
        ),
        (
            "no CA at all",
            cp.url.clone(),
            String::new(),
            token.clone(),
            vec![],
        ),
        (
            "the CA by a path relative to the kube config",
            cp.url.clone(),
            "    certificate-authority: certs/ca.crt\n".into(),
            token.clone(),
            vec![("certs/ca.crt", cp.ca_pem.clone())],
        ),
        (
            "tls-server-name the certificate names",
            cp.url.clone(),
            format!(
                "    certificate-authority-data: {}\n    tls-server-name: localhost\n",
                b64(&cp.ca_pem)
            ),
            token.clone(),
            vec![],
        ),
        (
            "tls-server-name the certificate does not name",
            cp.url.clone(),
            format!(
                "    certificate-authority-data: {}\n    tls-server-name: elsewhere.example\n",
                b64(&cp.ca_pem)
            ),
            token.clone(),
            vec![],
        ),
        (
            "localhost, named by the certificate",
            format!("https://localhost:{port}"),
            ca_data.clone(),
            token.clone(),
            vec![],
        ),
        (
            "a client certificate as data",
            cp.url.clone(),
            ca_data.clone(),
            alice_data.clone(),
            vec![],
        ),
        (
            "a client certificate by relative paths",
            cp.url.clone(),
            ca_data.clone(),
            "    client-certificate: id/alice.crt\n    client-key: id/alice.key\n".into(),
            vec![
                ("id/alice.crt", read("alice.crt")),
                ("id/alice.key", read("alice.key")),
            ],
        ),
        (
            "a client certificate of an untrusted CA",
            cp.url.clone(),
            ca_data.clone(),
            format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(&read("mallory.crt")),
                b64(&read("mallory.key"))
            ),
            vec![],
        ),
        (
            "a token beside a client certificate",
            cp.url.clone(),
            ca_data.clone(),
            format!("{alice_data}{token}"),
            vec![],
        ),
    ];
    // What each case is (kubectl's identity, or no connection): the matrix covers both.
    let meant = [
        Some("admin"),
        None,
        Some("admin"),
        None,
        Some("admin"),
        Some("admin"),
        None,
        Some("admin"),
        Some("alice"),
        Some("alice"),
        None,
        Some("alice"),
    ];
    assert_eq!(meant.len(), cases.len());
    let mut differ = Vec::new();
    for (i, (what, server, cluster_extra, user_extra, files)) in cases.iter().enumerate() {
        let ns = format!("tls-case-{i}");
        let dir = cp.dir().join(&ns);
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(p, text).expect("file");
        }
        std::fs::create_dir_all(&dir).expect("dir");
        let kc = dir.join("config");
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
                 server: {server}\n{cluster_extra}contexts:\n- name: c\n  context:\n    cluster: c\n    \
                 user: u\n    namespace: {ns}\nusers:\n- name: u\n  user:\n{user_extra}"
            ),
        )
        .expect("kubeconfig");
        // kubectl, from another directory: who it is, or that it could not connect.
        let out = Command::new(cp.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--request-timeout=10s",
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .current_dir("/")
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl");
        let kubectl = out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
        // The doctor, from another directory: who the API server saw list this case's namespace.
        let out = support::doctor_process()
            .args([
                "check",
                "-o",
                "json",
                "--timeout",
                "10s",
                "--only",
                "kube.release",
                "--kubeconfig",
            ])
            .arg(&kc)
            .current_dir("/")
            .output()
            .expect("doctor");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let seen: Vec<String> = std::fs::read_to_string(&cp.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["requestURI"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("/namespaces/{ns}/"))
                    // Authenticated: answered or refused by RBAC (403), not turned away (401).
                    && e["responseStatus"]["code"] != 401
            })
            .map(|e| e["user"]["username"].as_str().unwrap_or("?").to_string())
            .collect();
        let doctor = seen.first().cloned();
        assert_eq!(
            kubectl.as_deref(),
            meant[i],
            "{what}: the case is not what it says"
        );
        if kubectl != doctor {
            differ.push(format!(
                "{what}: kubectl {kubectl:?}, the doctor {doctor:?} ({})",
                report["results"][0]["message"]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "the doctor and kubectl differ:\n{}",
        differ.join("\n")
    );
}

/// An HTTP CONNECT proxy on loopback (as a corporate proxy is): every tunnel it opened, by target.
struct ConnectProxy {
    port: u16,
    tunnels: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy");
        let port = listener.local_addr().expect("addr").port();
        let tunnels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(client.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    // Drain the request's headers.
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let Some(target) = line
                        .strip_prefix("CONNECT ")
                        .and_then(|r| r.split(' ').next())
                    else {
                        return;
                    };
                    let Ok(upstream) = std::net::TcpStream::connect(target) else {
                        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    };
                    seen.lock().expect("tunnels").push(target.to_string());
                    let _ = (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let (mut c1, mut u1) = (
                        client.try_clone().expect("c"),
                        upstream.try_clone().expect("u"),
                    );
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c1, &mut u1);
                        let _ = u1.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut u2, mut c2) = (upstream, client);
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                    let _ = t.join();
                });
            }
        });
        ConnectProxy { port, tunnels }
    }
    fn tunnels(&self) -> usize {
        self.tunnels.lock().expect("tunnels").len()
    }
}

#[test]
fn a_proxy_url_is_used_as_kubectl_uses_it() {
    use base64::Engine as _;
    let cp = control_plane!();
    let proxy = ConnectProxy::start();
    let ca = base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem);
    let dead = cluster::free_port();
    for (what, proxy_url, through) in [
        (
            "a CONNECT proxy",
            format!("http://127.0.0.1:{}", proxy.port),
            true,
        ),
        (
            "a proxy that is not there, with credentials",
            format!("http://someone:proxy-canary-5e1@127.0.0.1:{dead}"),
            false,
        ),
    ] {
        let ns = cp.unique("proxied");
        let kc = cp.dir().join(format!("{ns}.kubeconfig"));
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
                 server: {}\n    certificate-authority-data: {ca}\n    proxy-url: {proxy_url}\ncontexts:\n\
                 - name: c\n  context:\n    cluster: c\n    user: u\n    namespace: {ns}\nusers:\n- name: u\n  \
                 user:\n    token: cluster-admin-token-3c1f\n",
                cp.url
            ),
        )
        .expect("kubeconfig");
        let before = proxy.tunnels();
        let out = Command::new(cp.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--request-timeout=10s",
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl");
        let kubectl_tunnels = proxy.tunnels() - before;
        assert_eq!(
            out.status.success(),
            through,
            "{what}: kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let before = proxy.tunnels();
        let (_, report, stderr) = doctor(&kc, &["--only", "kube.release"]);
        let r = result(&report, "kube.release");
        let doctor_tunnels = proxy.tunnels() - before;
        if through {
            assert!(kubectl_tunnels >= 1, "kubectl went around the proxy");
            assert!(
                doctor_tunnels >= 1,
                "{what}: the doctor went around the proxy: {r}\n{stderr}"
            );
            assert_eq!(r["status"], "skip", "{what}: {r}");
            assert!(
                r["message"].as_str().unwrap_or("").contains(&format!(
                    "no Prefect Server (chart prefect-server) release in namespace {ns}"
                )),
                "{what}: {r}"
            );
        } else {
            assert_eq!(r["status"], "error", "{what}: {r}");
            assert!(
                r["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("through the proxy http://someone:****@127.0.0.1"),
                "{what}: {r}"
            );
            assert!(
                !report.to_string().contains("proxy-canary") && !stderr.contains("proxy-canary")
            );
        }
    }
}

#[test]
fn the_in_cluster_service_account_is_used_as_kubectl_uses_it() {
    let cp = control_plane!();
    // The files a pod's service account gets. Only where no real pod's are (a CI machine, not a
    // pod), and only if this test may write there (root).
    let sa_dir = std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount");
    if std::path::Path::new("/var/run/secrets").exists() || nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("SKIPPED: /var/run/secrets exists (a pod?) or this is not root");
        return;
    }
    let ns = cp.namespace("incluster");
    cp.install(&ns, "prefect", &[]);
    cp.apply(&deploy_in("rbac.yaml", &ns));
    let token = cp.service_account_token(&ns, "prefect-doctor");
    std::fs::create_dir_all(sa_dir).expect("service account dir");
    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all("/var/run/secrets");
        }
    }
    let _cleanup = Cleanup;
    std::fs::write(sa_dir.join("token"), &token).expect("token");
    std::fs::write(sa_dir.join("ca.crt"), &cp.ca_pem).expect("ca");
    std::fs::write(sa_dir.join("namespace"), &ns).expect("namespace");
    let port = cp.url.rsplit(':').next().expect("port").to_string();
    // kubectl with no kube config anywhere: the pod's account. (No --request-timeout: kubectl falls
    // back to the pod's account only while its flags leave the default configuration untouched.)
    let out = Command::new("timeout")
        .arg("30")
        .arg(cp.bin.join("kubectl"))
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("system:serviceaccount:{ns}:prefect-doctor"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The doctor likewise: the release of the pod's namespace, read as the pod's account.
    let out = support::doctor_process()
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "10s",
            "--only",
            "kube.release",
        ])
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output()
        .expect("doctor");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "pass", "{report}");
    assert_eq!(r["evidence"]["namespace"], json!(ns), "{report}");
    assert!(!report.to_string().contains(&token));
    let user = format!("system:serviceaccount:{ns}:prefect-doctor");
    assert!(
        requests_of(cp, &user)
            .iter()
            .any(|(v, uri, _)| v == "list" && uri.contains(&format!("/namespaces/{ns}/secrets"))),
        "the doctor's list of releases is not the pod account's"
    );
}

#[test]
fn an_image_that_cannot_be_pulled_and_a_pod_no_node_can_take() {
    let cp = control_plane!();
    let r = running_release(cp, "pull", Scenario::default());
    let pod: Value = cp.get_json("pod", &r.ns, "prefect-postgresql-0");
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .expect("image")
        .to_string();
    assert!(image.contains("bitnami/postgresql"), "{image}");
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-postgresql-0",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": pod["spec"]["containers"][0]["name"], "image": image, "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{image}\"")}}}]}}),
    );
    // Hasura's pod replaced by one no node can take, as the scheduler leaves it: no nodeName, Pending,
    // PodScheduled False.
    let hasura: Value = cp.get_json("pod", &r.ns, "prefect-hasura-6d4b9c7f5-x2x9k");
    // Gone at once (no kubelet runs its containers to stop them).
    cp.kubectl_ok(&[
        "delete",
        "pod",
        "prefect-hasura-6d4b9c7f5-x2x9k",
        "-n",
        &r.ns,
        "--grace-period=0",
        "--force",
    ]);
    let mut spec = hasura["spec"].clone();
    spec.as_object_mut().expect("spec").remove("nodeName");
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "prefect-hasura-6d4b9c7f5-q8w2m", "namespace": r.ns,
                "labels": hasura["metadata"]["labels"], "ownerReferences": hasura["metadata"]["ownerReferences"]},
            "spec": spec})
        .to_string(),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-q8w2m",
        &json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]}}),
    );
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "kube.pods"]);
    let res = result(&report, "kube.pods");
    assert_eq!(res["status"], "fail", "{res}");
    let m = res["message"].as_str().unwrap_or("");
    assert!(m.contains("ImagePullBackOff"), "{res}");
    assert!(
        m.contains(
            "pod prefect-hasura-6d4b9c7f5-q8w2m is Pending and not ready: Unschedulable 0/1 nodes are \
             available: 1 Insufficient memory."
        ),
        "{res}"
    );
    let fix = res["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains(&format!("its image `{image}` cannot be pulled")),
        "{fix}"
    );
    assert!(
        fix.contains("--set postgresql.image.repository=bitnamilegacy/postgresql"),
        "{fix}"
    );

    // PostgreSQL pulled after all; Apollo's image is the one missing: the generic pull advice,
    // naming the image, not Bitnami's.
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-postgresql-0",
        &support::kubelet::running(&pod),
    );
    let apollo: Value = cp.get_json("pod", &r.ns, "prefect-apollo-6d4b9c7f5-x2x9k");
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-apollo-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": apollo["spec"]["containers"][0]["name"],
                "image": apollo["spec"]["containers"][0]["image"], "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImagePull",
                    "message": "manifest for prefecthq/apollo:2099.01.01 not found"}}}]}}),
    );
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "kube.pods"]);
    let res = result(&report, "kube.pods");
    let fix = res["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains("image `prefecthq/apollo:") && fix.contains("imagePullSecrets"),
        "{fix}"
    );
    assert!(!fix.contains("bitnamilegacy"), "{fix}");
    let _ = &r.pg;
}

#[test]
fn a_submitted_run_whose_job_pod_cannot_pull_is_found_through_the_real_cluster() {
    let cp = control_plane!();
    let r = running_release(cp, "stuck", Scenario::default());
    let id = "11111111-1111-4111-8111-111111111111";
    r.pg.sql(
        "prefect",
        &format!(
            "INSERT INTO flow_run (id, tenant_id, name, state, state_timestamp, labels) VALUES \
             ('{id}', (SELECT id FROM tenant LIMIT 1), 'etl', 'Submitted', now() - interval '40 minutes', '[]'::jsonb);"
        ),
    );
    // The Job Prefect 1's Kubernetes agent creates for the run, and the pod the Job controller would
    // make for it, on the kubelet's Node, that cannot pull its image.
    let image = "registry.example.com/flows/etl:3";
    let labels = json!({"prefect.io/identifier": "11111111", "prefect.io/flow_run_id": id});
    let job = cp.create(
        &json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "prefect-job-11111111", "namespace": r.ns, "labels": labels},
            "spec": {"template": {"metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "flow", "image": image}]}}}})
        .to_string(),
    );
    let mut pod_labels = labels.clone();
    pod_labels["job-name"] = json!("prefect-job-11111111");
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "prefect-job-11111111-x7k2p", "namespace": r.ns, "labels": pod_labels,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "prefect-job-11111111",
                                     "uid": job["metadata"]["uid"], "controller": true}]},
            "spec": {"restartPolicy": "Never", "nodeName": r.kubelet.node,
                "containers": [{"name": "flow", "image": image,
                    "env": [{"name": "PREFECT__CLOUD__API", "value": "http://prefect-apollo.default:4200/graphql"}]}]}})
        .to_string(),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-job-11111111-x7k2p",
        &json!({"status": {"phase": "Pending",
            "containerStatuses": [{"name": "flow", "image": image, "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{image}\"")}}}]}}),
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &["--only", "runs.stuck-submitted"]);
    assert_eq!(run.status("runs.stuck-submitted"), "fail", "{}", run.text);
    let m = run.message("runs.stuck-submitted");
    assert!(
        m.contains(&format!(
            "for run {id}, pod prefect-job-11111111-x7k2p cannot pull image {image} (ImagePullBackOff"
        )),
        "{m}"
    );
    assert!(
        run.fix("runs.stuck-submitted").contains(&format!(
            "kubectl describe pod -n {} prefect-job-11111111-x7k2p",
            r.ns
        )),
        "{}",
        run.fix("runs.stuck-submitted")
    );
}

#[test]
fn servers_that_refuse_behind_working_port_forwards_are_clear_findings() {
    let cp = control_plane!();
    // The pods run, their servers do not listen (yet): the API server and the kubelet take the
    // forward, the kubelet's dial to the pod's port is refused.
    let r = running_release(
        cp,
        "refusing",
        Scenario {
            refusing: true,
            ..Default::default()
        },
    );
    let (_, report, _) = doctor(&r.kubeconfig, &[]);
    let db = result(&report, "db.reachable");
    assert_eq!(db["status"], "fail", "{db}");
    let m = db["message"].as_str().unwrap_or("");
    assert!(
        m.contains("the forward reached the pod, but its port 5432 did not take the connection")
            && m.contains("connection refused")
            && !m.contains("not as a PostgreSQL server"),
        "{db}"
    );
    // Apollo and the UI say the same, not a closed connection.
    for (id, port) in [("api.reachable", 4200), ("ui.settings-json", 8080)] {
        let r = result(&report, id);
        assert_eq!(r["status"], "fail", "{id}: {r}");
        let m = r["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!(
                "the forward reached the pod, but its port {port} did not take the connection"
            )) && m.contains("connection refused"),
            "{id}: {r}"
        );
    }
}

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

/// The chart's tenant Job (`jobs.createTenant.enabled`) as real Helm creates it and the Job
/// controller and kubelet would leave it after its backoff limit: failed, its last pod's log (read
/// through the real logs endpoint) saying why.
#[test]
fn a_failed_tenant_job_is_read_through_the_real_cluster() {
    let cp = control_plane!();
    let pod = "prefect-create-tenant-job-x1k2d";
    let r = running_release(
        cp,
        "tenantjob",
        Scenario {
            helm: &["--set", "jobs.createTenant.enabled=true"],
            logs: vec![(
                pod,
                "create-tenant-job",
                "requests.exceptions.ConnectionError: HTTPConnectionPool(host='prefect-apollo.default', port=4200): Max retries exceeded",
            )],
            ..Scenario::default()
        },
    );
    let job: Value = cp.get_json("job", &r.ns, "prefect-create-tenant-job");
    // Helm made it; no attempt has ended yet.
    let kc = r.kubeconfig.display().to_string();
    let only = [
        "--kubeconfig",
        kc.as_str(),
        "--timeout",
        "10s",
        "--only",
        "kube.tenant-job",
    ];
    let run = support::check(&only, &[support::prefect::CANARY]);
    assert_eq!(run.status("kube.tenant-job"), "warn", "{}", run.text);
    assert!(
        run.fix("kube.tenant-job").contains(&format!(
            "kubectl logs -n {} job/prefect-create-tenant-job -f",
            r.ns
        )),
        "{}",
        run.fix("kube.tenant-job")
    );
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": r.ns,
                "labels": {"job-name": "prefect-create-tenant-job"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "prefect-create-tenant-job",
                                     "uid": job["metadata"]["uid"], "controller": true}]},
            "spec": {"restartPolicy": "OnFailure", "nodeName": r.kubelet.node,
                "containers": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest"}]}})
        .to_string(),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        pod,
        &json!({"status": {"phase": "Failed",
            "containerStatuses": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
    );
    let now = "2026-12-07T10:00:00Z";
    cp.patch_status(
        "job",
        Some(&r.ns),
        "prefect-create-tenant-job",
        &json!({"status": {"failed": 10, "startTime": now, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now, "lastProbeTime": now}]}}),
    );
    let run = support::check(&only, &[support::prefect::CANARY]);
    assert_eq!(run.status("kube.tenant-job"), "fail", "{}", run.text);
    assert!(
        run.message("kube.tenant-job").contains("backoff limit"),
        "{}",
        run.message("kube.tenant-job")
    );
    assert!(
        run.result("kube.tenant-job")["evidence"]["last_log_lines"]
            .to_string()
            .contains("Max retries exceeded"),
        "{}",
        run.result("kube.tenant-job")
    );
    assert!(
        run.fix("kube.tenant-job").contains(&format!(
            "kubectl logs -n {} job/prefect-create-tenant-job",
            r.ns
        )),
        "{}",
        run.fix("kube.tenant-job")
    );
}

/// Pods that look healthy (Running and Ready) but restarted, as a kubelet reports them: graphql
/// OOM-killed three times at its memory limit, Apollo stopped once (SIGTERM).
#[test]
fn restarts_of_healthy_looking_pods_and_why_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let r = running_release(cp, "restarts", Scenario::default());
    let kc = r.kubeconfig.display().to_string();
    let only = [
        "--kubeconfig",
        kc.as_str(),
        "--timeout",
        "10s",
        "--only",
        "kube.restarts",
        "--only",
        "kube.pods",
    ];
    let run = support::check(&only, &[support::prefect::CANARY]);
    assert_eq!(run.status("kube.restarts"), "pass", "{}", run.text);

    // graphql's pod made again with a memory limit (a pod's resources are fixed once it exists),
    // as its ReplicaSet would.
    let name = "prefect-graphql-6d4b9c7f5-x2x9k";
    let old: Value = cp.get_json("pod", &r.ns, name);
    cp.kubectl_ok(&[
        "delete",
        "pod",
        name,
        "-n",
        &r.ns,
        "--grace-period=0",
        "--force",
    ]);
    let mut spec = old["spec"].clone();
    spec["containers"][0]["resources"] = json!({"limits": {"memory": "256Mi"}});
    let graphql = cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": r.ns,
                "labels": old["metadata"]["labels"], "ownerReferences": old["metadata"]["ownerReferences"]},
            "spec": spec})
        .to_string(),
    );
    let mut status = support::kubelet::running(&graphql);
    status["status"]["containerStatuses"][0]["restartCount"] = json!(3);
    status["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137,
        "reason": "OOMKilled", "startedAt": "2026-12-06T10:01:00Z", "finishedAt": "2026-12-06T11:01:00Z"}});
    cp.patch_status("pod", Some(&r.ns), name, &status);
    let apollo = "prefect-apollo-6d4b9c7f5-x2x9k";
    let pod: Value = cp.get_json("pod", &r.ns, apollo);
    let mut status = support::kubelet::running(&pod);
    status["status"]["containerStatuses"][0]["restartCount"] = json!(1);
    status["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 143,
        "reason": "Error", "startedAt": "2026-12-06T10:01:00Z", "finishedAt": "2026-12-06T10:30:00Z"}});
    cp.patch_status("pod", Some(&r.ns), apollo, &status);

    let run = support::check(&only, &[support::prefect::CANARY]);
    assert_eq!(
        run.status("kube.pods"),
        "pass",
        "they look healthy: {}",
        run.text
    );
    assert_eq!(run.status("kube.restarts"), "warn", "{}", run.text);
    let m = run.message("kube.restarts");
    assert!(
        m.contains("restarted 3 times; its last run ended with exit code 137 (OOMKilled): killed at its memory limit (memory limit 256Mi)"),
        "{m}"
    );
    assert!(
        m.contains("exit code 143 (Error): stopped (SIGTERM)"),
        "{m}"
    );
    let fix = run.fix("kube.restarts");
    assert!(
        fix.contains("--set graphql.resources.limits.memory=<MORE, e.g. twice 256Mi>"),
        "{fix}"
    );
    let _ = &r.pg;
}

/// Broken pods as a kubelet reports them: graphql in CrashLoopBackOff, its previous run's log (read
/// through the real logs endpoint with `previous`) holding the database URL with its password, which
/// the report masks; hasura unable to start for a key its Secret lacks.
#[test]
fn broken_pods_give_reason_restarts_and_redacted_logs_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let graphql = "prefect-graphql-6d4b9c7f5-x2x9k";
    let crashed = format!(
        "starting\nsqlalchemy.exc.OperationalError: connection to postgresql://prefect:{}@prefect-postgresql.default:5432/prefect failed\nFATAL:  password authentication failed for user \"prefect\"\n",
        support::prefect::CANARY
    );
    let r = running_release(
        cp,
        "broken",
        Scenario {
            previous_logs: vec![(graphql, "graphql", &crashed)],
            ..Scenario::default()
        },
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        graphql,
        &json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "graphql", "image": "prefecthq/server:latest", "imageID": "", "ready": false,
                "started": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 5m0s restarting failed container=graphql"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:01:00Z"}}}]}}),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "hasura", "image": "hasura/graphql-engine:v2.0.9", "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                    "message": format!("couldn't find key postgres-password in Secret {}/prefect-postgresql", r.ns)}}}]}}),
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &["--only", "kube.pods"]);
    assert_eq!(run.status("kube.pods"), "fail", "{}", run.text);
    let m = run.message("kube.pods");
    assert!(m.contains("container graphql CrashLoopBackOff"), "{m}");
    assert!(m.contains("restarts 7"), "{m}");
    assert!(m.contains("couldn't find key postgres-password"), "{m}");
    assert!(
        run.fix("kube.pods").contains("see kube.db-secret"),
        "{}",
        run.fix("kube.pods")
    );
    let pods = run.result("kube.pods")["evidence"]["pods"].to_string();
    assert!(
        pods.contains("password authentication failed for user"),
        "{pods}"
    );
    assert!(pods.contains("postgresql://prefect:****@"), "{pods}");
    assert!(run.text.contains("CreateContainerConfigError"));
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
