//! Preflight without a cluster, and against an external database, read-only. (Against a cluster:
//! `control_plane/preflight.rs`, on the real API server.)

use super::*;

#[test]
fn without_a_cluster_the_cluster_checks_say_why() {
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
