//! Preflight against a cluster and an external database, read-only.

use super::*;

#[test]
fn cluster_prerequisites_against_an_api_server() {
    let mut c = Cluster::default();
    c.objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prefect"}, "status": {"phase": "Active"}}));
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-old", "namespace": "prefect"},
        "data": {"postgresql-password": b64(CANARY.as_bytes())}}));
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-two", "namespace": "prefect"},
        "data": {"postgres-password": b64(SET_CANARY.as_bytes()), "password": b64(CANARY.as_bytes())}}));
    c.objects.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}));
    c.objects.push(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"}, "provisioner": "x"}));
    let server = c.start();
    let kc = server.kubeconfig();
    let f = Files::new();
    let p = f.write("v.yaml", "postgresql:\n  auth:\n    existingSecret: pg-old\n  primary:\n    persistence:\n      enabled: true\nui:\n  service:\n    type: ClusterIP\n  ingress:\n    enabled: true\n    ingressClassName: traefik\n    hosts: [prefect.example]\n    tls:\n      - secretName: ui-tls\n        hosts: [prefect.example]\n");
    let run = preflight(&[
        "-f",
        &p,
        "--kubeconfig",
        &kc,
        "-n",
        "prefect",
        "--timeout",
        "3s",
    ]);
    assert_eq!(run.status("cluster.namespace"), "pass", "{}", run.text);
    assert_eq!(run.status("cluster.db-secret"), "fail");
    assert!(
        run.message("cluster.db-secret")
            .contains("postgresql-password (charts before 2022.07) but not postgres-password")
    );
    assert_eq!(at(&run, "cluster.db-secret").1, 3);
    assert_eq!(run.status("cluster.tls-secrets"), "warn");
    assert!(
        run.fix("cluster.tls-secrets")
            .contains("kubectl create secret tls ui-tls -n prefect")
    );
    assert_eq!(run.status("cluster.ingress-class"), "fail");
    assert!(
        run.message("cluster.ingress-class")
            .contains("\"traefik\" but the cluster's IngressClasses are nginx")
    );
    assert_eq!(run.status("cluster.storage-class"), "fail", "{}", run.text);
    assert!(
        run.message("cluster.storage-class")
            .contains("no default StorageClass")
    );
    // The two passwords of one secret differ: the superuser's goes to the user.
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        "prefect",
        "--set",
        "postgresql.auth.existingSecret=pg-two",
        "--only",
        "cluster.*",
    ]);
    assert_eq!(run.status("cluster.db-secret"), "fail", "{}", run.text);
    assert!(run.message("cluster.db-secret").contains("differs"));
    // A namespace to be created.
    let run = preflight(&[
        "--kubeconfig",
        &kc,
        "-n",
        "fresh",
        "--only",
        "cluster.namespace",
    ]);
    assert_eq!(run.status("cluster.namespace"), "warn");
    assert!(run.fix("cluster.namespace").contains("--create-namespace"));
    for h in server.hits() {
        assert_eq!(h.method, "GET", "{h:?}");
    }
    // No cluster: skipped with the reason.
    let run = preflight(&["--only", "cluster.*"]);
    assert!(
        run.message("cluster.namespace")
            .contains("no cluster configured")
    );
}

#[test]
fn an_external_database_is_checked_read_only_in_preflight() {
    let pg = PgServer::start();
    create_app_role(&pg);
    pg.sql("postgres", "CREATE DATABASE prefect_ext OWNER postgres;");
    // Without CREATE on the database: extensions not creatable, hdb_catalog not creatable.
    let url = pg.url(APP_USER, CANARY, "prefect_ext");
    let values = "postgresql:\n  useSubChart: false\n  externalHostname: db.example\n  auth:\n    existingSecret: pg\n";
    let f = Files::new();
    let p = f.write("ext.yaml", values);
    let before = pg.log().len();
    let run = preflight(&["-f", &p, "--database-url", &url]);
    assert_eq!(run.status("values.external-db"), "pass", "{}", run.text);
    assert_eq!(run.status("db.reachable"), "pass", "{}", run.text);
    assert_eq!(run.status("db.password"), "pass");
    assert_eq!(run.status("db.version"), "pass");
    assert_eq!(run.status("db.extensions"), "fail", "{}", run.text);
    assert_eq!(run.status("hasura.schema-owner"), "fail", "{}", run.text);
    assert!(
        run.message("hasura.schema-owner")
            .contains("may not create it"),
        "{}",
        run.message("hasura.schema-owner")
    );
    assert!(
        run.fix("hasura.schema-owner")
            .contains("GRANT CREATE ON DATABASE prefect_ext TO prefect;")
    );
    // With CREATE on the database (PG 15: pgcrypto and pg_trgm are trusted).
    pg.sql(
        "postgres",
        &format!("GRANT CREATE ON DATABASE prefect_ext TO {APP_USER};"),
    );
    let run = preflight(&["-f", &p, "--database-url", &url]);
    assert_eq!(run.status("hasura.schema-owner"), "pass", "{}", run.text);
    assert_eq!(run.status("db.extensions"), "warn", "{}", run.text);
    // Only reads reached the database.
    let log = pg.log()[before..].to_string();
    let statements: Vec<String> = log
        .lines()
        .filter(|l| l.contains("app=prefect-doctor"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("LOG:  ")?;
            let (kind, sql) = rest.split_once(": ")?;
            (kind.starts_with("execute") || kind == "statement")
                .then(|| sql.trim().to_ascii_uppercase())
        })
        .collect();
    assert!(statements.len() >= 5, "{log}");
    for sql in statements {
        assert!(
            sql.starts_with("SELECT") || sql.starts_with("SHOW"),
            "{sql}"
        );
    }
}

#[test]
fn the_external_database_is_found_from_the_values_and_the_clusters_secret() {
    let pg = PgServer::start();
    create_app_role(&pg);
    pg.sql(
        "postgres",
        &format!("CREATE DATABASE prefect_ext OWNER {APP_USER};"),
    );
    let mut c = Cluster::default();
    c.objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": "default"},
        "data": {"postgres-password": b64(CANARY.as_bytes())}}));
    let server = c.start();
    let port = pg.port.to_string();
    let run = preflight(&[
        "--kubeconfig",
        &server.kubeconfig(),
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
        targets.contains("password from secret default/pg key postgres-password"),
        "{targets}"
    );
}
