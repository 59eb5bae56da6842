//! `agent.rbac` against the in-test API server: the chart's own agent Role and RoleBinding, a
//! ServiceAccount the chart's binding does not name, a binding to a deleted Role, ClusterRole
//! bindings and group subjects, a namespace the agent's Jobs go to, and refused reads.

use crate::support;

use serde_json::json;
use support::{
    check,
    kube::{Cluster, agent_manifest},
    kube_server::KubeServer,
};

const ID: &str = "agent.rbac";

fn run_on(server: &KubeServer) -> support::Run {
    let kc = server.kubeconfig();
    let run = check(&["--kubeconfig", &kc, "--timeout", "3s", "--only", ID], &[]);
    server.assert_only_gets();
    run
}

fn cluster(extra_env: &str) -> Cluster {
    Cluster::prefect_rendered(
        json!({"agent": {"enabled": true}}),
        &agent_manifest(1, extra_env),
    )
}

#[test]
fn the_charts_own_rbac_lets_the_agent_run_flows() {
    let run = run_on(&cluster("").start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);
    let m = run.message(ID);
    assert!(
        m.contains(
            "service account default/prefect-serviceaccount may create, get, list and delete jobs"
        ),
        "{m}"
    );
    assert!(
        m.contains("RoleBinding prefect-agent-role-binding → Role prefect-agent-role"),
        "{m}"
    );
    // The chart's Role grants pods but not pods/log or events: said, not failed.
    assert!(m.contains("it may not list events, get pods/log"), "{m}");

    // No agent: nothing to judge.
    let run = run_on(&Cluster::prefect(json!({})).start());
    assert_eq!(run.status(ID), "skip", "{}", run.text);
}

#[test]
fn missing_and_broken_grants_are_named() {
    // The Role was deleted: its binding grants nothing.
    let mut c = cluster("");
    c.remove("Role", "prefect-agent-role");
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    let m = run.message(ID);
    assert!(
        m.contains("may not create jobs, get jobs, list jobs, delete jobs, get pods, list pods in namespace default"),
        "{m}"
    );
    assert!(m.contains("the role of RoleBinding prefect-agent-role-binding → Role prefect-agent-role does not exist"), "{m}");
    let fix = run.fix(ID);
    assert!(
        fix.contains("ServiceAccount default/prefect-serviceaccount"),
        "{fix}"
    );
    assert!(fix.contains("kubectl apply -n default -f -"), "{fix}");
    assert!(fix.contains("  name: prefect-serviceaccount\n"), "{fix}");
    assert!(
        fix.contains("--as system:serviceaccount:default:prefect-serviceaccount"),
        "{fix}"
    );

    // A Role that only reads jobs: what is missing is exactly the writes.
    let mut c = cluster("");
    c.find_mut("Role", "prefect-agent-role")["rules"][0]["verbs"] = json!(["get", "list", "watch"]);
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "fail");
    assert!(
        run.message(ID)
            .contains("may not create jobs, delete jobs in namespace default"),
        "{}",
        run.message(ID)
    );
    assert_eq!(
        run.result(ID)["evidence"]["missing"],
        json!(["create jobs", "delete jobs"])
    );

    // The agent runs as another ServiceAccount than the one the chart's binding names.
    let manifest = agent_manifest(1, "");
    let at = manifest
        .rfind("serviceAccountName: prefect-serviceaccount")
        .unwrap();
    let manifest = format!(
        "{}serviceAccountName: custom-agent{}",
        &manifest[..at],
        &manifest[at + "serviceAccountName: prefect-serviceaccount".len()..]
    );
    let c = Cluster::prefect_rendered(json!({"agent": {"enabled": true}}), &manifest);
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    assert!(
        run.message(ID)
            .contains("service account default/custom-agent may not create jobs")
            && run
                .message(ID)
                .contains("no Role or ClusterRole is bound to it"),
        "{}",
        run.message(ID)
    );
}

#[test]
fn cluster_roles_groups_and_the_agents_namespace() {
    // Jobs go to another namespace, where a RoleBinding to a ClusterRole grants them.
    let env = "          - name: NAMESPACE\n            value: flows\n";
    let mut c = cluster(env);
    let run = run_on(&c.clone().start());
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    assert!(
        run.message(ID).contains("in namespace flows"),
        "{}",
        run.message(ID)
    );
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "flow-runner"},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
                  {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list"]}]}));
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "prefect-flows", "namespace": "flows"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flow-runner"},
        "subjects": [{"kind": "ServiceAccount", "name": "prefect-serviceaccount", "namespace": "default"}]}));
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);
    assert!(
        !run.message(ID).contains("may not"),
        "every permission is there: {}",
        run.message(ID)
    );

    // A ClusterRoleBinding to every service account of the namespace, through a group.
    let mut c = cluster("");
    c.remove("RoleBinding", "prefect-agent-role-binding");
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "admin-ish"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}));
    c.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "ns-admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin-ish"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:default", "apiGroup": "rbac.authorization.k8s.io"}]}));
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);
    assert!(
        run.message(ID)
            .contains("ClusterRoleBinding ns-admins → ClusterRole admin-ish")
    );
}

#[test]
fn refused_reads_skip_naming_what_was_needed() {
    let mut c = cluster("");
    c.forbid("list", "rolebindings");
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "skip", "{}", run.text);
    assert!(
        run.message(ID).contains("rolebindings"),
        "{}",
        run.message(ID)
    );

    // Cluster bindings unreadable: enough when the namespace grants everything …
    let mut c = cluster("");
    c.forbid("list", "clusterrolebindings");
    let run = run_on(&c.clone().start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);
    // … and a skip, not a false alarm, when it does not.
    c.remove("Role", "prefect-agent-role");
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "skip", "{}", run.text);
    assert!(
        run.message(ID).contains("clusterrolebindings"),
        "{}",
        run.message(ID)
    );
}
