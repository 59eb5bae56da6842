//! What `fix` plans, and that a dry run writes nothing: quoting, the admin, the time zone, the tenant.

use super::*;

#[test]
fn dry_run_plans_every_automatic_fix_and_writes_nothing() {
    let pg = PgServer::start();
    broken(&pg);
    let apollo = Apollo {
        tenants: vec![],
        ..Apollo::default()
    };
    let created = apollo.created.clone();
    let api = apollo.start();
    let api_url = format!("http://127.0.0.1:{}/graphql", api.port());
    let url = pg.url(APP_USER, CANARY, "prefect");
    let before_state = state(&pg);
    let before = pg.log().len();

    let (code, json) = fix_json(&["--database-url", &url, "--api-url", &api_url]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["mode"], "dry-run");
    assert!(json.get("applied").is_none(), "a dry run applies nothing");

    let ext = entry(&json, "db.extensions");
    assert_eq!(ext["action"], "automatic", "{ext:#}");
    assert_eq!(ext["connection"], "app", "the app user owns the database");
    assert_eq!(
        statements(ext),
        [
            "CREATE EXTENSION IF NOT EXISTS pgcrypto;",
            "CREATE EXTENSION IF NOT EXISTS \"pg_trgm\";"
        ]
    );
    let tz = entry(&json, "db.timezone");
    assert_eq!(tz["action"], "automatic");
    assert_eq!(tz["connection"], "app");
    assert_eq!(
        statements(tz),
        ["ALTER DATABASE prefect SET timezone TO 'UTC';"]
    );
    assert_eq!(
        tz["steps"][0]["replaces"],
        "TimeZone Europe/Paris (source: database)"
    );
    assert_eq!(
        tz["steps"][0]["undo"],
        "ALTER DATABASE prefect SET timezone TO 'Europe/Paris';"
    );
    // Handing over the catalog needs its owners or a superuser, and no --admin-url was given.
    let schema = entry(&json, "hasura.schema-owner");
    assert_eq!(schema["action"], "blocked", "{schema:#}");
    assert_eq!(schema["connection"], "admin");
    assert!(
        schema["blocked"]
            .as_str()
            .unwrap()
            .contains("Pass --admin-url")
    );
    assert_eq!(
        statements(schema),
        ["ALTER SCHEMA hdb_catalog OWNER TO prefect;"]
    );
    let functions = entry(&json, "hasura.function-owner");
    assert_eq!(functions["action"], "blocked");
    assert_eq!(
        statements(functions),
        [
            "ALTER FUNCTION hdb_catalog.insert_event_log(schema_name text, table_name text, \
             trigger_name text, op text, row_data json) OWNER TO prefect;"
        ]
    );
    let tenant = entry(&json, "tenant.exists");
    assert_eq!(tenant["action"], "automatic");
    assert_eq!(tenant["connection"], "api");
    assert_eq!(
        statements(tenant),
        ["mutation($input: create_tenant_input!) { create_tenant(input: $input) { id } }"]
    );
    assert_eq!(
        tenant["steps"][0]["variables"],
        serde_json::json!({"input": {"name": "default", "slug": "default"}})
    );
    // The check run the plan came from is in the report whole.
    assert_eq!(json["report"]["command"], "check");

    // The text plan says the same, and how to apply it.
    let (text_code, text, _) = fix(&["--database-url", &url, "--api-url", &api_url]);
    assert_eq!(text_code, 1);
    for needle in [
        "prefect-doctor fix (dry run: nothing is changed)",
        "ALTER DATABASE prefect SET timezone TO 'UTC';",
        "-- replaces TimeZone Europe/Paris (source: database)",
        "Pass --admin-url (an owner or a superuser)",
        "variables: {\"input\":{\"name\":\"default\",\"slug\":\"default\"}}",
        "`fix --apply` makes the changes",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("fix_dry_run_text", text);
    });

    // Nothing was written: the doctor's statements are reads, the state is as it was, and Apollo
    // never saw the mutation.
    let sent = ours(&pg, before);
    assert!(sent.len() >= 20, "too few statements to prove anything");
    for sql in &sent {
        assert!(
            sql.to_ascii_uppercase().starts_with("SELECT "),
            "the dry run sent a statement that is not a plain read: {sql}"
        );
    }
    assert_eq!(state(&pg), before_state);
    assert!(created.lock().unwrap().is_empty());
    assert!(
        api.hits().iter().all(|h| !h.body.contains("create_tenant")),
        "a dry run sends no mutation"
    );
}

