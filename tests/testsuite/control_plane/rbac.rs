//! The doctor's RBAC (deploy/rbac.yaml) against the real authorizer, and agent.rbac with the real
//! SubjectAccessReview as its oracle.

use super::*;

#[test]
fn the_deployed_rbac_is_enough_for_a_full_check_and_every_request_is_a_read() {
    let cp = control_plane!();
    let ns = cp.namespace("least");
    cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
    let (kc, user) = as_the_deployed_account(cp, &ns);
    let (_, report, _) = doctor(&kc, &[]);
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

/// The release in `ns` upgraded (client-side) so that its agent sends the flows' Jobs to `flows`.
fn jobs_sent_to(cp: &ControlPlane, ns: &str, flows: &str) {
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
        (
            "the Jobs' namespace granted by a RoleBinding to a ClusterRole",
            true,
            |cp, ns| {
                let flows = cp.namespace("flows");
                let role = cp.unique("flow-runner");
                cp.apply(&format!(
                "apiVersion: {rbac}\nkind: ClusterRole\nmetadata:\n  name: {role}\nrules:\n\
                 - apiGroups: [batch]\n  resources: [jobs]\n  verbs: [create, get, list, watch, delete]\n\
                 - apiGroups: ['']\n  resources: [pods, pods/log, events]\n  verbs: [get, list]\n---\n\
                 apiVersion: {rbac}\nkind: RoleBinding\nmetadata:\n  name: prefect-flows\n  namespace: {flows}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\n\
                 subjects:\n- {{kind: ServiceAccount, name: prefect-serviceaccount, namespace: {ns}}}\n",
                rbac = "rbac.authorization.k8s.io/v1"
            ));
                jobs_sent_to(cp, ns, &flows);
                Some(flows)
            },
        ),
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
                jobs_sent_to(cp, ns, &flows);
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
        // The words and the fix, with the names of this cluster.
        let m = r["message"].as_str().unwrap_or("");
        let fix = r["fix"].as_str().unwrap_or("");
        let says: &[String] = &match *what {
            "the chart's own Role" => vec![
                format!("service account {ns}/prefect-serviceaccount may create, get, list and delete jobs"),
                "RoleBinding prefect-agent-role-binding → Role prefect-agent-role".to_string(),
                // The chart's Role grants pods but not pods/log or events: said, not failed.
                "it may not list events, get pods/log".to_string(),
            ],
            "the Role deleted" => vec![
                format!("may not create jobs, get jobs, list jobs, delete jobs, get pods, list pods in namespace {ns}"),
                "the role of RoleBinding prefect-agent-role-binding → Role prefect-agent-role does not exist".to_string(),
            ],
            "jobs only read" => vec![format!("may not create jobs, delete jobs in namespace {ns}")],
            w if w.contains("another namespace") => vec![format!("in namespace {job_ns}")],
            _ => vec![],
        };
        for part in says {
            assert!(m.contains(part.as_str()), "{what}: {part}: {m}");
        }
        if what.contains("ClusterRole") && *allowed {
            assert!(
                !m.contains("may not create"),
                "{what}: every permission is there: {m}"
            );
        }
        if !refused.is_empty() {
            for part in [
                format!("ServiceAccount {ns}/prefect-serviceaccount"),
                format!("kubectl apply -n {job_ns} -f -"),
                "  name: prefect-serviceaccount\n".to_string(),
                format!("--as system:serviceaccount:{ns}:prefect-serviceaccount"),
            ] {
                assert!(fix.contains(&part), "{what}: {part}: {fix}");
            }
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

/// agent.rbac when the doctor may not read every binding, as the real API server refuses: a Role of
/// deploy/rbac.yaml without `list rolebindings` skips naming it; without the ClusterRole (no `list
/// clusterrolebindings`) the namespace's own grants are enough to pass, and a skip, not a false
/// alarm, when they are not. And a release without an agent: nothing to judge.
#[test]
fn agent_rbac_skips_naming_the_bindings_it_may_not_read() {
    let cp = control_plane!();
    let no_agent = cp.namespace("noagent");
    cp.install(&no_agent, "prefect", &[]);
    let (_, report, _) = doctor(&cp.admin_in(&no_agent), &["--only", "agent.rbac"]);
    assert_eq!(result(&report, "agent.rbac")["status"], "skip", "{report}");

    // The deployed account with `role` (deploy/rbac.yaml's Role, changed) and, when `cluster`,
    // deploy/rbac.yaml's ClusterRole; its run of agent.rbac.
    let run_as = |ns: &str, role: &str, cluster: bool| -> Value {
        let docs: Vec<String> = deploy_in("rbac.yaml", ns)
            .split("\n---\n")
            .filter(|d| cluster || !d.contains("\nkind: Cluster"))
            .map(|d| {
                if d.contains("\nkind: Role\n") {
                    role.to_string()
                } else {
                    d.to_string()
                }
            })
            .collect();
        let (kc, _) = as_the_account_of(cp, ns, &docs.join("\n---\n"));
        let (_, report, _) = doctor(&kc, &["--only", "agent.rbac"]);
        result(&report, "agent.rbac")
    };
    let role_of = |ns: &str| -> String {
        deploy_in("rbac.yaml", ns)
            .split("\n---\n")
            .find(|d| d.contains("\nkind: Role\n"))
            .expect("the Role")
            .to_string()
    };

    let ns = cp.namespace("norb");
    cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
    let without_rolebindings = role_of(&ns).replace(
        "\n  - apiGroups: [rbac.authorization.k8s.io]\n    resources: [rolebindings]\n    verbs: [list]",
        "",
    );
    assert!(!without_rolebindings.contains("[rolebindings]"));
    let r = run_as(&ns, &without_rolebindings, true);
    assert_eq!(r["status"], "skip", "{r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("rolebindings")),
        "{r}"
    );

    let ns = cp.namespace("nocrb");
    cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
    let r = run_as(&ns, &role_of(&ns), false);
    assert_eq!(r["status"], "pass", "the namespace grants everything: {r}");
    cp.kubectl_ok(&["delete", "role", "prefect-agent-role", "-n", &ns]);
    let (kc, _) = kubeconfig_of(cp, &ns, "prefect-doctor");
    let (_, report, _) = doctor(&kc, &["--only", "agent.rbac"]);
    let r = result(&report, "agent.rbac");
    assert_eq!(r["status"], "skip", "not a false alarm: {r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("clusterrolebindings")),
        "{r}"
    );
}

/// A release whose agent runs as another ServiceAccount than the one its RoleBinding names, as a
/// post-renderer (or a hand-edited release) leaves the stored manifest: revision 2 written as Helm
/// writes one, beside the chart's Role and RoleBinding real Helm made. Said, with why.
#[test]
fn an_agent_running_as_a_service_account_no_binding_names_is_said() {
    let cp = control_plane!();
    let ns = cp.namespace("customsa");
    cp.install(&ns, "prefect", &["--set", "agent.enabled=true"]);
    let manifest = cp.helm_ok(&["get", "manifest", "prefect", "-n", &ns]);
    // The agent's Deployment (Helm orders the documents by kind, then name) runs as custom-agent.
    let edited: Vec<String> = manifest
        .split("\n---")
        .map(|doc| {
            if doc.contains("kind: Deployment") && doc.contains("name: prefect-agent\n") {
                doc.replace(
                    "serviceAccountName: prefect-serviceaccount",
                    "serviceAccountName: custom-agent",
                )
            } else {
                doc.to_string()
            }
        })
        .collect();
    let edited = edited.join("\n---");
    assert_eq!(
        edited.matches("serviceAccountName: custom-agent").count(),
        1
    );
    cp.kubectl_ok(&[
        "label",
        "secret",
        "sh.helm.release.v1.prefect.v1",
        "-n",
        &ns,
        "status=superseded",
        "--overwrite",
    ]);
    let release = support::kube::release_json_with(
        "prefect",
        &ns,
        2,
        "deployed",
        json!({"agent": {"enabled": true}}),
        &edited,
    );
    cp.create(
        &support::kube::release_secret(
            "prefect",
            &ns,
            2,
            "deployed",
            &support::kube::helm_encode(&release),
        )
        .to_string(),
    );
    let (_, report, _) = doctor(&cp.admin_in(&ns), &["--only", "agent.rbac"]);
    let r = result(&report, "agent.rbac");
    assert_eq!(r["status"], "fail", "{r}");
    let m = r["message"].as_str().unwrap_or("");
    assert!(
        m.contains(&format!(
            "service account {ns}/custom-agent may not create jobs" // A real cluster binds its defaults to every account (system:basic-user …): none of them
                                                                    // grants a Job, and the message says so rather than that nothing is bound.
        )) && m.contains("roles bound to it grants any of these"),
        "{m}"
    );
}
