//! `preflight` against the real API server: the cluster prerequisites of a values file (the
//! namespace, the database Secret and its keys, the TLS Secrets of the Ingresses, the IngressClass,
//! a default StorageClass) and an external database whose password is in the cluster's Secret, each
//! read as an identity of its own whose every request the audit log then shows was a read.

use super::*;

const SET_CANARY: &str = "Set-Canary-Pw-4d2c8b";

fn preflight(args: &[&str]) -> support::Run {
    support::run_sub("preflight", args, &[support::prefect::CANARY, SET_CANARY])
}

#[test]
fn cluster_prerequisites_are_read_from_the_real_api_server() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cp = control_plane!();
    let ns = cp.namespace("preflight");
    let (class, storage) = (cp.unique("nginx"), cp.unique("standard"));
    cp.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pg-old\n  namespace: {ns}\ndata:\n  \
         postgresql-password: {old}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: pg-two\n  \
         namespace: {ns}\ndata:\n  postgres-password: {set}\n  password: {old}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {class}\nspec:\n  \
         controller: k8s.io/ingress-nginx\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\n\
         metadata:\n  name: {storage}\nprovisioner: example.com/none\n",
        old = b64(support::prefect::CANARY),
        set = b64(SET_CANARY),
    ));
    let (kc, user) = an_account_of_its_own(cp, &ns);
    let dir = tempfile::tempdir().expect("tempdir");
    let values = dir.path().join("v.yaml");
    std::fs::write(
        &values,
        "postgresql:\n  auth:\n    existingSecret: pg-old\n  primary:\n    persistence:\n      \
         enabled: true\nui:\n  service:\n    type: ClusterIP\n  ingress:\n    enabled: true\n    \
         ingressClassName: traefik\n    hosts: [prefect.example]\n    tls:\n      - secretName: \
         ui-tls\n        hosts: [prefect.example]\n",
    )
    .expect("values");
    let values = values.display().to_string();
    let run = preflight(&[
        "-f",
        &values,
        "--kubeconfig",
        &kc,
        "-n",
        &ns,
        "--timeout",
        "10s",
    ]);
    assert_eq!(run.status("cluster.namespace"), "pass", "{}", run.text);
    assert_eq!(run.status("cluster.db-secret"), "fail", "{}", run.text);
    assert!(
        run.message("cluster.db-secret")
            .contains("postgresql-password (charts before 2022.07) but not postgres-password"),
        "{}",
        run.message("cluster.db-secret")
    );
    assert_eq!(run.result("cluster.db-secret")["location"]["line"], 3);
    assert_eq!(run.status("cluster.tls-secrets"), "warn", "{}", run.text);
    assert!(
        run.fix("cluster.tls-secrets")
            .contains(&format!("kubectl create secret tls ui-tls -n {ns}")),
        "{}",
        run.fix("cluster.tls-secrets")
    );
    assert_eq!(run.status("cluster.ingress-class"), "fail", "{}", run.text);
    let m = run.message("cluster.ingress-class");
    assert!(
        m.contains("\"traefik\" but the cluster's IngressClasses are") && m.contains(&class),
        "{m}"
    );
    assert_eq!(run.status("cluster.storage-class"), "fail", "{}", run.text);
    assert!(
        run.message("cluster.storage-class")
            .contains("no default StorageClass"),
        "{}",
        run.message("cluster.storage-class")
    );
    // The two passwords of one Secret differ: the superuser's goes to the user.
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        &ns,
        "--set",
        "postgresql.auth.existingSecret=pg-two",
        "--only",
        "cluster.*",
    ]);
    assert_eq!(run.status("cluster.db-secret"), "fail", "{}", run.text);
    assert!(run.message("cluster.db-secret").contains("differs"));
    // A namespace still to be created.
    let fresh = cp.unique("fresh");
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        &fresh,
        "--only",
        "cluster.namespace",
    ]);
    assert_eq!(run.status("cluster.namespace"), "warn", "{}", run.text);
    assert!(run.fix("cluster.namespace").contains("--create-namespace"));
    only_reads(cp, &user);
}

/// An external database (`postgresql.useSubChart=false`) whose password is in the cluster's Secret
/// named by the values: preflight reads it there (as the chart's services will) and logs in with it.
#[test]
fn an_external_database_is_found_from_the_values_and_the_real_clusters_secret() {
    use support::prefect::{APP_USER, CANARY, create_app_role};
    let cp = control_plane!();
    let pg = support::pg::PgServer::start();
    create_app_role(&pg);
    pg.sql(
        "postgres",
        &format!("CREATE DATABASE prefect_ext OWNER {APP_USER};"),
    );
    let ns = cp.namespace("extdb");
    cp.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "pg",
        "-n",
        &ns,
        &format!("--from-literal=postgres-password={CANARY}"),
    ]);
    let (kc, user) = an_account_of_its_own(cp, &ns);
    let port = pg.port.to_string();
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "--set",
        "postgresql.useSubChart=false,postgresql.externalHostname=127.0.0.1",
        "--set",
        &format!("postgresql.primary.service.ports.postgresql={port}"),
        "--set",
        "postgresql.auth.existingSecret=pg,postgresql.auth.database=prefect_ext",
        "--only",
        "db.*",
        "--only",
        "cluster.db-secret",
    ]);
    assert_eq!(run.status("cluster.db-secret"), "pass", "{}", run.text);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains(&format!(
            "password from secret {ns}/pg key postgres-password"
        )),
        "{targets}"
    );
    only_reads(cp, &user);
}
