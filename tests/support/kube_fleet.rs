//! Releases of the chart in several namespaces of one in-test cluster (a fleet), every pod forwarded
//! to one healthy install.

use serde_json::{Value, json};

use super::{
    http::{Apollo, Server, ui},
    pg::PgServer,
    prefect::{CANARY, Seed, seed},
};

use super::kube::*;
use super::kube_server::KubeServer;

/// Releases of the chart in several namespaces of one in-test cluster, every pod forwarded to one
/// healthy install (a real PostgreSQL, an Apollo, a UI).
pub struct FleetInstall {
    pub pg: PgServer,
    pub apollo: Server,
    pub ui: Server,
    pub server: KubeServer,
}

/// Release `name` of the chart in namespace `ns`: its objects, its pods, its Helm secret.
pub fn release_in(name: &str, ns: &str) -> Vec<Value> {
    // As Helm renders it in `ns`: the services' in-cluster names carry the namespace.
    let manifest = reference("manifest-rendered.yaml").replace(".default", &format!(".{ns}"));
    let mut objects: Vec<Value> = Cluster::prefect_rendered(json!({}), &manifest)
        .objects
        .into_iter()
        .filter(|o| o["type"] != "helm.sh/release.v1")
        .collect();
    for o in &mut objects {
        o["metadata"]["namespace"] = json!(ns);
    }
    let payload = helm_encode(&release_json_with(
        name,
        ns,
        1,
        "deployed",
        json!({}),
        &manifest,
    ));
    objects.push(release_secret(name, ns, 1, "deployed", &payload));
    objects
}

/// The releases (name, namespace) in one cluster; every pod's ports forwarded to one healthy install.
pub fn fleet_install(releases: &[(&str, &str)], tweak: impl FnOnce(&mut Cluster)) -> FleetInstall {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let apollo = Apollo::default().start();
    let ui = ui(&format!("{}/graphql", apollo.url));
    let mut c = Cluster::default();
    for (name, ns) in releases {
        c.objects.extend(release_in(name, ns));
    }
    c.forward("prefect-postgresql", 5432, ([127, 0, 0, 1], pg.port).into());
    c.forward("prefect-apollo", 4200, apollo.addr);
    c.forward("prefect-ui", 8080, ui.addr);
    for s in c
        .objects
        .iter_mut()
        .filter(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "prefect-postgresql")
    {
        s["data"]["postgres-password"] = json!(b64(CANARY.as_bytes()));
        s["data"]["password"] = json!(b64(CANARY.as_bytes()));
    }
    tweak(&mut c);
    FleetInstall {
        pg,
        apollo,
        ui,
        server: c.start(),
    }
}