#[test]
fn names_that_need_quoting_are_quoted() {
    let pg = PgServer::start();
    let user = "Pre fect\"User";
    let db = "Prefect DB";
    pg.sql(
        "postgres",
        &format!(
            "CREATE ROLE \"Pre fect\"\"User\" LOGIN PASSWORD '{CANARY}';\n\
             CREATE ROLE \"Cloud Admin\" NOLOGIN;\n\
             CREATE DATABASE \"Prefect DB\" OWNER \"Pre fect\"\"User\";\n\
             ALTER ROLE \"Pre fect\"\"User\" SET timezone TO 'America/New_York';"
        ),
    );
    pg.sql(
        db,
        "CREATE SCHEMA hdb_catalog AUTHORIZATION \"Cloud Admin\";\n\
         CREATE FUNCTION hdb_catalog.\"Odd Name\"(\"some arg\" text) RETURNS int LANGUAGE sql AS 'SELECT 1';\n\
         ALTER FUNCTION hdb_catalog.\"Odd Name\"(text) OWNER TO \"Cloud Admin\";",
    );
    let url = pg.url(user, CANARY, db);
    // Only the user and password: host, port and database are the checked database's.
    let admin = format!("postgres://postgres:{SUPERUSER_PASSWORD}@/?sslmode=disable");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "db.timezone",
        "--only",
        "hasura.*",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    assert_eq!(
        statements(entry(&json, "db.timezone")),
        ["ALTER ROLE \"Pre fect\"\"User\" SET timezone TO 'UTC';"]
    );
    assert_eq!(
        statements(entry(&json, "hasura.schema-owner")),
        ["ALTER SCHEMA hdb_catalog OWNER TO \"Pre fect\"\"User\";"]
    );
    assert_eq!(
        statements(entry(&json, "hasura.function-owner")),
        [
            "ALTER FUNCTION hdb_catalog.\"Odd Name\"(\"some arg\" text) OWNER TO \"Pre fect\"\"User\";"
        ]
    );
    for id in [
        "db.timezone",
        "hasura.schema-owner",
        "hasura.function-owner",
    ] {
        assert_eq!(applied(&json, id)["result"], "fixed", "{json:#}");
    }
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(
        pg.sql_value(
            db,
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'hdb_catalog'"
        ),
        "\"Pre fect\"\"User\""
    );
}

#[test]
fn extensions_need_the_admin_when_the_app_user_may_not_create_them() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            extensions: false,
            app_owns_db: false,
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (code, json) = fix_json(&["--database-url", &url, "--only", "db.extensions"]);
    assert_eq!(code, 1);
    let e = entry(&json, "db.extensions");
    assert_eq!(e["action"], "blocked", "{e:#}");
    assert_eq!(e["connection"], "admin");
    assert!(
        e["connection_why"]
            .as_str()
            .unwrap()
            .contains("lacks CREATE on database"),
        "{e:#}"
    );
    let admin = pg.url("postgres", SUPERUSER_PASSWORD, "prefect");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "db.extensions",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    assert_eq!(applied(&json, "db.extensions")["user"], "postgres");
    assert_eq!(applied(&json, "db.extensions")["result"], "fixed");
    assert_eq!(code, 0, "{json:#}");
}

#[test]
fn a_time_zone_set_on_the_user_in_the_database_is_set_there() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    pg.sql(
        "postgres",
        &format!("ALTER ROLE {APP_USER} IN DATABASE prefect SET timezone TO 'Asia/Tokyo';"),
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "db.timezone",
        "--apply",
        "--yes",
    ]);
    let e = entry(&json, "db.timezone");
    assert_eq!(
        statements(e),
        ["ALTER ROLE prefect IN DATABASE prefect SET timezone TO 'UTC';"]
    );
    assert_eq!(
        e["steps"][0]["undo"],
        "ALTER ROLE prefect IN DATABASE prefect SET timezone TO 'Asia/Tokyo';"
    );
    assert_eq!(applied(&json, "db.timezone")["result"], "fixed");
    assert_eq!(code, 0, "{json:#}");
}

#[test]
fn without_an_api_the_tenant_is_not_created_behind_its_back() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    // The API is down: the tenant check reads the database, and the fix cannot be made.
    let dead = "http://127.0.0.1:9/graphql";
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--api-url",
        dead,
        "--only",
        "tenant.exists",
        "--timeout",
        "1s",
        "--apply",
        "--yes",
    ]);
    assert_eq!(code, 1);
    let e = entry(&json, "tenant.exists");
    assert_eq!(e["action"], "blocked", "{e:#}");
    assert!(
        e["blocked"]
            .as_str()
            .unwrap()
            .contains("a tenant is created through the API"),
        "{e:#}"
    );
    assert!(e["fix"].as_str().unwrap().contains("create-tenant"));
    assert_eq!(json["applied"], serde_json::json!([]));
}
