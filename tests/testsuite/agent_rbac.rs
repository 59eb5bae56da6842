//! `agent.rbac` against the in-test API server, for the one release the test chart cannot make: an
//! agent whose Deployment runs as another ServiceAccount than the one the chart's binding names (a
//! manifest only a post-renderer or a hand edit stores). Everything else of agent.rbac is judged on
//! the real control plane, with the real authorizer as the oracle (`control_plane/rbac.rs`).

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

#[test]
fn an_agent_running_as_a_service_account_no_binding_names_is_said() {
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
