//! `kube.api-versions` against the in-test API server's discovery documents (`/api`, `/apis`,
//! `/version`, as Kubernetes 1.25 answers them): the chart's current manifest, an older chart's
//! `networking.k8s.io/v1beta1` Ingress and `rbac.authorization.k8s.io/v1beta1` RoleBinding, a cluster
//! that still serves them, and a refused discovery.

use crate::support;

use serde_json::json;
use support::{
    check,
    kube::{Cluster, reference},
    kube_server::KubeServer,
};

const ID: &str = "kube.api-versions";

/// The UI Ingress and agent RoleBinding as charts before 2022.02 rendered them.
const OLD_OBJECTS: &str = "---\n# Source: prefect-server/templates/ui/ingress.yaml\n\
apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata:\n  name: prefect-ui\n  labels:\n    \
app.kubernetes.io/instance: prefect\n    app.kubernetes.io/component: ui\nspec:\n  rules:\n    \
- host: prefect.example.com\n      http:\n        paths:\n          - path: /\n            backend:\n              \
serviceName: prefect-ui\n              servicePort: 8080\n---\n# Source: prefect-server/templates/agent/rbac.yaml\n\
apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: RoleBinding\nmetadata:\n  name: prefect-agent-role-binding\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: prefect-agent-role\nsubjects:\n\
- kind: ServiceAccount\n  name: prefect-serviceaccount\n";

fn run_on(server: &KubeServer) -> support::Run {
    let kc = server.kubeconfig();
    let run = check(&["--kubeconfig", &kc, "--timeout", "3s", "--only", ID], &[]);
    server.assert_only_gets();
    run
}

fn old_release() -> Cluster {
    let manifest = format!("{}\n{OLD_OBJECTS}", reference("manifest-rendered.yaml"));
    Cluster::prefect_rendered(json!({"ui": {"ingress": {"enabled": true}}}), &manifest)
}

#[test]
fn current_and_removed_api_versions() {
    let run = run_on(&Cluster::prefect(json!({})).start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);
    assert!(
        run.message(ID).contains(
            "objects of release prefect's manifest use API versions this cluster (v1.25.3) serves"
        ),
        "{}",
        run.message(ID)
    );

    let server = old_release().start();
    let run = run_on(&server);
    assert_eq!(run.status(ID), "warn", "{}", run.text);
    let m = run.message(ID);
    assert!(
        m.starts_with("2 objects of release prefect's stored manifest use API versions this cluster (v1.25.3) no longer serves"),
        "{m}"
    );
    assert!(
        m.contains("Ingress prefect-ui (networking.k8s.io/v1beta1, removed in Kubernetes 1.22; now networking.k8s.io/v1)"),
        "{m}"
    );
    assert!(
        m.contains("RoleBinding prefect-agent-role-binding (rbac.authorization.k8s.io/v1beta1"),
        "{m}"
    );
    assert!(
        m.contains("the next helm upgrade or rollback of the release fails"),
        "{m}"
    );
    let fix = run.fix(ID);
    assert!(
        fix.contains("uses networking.k8s.io/v1beta1, rbac.authorization.k8s.io/v1beta1."),
        "{fix}"
    );
    assert!(
        fix.contains("helm mapkubeapis prefect -n default --dry-run"),
        "{fix}"
    );
    // Discovery was read, not guessed from a version number.
    assert!(
        server.hits().iter().any(|h| h.path == "/apis"),
        "{:?}",
        server.hits()
    );
}

#[test]
fn an_older_cluster_still_serving_them_and_a_refused_discovery() {
    let mut c = old_release();
    c.also_served = vec![
        "networking.k8s.io/v1beta1".into(),
        "rbac.authorization.k8s.io/v1beta1".into(),
    ];
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "pass", "{}", run.text);

    let mut c = old_release();
    c.forbid("get", "apis");
    let run = run_on(&c.start());
    assert_eq!(run.status(ID), "skip", "{}", run.text);
    assert!(run.message(ID).contains("discovery"), "{}", run.message(ID));
}
