//! Kubernetes end to end on the built binary: an in-test API server serving the chart's rendered
//! manifest and a Helm release secret encoded as Helm does, with the real test PostgreSQL and the
//! in-process Apollo and UI behind its port-forwards.

use crate::support;

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use support::{
    check,
    http::{Apollo, Server, ui},
    kube::{Cluster, b64, helm_encode, reference, release_json, release_secret},
    kube_server::KubeServer,
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

mod in_test;
mod kubeconfig;
