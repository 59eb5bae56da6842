//! `versions.skew` and the hasura checks without a cluster: `hdb_catalog` in Hasura 1.3's and 2.x's
//! layouts and the `agent` table on the real PostgreSQL, and Apollo's `api { core_version }`. (With
//! the release and its Hasura pod: `control_plane/versions.rs`, on the real API server.)

use crate::support;

use support::{
    check,
    http::{Apollo, Server},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
};

const ID: &str = "versions.skew";

struct Install {
    pg: PgServer,
    apollo: Server,
}

impl Install {
    /// A healthy database whose hdb_catalog is in `layout` ("2": hdb_metadata, "1": hdb_table),
    /// and an Apollo on Prefect Core 1.4.0.
    fn new(layout: &str) -> Install {
        let pg = PgServer::start();
        seed(&pg, &Seed::healthy("prefect"));
        let table = if layout == "2" {
            "CREATE TABLE hdb_catalog.hdb_metadata (id integer PRIMARY KEY, metadata json NOT NULL, resource_version integer NOT NULL DEFAULT 1);"
        } else {
            "CREATE TABLE hdb_catalog.hdb_table (table_schema text, table_name text, configuration jsonb, is_system_defined boolean, is_enum boolean);"
        };
        pg.sql("prefect", table);
        let apollo = Apollo::default().start();
        Install { pg, apollo }
    }

    fn agent(&self, name: &str, version: &str, polled_ago: &str) {
        self.pg.sql(
            "prefect",
            &format!(
                "INSERT INTO agent (tenant_id, name, type, core_version, labels, last_queried) \
                 VALUES ((SELECT id FROM tenant LIMIT 1), '{name}', 'KubernetesAgent', '{version}', '[]', \
                         now() - interval '{polled_ago}');"
            ),
        );
    }
}

#[test]
fn without_a_cluster_what_can_be_compared_is() {
    let i = Install::new("2");
    i.agent("laptop", "0.15.9", "1 minute");
    let db = i.pg.url(APP_USER, CANARY, "prefect");
    // The database alone: nothing to compare the agents' versions or the catalog with.
    let run = check(&["--database-url", &db, "--only", ID], &[CANARY]);
    assert_eq!(run.status(ID), "skip", "{}", run.text);
    assert!(
        run.message(ID).starts_with("nothing to compare"),
        "{}",
        run.message(ID)
    );
    // With the API: the agent is judged against the server's Prefect Core.
    let api = format!("{}/graphql", i.apollo.url);
    let run = check(
        &["--database-url", &db, "--api-url", &api, "--only", ID],
        &[CANARY],
    );
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    assert!(
        run.message(ID).contains("laptop on Prefect 0.15.9"),
        "{}",
        run.message(ID)
    );
    let fix = run.fix(ID);
    assert!(fix.contains("pip install 'prefect==1.4.0'"), "{fix}");
    assert!(
        fix.contains("--set agent.image.tag=1.4.0-python3.9"),
        "{fix}"
    );
}

/// The hasura.* checks judge both catalog layouts: Hasura 2.x's functions (gen_hasura_uuid, its
/// event-trigger insert_event_log) as 1.3's.
#[test]
fn the_hasura_checks_judge_both_catalog_layouts() {
    for layout in ["1", "2"] {
        let i = Install::new(layout);
        let extra = if layout == "2" {
            "CREATE FUNCTION hdb_catalog.gen_hasura_uuid() RETURNS uuid LANGUAGE sql AS 'SELECT gen_random_uuid()';"
        } else {
            "CREATE FUNCTION hdb_catalog.hdb_schema_update_event_notifier() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;"
        };
        i.pg.sql("prefect", &format!("SET ROLE {APP_USER}; {extra}"));
        let db = i.pg.url(APP_USER, CANARY, "prefect");
        let only = || check(&["--database-url", &db, "--only", "hasura.*"], &[CANARY]);
        let run = only();
        assert_eq!(
            run.status("hasura.schema-owner"),
            "pass",
            "{layout}: {}",
            run.text
        );
        assert_eq!(
            run.status("hasura.function-owner"),
            "pass",
            "{layout}: {}",
            run.text
        );
        assert!(
            run.message("hasura.function-owner")
                .contains("all 3 functions"),
            "{}",
            run.text
        );
        // The layout's own function given away: named, with its ALTER.
        let (name, args) = if layout == "2" {
            ("gen_hasura_uuid", "")
        } else {
            ("hdb_schema_update_event_notifier", "")
        };
        i.pg.sql(
            "prefect",
            &format!("ALTER FUNCTION hdb_catalog.{name}({args}) OWNER TO postgres;"),
        );
        let run = only();
        assert_eq!(
            run.status("hasura.function-owner"),
            "fail",
            "{layout}: {}",
            run.text
        );
        assert!(
            run.fix("hasura.function-owner").contains(&format!(
                "ALTER FUNCTION hdb_catalog.{name}() OWNER TO prefect;"
            )),
            "{}",
            run.fix("hasura.function-owner")
        );
    }
}

/// db.schema: a known revision older than the migrations the server's version has means the graphql
/// service has not finished migrating; the newest passes.
#[test]
fn an_unfinished_migration_is_named() {
    let i = Install::new("2");
    let db = i.pg.url(APP_USER, CANARY, "prefect");
    let api = format!("{}/graphql", i.apollo.url);
    let run = check(
        &[
            "--database-url",
            &db,
            "--api-url",
            &api,
            "--only",
            "db.schema",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("db.schema"), "pass", "{}", run.text);
    assert!(
        run.message("db.schema")
            .contains("ac5747fb571c, \"add unique constraint on edge table\", the newest"),
        "{}",
        run.message("db.schema")
    );

    i.pg.sql(
        "prefect",
        "UPDATE alembic_version SET version_num = '9116e81c6dc2';",
    );
    let run = check(
        &[
            "--database-url",
            &db,
            "--api-url",
            &api,
            "--only",
            "db.schema",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("db.schema"), "fail", "{}", run.text);
    let m = run.message("db.schema");
    assert!(
        m.contains("the database is at alembic revision 9116e81c6dc2 (\"add description to flow group table\"), older than ac5747fb571c"),
        "{m}"
    );
    assert!(
        m.contains("Prefect Server 2022.09.23 (from the API at"),
        "{m}"
    );
    assert!(
        m.contains("the graphql service has not finished migrating (3 migrations missing)"),
        "{m}"
    );
    assert!(
        run.fix("db.schema").contains("-c db-upgrade"),
        "{}",
        run.fix("db.schema")
    );

    // Without the server's version, the same revision is said to be behind, not judged.
    let run = check(&["--database-url", &db, "--only", "db.schema"], &[CANARY]);
    assert_eq!(run.status("db.schema"), "pass", "{}", run.text);
    assert!(
        run.message("db.schema")
            .contains("3 behind the newest schema"),
        "{}",
        run.message("db.schema")
    );
}
