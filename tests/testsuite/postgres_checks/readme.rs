//! The chart README's database faults, each found and given its fix, by reads alone.

use super::*;

#[test]
fn healthy_install_passes_everything() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let run = check_db(&pg, "prefect", &[]);
    for r in run.json["results"].as_array().unwrap() {
        // Only the database was given: the API, UI and CLI checks skip, the rest pass.
        let expected = match r["area"].as_str().unwrap() {
            "database" | "hasura" | "tenant" | "runs" => "pass",
            _ => "skip",
        };
        assert_eq!(r["status"], expected, "{r}");
        assert!(r["fix"].is_null(), "no fix on a pass: {r}");
    }
    assert_eq!(run.code, 0, "{}", run.text);
    assert_eq!(run.json["summary"]["pass"], 13);
    assert!(run.message("tenant.exists").contains("1 tenant"));
    assert!(run.message("db.extensions").contains("pgcrypto"));
    assert!(
        run.message("hasura.function-owner")
            .contains("all 2 functions")
    );
    // The masked URL is shown, never the password.
    assert!(run.text.contains(&format!(
        "postgres://prefect:****@127.0.0.1:{}/prefect",
        pg.port
    )));
}

#[test]
fn wrong_password_is_the_readme_bad_password() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let wrong = "canary-Wr0ng-pa55word";
    let run = check(
        &["--database-url", &pg.url(APP_USER, wrong, "prefect")],
        &[CANARY, wrong],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.status("db.reachable"), "pass");
    assert_eq!(run.status("db.password"), "fail");
    assert!(
        run.message("db.password").contains("bad password"),
        "{}",
        run.message("db.password")
    );
    assert_eq!(run.result("db.password")["evidence"]["sqlstate"], "28P01");
    assert!(
        run.verbose.contains("sqlstate: 28P01"),
        "verbose shows evidence:\n{}",
        run.verbose
    );
    assert!(!run.text.contains("sqlstate: 28P01"), "plain text does not");
    // The password was typed in --database-url: what was tried, where it came from, and the fix
    // for that source (not the chart's Secret recipe); PostgreSQL's 28P01 also means "no such user".
    let msg = run.message("db.password");
    assert!(
        msg.contains(&format!("127.0.0.1:{}", pg.port))
            && msg.contains("the password came from the connection string")
            && msg.contains("when user \"prefect\" does not exist"),
        "{msg}"
    );
    let fix = run.fix("db.password");
    assert!(
        fix.contains("--database-url") && fix.contains("percent-encoded"),
        "{fix}"
    );
    assert!(!fix.contains("existingSecret"), "{fix}");
    assert!(fix.contains("ALTER USER prefect"), "{fix}");
    // Everything that needs a session is skipped, naming the root cause.
    for id in [
        "db.version",
        "db.extensions",
        "db.timezone",
        "db.schema",
        "hasura.schema-owner",
    ] {
        assert_eq!(run.status(id), "skip", "{id}");
        assert_eq!(run.message(id), "requires db.password, which failed");
    }
    // tenant.exists reads the database without prerequisites (it prefers the API when there is one).
    assert_eq!(run.status("tenant.exists"), "skip");
    assert!(run.message("tenant.exists").starts_with(
        "the database cannot be read: no database session: password authentication failed"
    ));
}

/// The wrong password's source decides the words and the fix: PGPASSWORD, a pgpass file (the
/// message names the file), and a user that does not exist answering as a wrong password does.
#[test]
fn wrong_password_says_where_it_came_from() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let wrong = "canary-Wr0ng-pa55word";
    let no_password_url = format!("postgres://{APP_USER}@127.0.0.1:{}/prefect", pg.port);
    let env = |k: &str, v: &str| std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
    let run = support::run_sub_in(
        &env("PGPASSWORD", wrong),
        "check",
        &["--database-url", &no_password_url, "--only", "db.*"],
        &[CANARY, wrong],
    );
    assert_eq!(run.status("db.password"), "fail");
    assert!(
        run.message("db.password")
            .contains("the password came from PGPASSWORD")
    );
    assert!(
        run.fix("db.password").contains("export PGPASSWORD="),
        "{}",
        run.fix("db.password")
    );

    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:{APP_USER}:{wrong}\n", pg.port),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&pgpass).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&pgpass, perms).unwrap();
    let run = support::run_sub_in(
        &env("PGPASSFILE", &pgpass.display().to_string()),
        "check",
        &["--database-url", &no_password_url, "--only", "db.*"],
        &[CANARY, wrong],
    );
    assert_eq!(run.status("db.password"), "fail");
    let shown = pgpass.display().to_string();
    assert!(
        run.message("db.password").contains(&shown),
        "{}",
        run.message("db.password")
    );
    assert!(
        run.fix("db.password").contains(&shown),
        "{}",
        run.fix("db.password")
    );

    // No such user: PostgreSQL says 28P01 as for a wrong password; the doctor says both.
    let run = check(
        &[
            "--database-url",
            &pg.url("nosuchuser", wrong, "prefect"),
            "--only",
            "db.*",
        ],
        &[wrong],
    );
    assert_eq!(run.result("db.password")["evidence"]["sqlstate"], "28P01");
    assert!(
        run.message("db.password")
            .contains("when user \"nosuchuser\" does not exist"),
        "{}",
        run.message("db.password")
    );
}

#[test]
fn pg_hba_reject_and_missing_database_have_their_own_messages() {
    let pg = PgServer::start_with(PgOptions {
        hba_prepend: vec!["host all blocked 127.0.0.1/32 reject".to_string()],
        ..PgOptions::default()
    });
    seed(&pg, &Seed::healthy("prefect"));
    pg.sql(
        "postgres",
        &format!("CREATE ROLE blocked LOGIN PASSWORD '{CANARY}';"),
    );

    let run = check(
        &["--database-url", &pg.url("blocked", CANARY, "prefect")],
        &[CANARY],
    );
    assert_eq!(run.status("db.password"), "fail");
    assert!(
        run.message("db.password").contains("pg_hba.conf"),
        "{}",
        run.message("db.password")
    );
    assert_eq!(run.result("db.password")["evidence"]["sqlstate"], "28000");
    assert!(
        run.fix("db.password").contains("host  prefect  blocked"),
        "{}",
        run.fix("db.password")
    );

    let run = check_db(&pg, "no_such_db", &[]);
    assert_eq!(run.status("db.password"), "fail");
    assert_eq!(run.result("db.password")["evidence"]["sqlstate"], "3D000");
    assert!(
        run.message("db.password")
            .contains("database \"no_such_db\" does not exist")
    );
    assert!(
        run.fix("db.password")
            .contains("CREATE DATABASE no_such_db OWNER prefect;")
    );
}

#[test]
fn missing_extensions_creatable_or_not() {
    let pg = PgServer::start();
    assert!(
        pg.version_num >= 13,
        "these cases assume trusted extensions (PostgreSQL 13+)"
    );
    // Before the migrations ran: the app user owns the database (CREATE privilege, trusted
    // extensions) → the migrations can create them.
    seed(
        &pg,
        &Seed {
            extensions: false,
            schema: false,
            ..Seed::healthy("owned")
        },
    );
    let run = check_db(&pg, "owned", &["--only", "db.extensions"]);
    assert_eq!(run.status("db.extensions"), "warn", "{}", run.text);
    assert!(
        run.message("db.extensions").contains("may create them"),
        "{}",
        run.message("db.extensions")
    );
    assert_eq!(run.code, 0, "warnings alone exit 0");

    // A database owned by someone else: no CREATE → fail with the README's SQL.
    seed(
        &pg,
        &Seed {
            extensions: false,
            app_owns_db: false,
            schema: false,
            ..Seed::healthy("others")
        },
    );
    let run = check_db(&pg, "others", &["--only", "db.extensions"]);
    assert_eq!(run.status("db.extensions"), "fail", "{}", run.text);
    let msg = run.message("db.extensions");
    assert!(
        msg.contains("pgcrypto, pg_trgm") && msg.contains("lacks the CREATE privilege"),
        "{msg}"
    );
    let fix = run.fix("db.extensions");
    assert!(
        fix.contains("CREATE EXTENSION IF NOT EXISTS pgcrypto;"),
        "{fix}"
    );
    assert!(
        fix.contains("GRANT CREATE ON DATABASE others TO prefect;"),
        "{fix}"
    );
    assert_eq!(run.code, 1);

    // After the migrations ran (alembic_version exists), nothing will create them any more, even
    // where the user may: fail, with the CREATE EXTENSION and a restart of the graphql service.
    seed(
        &pg,
        &Seed {
            extensions: false,
            ..Seed::healthy("migrated")
        },
    );
    let run = check_db(&pg, "migrated", &["--only", "db.extensions"]);
    assert_eq!(run.status("db.extensions"), "fail", "{}", run.text);
    let msg = run.message("db.extensions");
    assert!(
        msg.contains("pgcrypto, pg_trgm") && msg.contains("migrations have already run"),
        "{msg}"
    );
    let fix = run.fix("db.extensions");
    assert!(
        fix.contains("CREATE EXTENSION IF NOT EXISTS \"pg_trgm\";")
            && fix.contains("kubectl rollout restart deployment/<release>-graphql"),
        "{fix}"
    );
}

#[test]
fn timezone_not_utc_warns_with_the_right_alter() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            db_timezone: Some("Europe/Berlin".into()),
            ..Seed::healthy("berlin")
        },
    );
    let run = check_db(&pg, "berlin", &["--only", "db.timezone"]);
    assert_eq!(run.status("db.timezone"), "warn");
    assert!(
        run.message("db.timezone")
            .contains("\"Europe/Berlin\" (set on database \"berlin\")")
    );
    assert!(
        run.fix("db.timezone")
            .contains("ALTER DATABASE berlin SET timezone TO 'UTC';")
    );
    assert_eq!(run.code, 0);
    let strict = check_db(&pg, "berlin", &["--only", "db.timezone", "--strict"]);
    assert_eq!(strict.code, 1, "--strict fails on warnings");

    // Set on the role, which overrides the database: the fix must be ALTER ROLE.
    pg.sql(
        "postgres",
        "ALTER ROLE prefect SET timezone TO 'America/New_York';",
    );
    let run = check_db(&pg, "berlin", &["--only", "db.timezone"]);
    assert_eq!(run.status("db.timezone"), "warn");
    assert!(
        run.fix("db.timezone")
            .contains("ALTER ROLE prefect SET timezone TO 'UTC';"),
        "{}",
        run.fix("db.timezone")
    );
}

#[test]
fn fresh_database_without_migrations() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            schema: false,
            hdb_catalog: false,
            ..Seed::healthy("fresh")
        },
    );
    let run = check_db(&pg, "fresh", &[]);
    assert_eq!(run.status("db.schema"), "fail");
    assert!(
        run.message("db.schema")
            .contains("public.alembic_version and public.tenant missing")
    );
    assert!(run.fix("db.schema").contains("-c db-upgrade"));
    assert_eq!(run.status("tenant.exists"), "skip");
    assert_eq!(
        run.message("tenant.exists"),
        "the database cannot be read: it has no public.tenant table (see db.schema)"
    );
    // Before Hasura's first start: its user (the database's owner) may create the schema.
    assert_eq!(run.status("hasura.schema-owner"), "pass");
    assert!(
        run.message("hasura.schema-owner")
            .contains("hdb_catalog does not exist yet")
            && run.message("hasura.schema-owner").contains("may create it"),
        "{}",
        run.message("hasura.schema-owner")
    );
    assert_eq!(run.status("hasura.function-owner"), "skip");
}

#[test]
fn no_tenant_fails_with_the_readme_tenant_fix() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            ..Seed::healthy("notenant")
        },
    );
    let run = check_db(&pg, "notenant", &[]);
    assert_eq!(run.status("tenant.exists"), "fail");
    assert_eq!(run.result("tenant.exists")["evidence"]["path"], "sql");
    let fix = run.fix("tenant.exists");
    assert!(
        fix.contains("--set jobs.createTenant.enabled=true"),
        "{fix}"
    );
    assert!(fix.contains(
        "prefect backend server && prefect server create-tenant --name default --slug default"
    ));
    assert_eq!(run.code, 1);
}

#[test]
fn hdb_catalog_ownership() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_schema_owner: Some("cloudsqladmin".into()),
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("managed")
        },
    );
    let run = check_db(&pg, "managed", &["--only", "hasura.*"]);
    assert_eq!(run.status("hasura.schema-owner"), "fail");
    assert!(
        run.message("hasura.schema-owner")
            .contains("owned by \"cloudsqladmin\"")
    );
    assert!(
        run.fix("hasura.schema-owner")
            .contains("ALTER SCHEMA hdb_catalog OWNER TO prefect;")
    );
    assert_eq!(run.status("hasura.function-owner"), "fail");
    let msg = run.message("hasura.function-owner");
    assert!(
        msg.contains("1 of 2 functions") && msg.contains("insert_event_log(schema_name text"),
        "{msg}"
    );
    let fix = run.fix("hasura.function-owner");
    assert!(
        fix.contains("ALTER FUNCTION hdb_catalog.insert_event_log(schema_name text, table_name text, trigger_name text, op text, row_data json) OWNER TO prefect;"),
        "{fix}"
    );
    assert!(
        !fix.contains("check_violation"),
        "only offenders get an ALTER: {fix}"
    );

    // Another Hasura user: everything owned by prefect is now wrong for it.
    pg.sql("postgres", "CREATE ROLE hasura LOGIN;");
    let run = check_db(
        &pg,
        "managed",
        &["--only", "hasura.*", "--hasura-user", "hasura"],
    );
    assert_eq!(run.status("hasura.function-owner"), "fail");
    assert!(
        run.fix("hasura.function-owner")
            .contains("check_violation(msg text) OWNER TO hasura;")
    );
    // A Hasura user that does not exist is named as such.
    let run = check_db(
        &pg,
        "managed",
        &["--only", "hasura.*", "--hasura-user", "nobody"],
    );
    assert!(
        run.message("hasura.schema-owner")
            .contains("\"nobody\" does not exist")
    );
}

#[test]
fn check_sends_nothing_but_reads() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            db_timezone: Some("Asia/Tokyo".into()),
            ..Seed::healthy("prefect")
        },
    );
    let before = pg.log().len();
    let run = check_db(&pg, "prefect", &[]);
    for r in run.json["results"].as_array().unwrap() {
        if matches!(
            r["area"].as_str(),
            Some("database" | "hasura" | "tenant" | "runs")
        ) {
            assert_ne!(
                r["status"], "skip",
                "every database check ran: {}",
                run.text
            );
        }
    }
    let log = pg.log();
    let ours: Vec<&str> = log[before..]
        .lines()
        .filter(|l| {
            l.contains("app=prefect-doctor")
                && (l.contains("statement: ") || l.contains("execute "))
        })
        .collect();
    // Three runs (JSON, text, verbose), each of every check: plenty of statements.
    assert!(
        ours.len() >= 30,
        "too few statements logged to prove anything: {ours:#?}"
    );
    let mut asked: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for line in &ours {
        let sql = line.split_once(": ").map(|(_, s)| s).unwrap_or("");
        let sql = sql
            .split_once(": ")
            .map(|(_, s)| s)
            .unwrap_or(sql)
            .trim_start();
        assert!(
            sql.to_ascii_uppercase().starts_with("SELECT "),
            "prefect-doctor sent a statement that is not a plain read: {line}"
        );
        // Each run is one session (one backend): no statement is asked twice in it, even when
        // two checks need its answer (the Hasura checks' schema owner and role).
        let pid = line
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map_or("", |(p, _)| p);
        assert!(
            asked.insert((pid, sql)),
            "asked twice in one session: {line}"
        );
    }
    // The extensions are installed, so nothing asks what the server could install: those views
    // read every control file (and every script's name) in the server's extension directory.
    assert!(
        !ours.iter().any(|l| l.contains("pg_available_extension")),
        "read the extension directory though nothing was missing: {ours:#?}"
    );
    // And the database is as it was: still no tenant, still Tokyo.
    let again = check_db(&pg, "prefect", &[]);
    assert_eq!(again.status("tenant.exists"), "fail");
    assert_eq!(again.status("db.timezone"), "warn");
}

#[test]
fn another_applications_database_is_named_as_such() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            schema: false,
            tenant: false,
            hdb_catalog: false,
            ..Seed::healthy("shop")
        },
    );
    pg.sql(
        "shop",
        "CREATE SCHEMA sales; CREATE TABLE public.customers (id int); CREATE TABLE public.orders (id int); \
         CREATE TABLE sales.invoices (id int); CREATE TABLE public.a1 (id int); CREATE TABLE public.a2 (id int); \
         CREATE TABLE public.a3 (id int);",
    );
    let run = check_db(&pg, "shop", &["--only", "db.schema"]);
    assert_eq!(run.status("db.schema"), "fail");
    let msg = run.message("db.schema");
    assert!(
        msg.starts_with("database \"shop\" answers but is not Prefect Server's: it holds 6 other tables (public.a1, public.a2, public.a3, public.customers, public.orders … and 1 more)"),
        "{msg}"
    );
    assert!(msg.contains("(target from --database-url)"), "{msg}");
    let fix = run.fix("db.schema");
    assert!(
        fix.contains("prefect-doctor check --database-url postgres://prefect:<password>@"),
        "{fix}"
    );
    assert!(fix.contains("database `shop`"), "{fix}");
}

#[test]
fn tenant_prefers_the_api_and_falls_back_to_the_database() {
    use support::http::{Apollo, Server, default_backend};
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    // The API answers (with a tenant the database does not have: the API wins, as the UI sees it).
    let apollo = Apollo::default().start();
    let api = format!("{}/graphql", apollo.url);
    let run = check_db(&pg, "prefect", &["--api-url", &api]);
    assert_eq!(run.status("tenant.exists"), "pass");
    assert_eq!(run.result("tenant.exists")["evidence"]["path"], "api");

    // The API gives no answer (an ingress default backend): the database answers instead, and the
    // report says both.
    let backend = Server::start(default_backend);
    let api = format!("{}/graphql", backend.url);
    let run = check_db(&pg, "prefect", &["--api-url", &api]);
    assert_eq!(run.status("tenant.exists"), "fail");
    let r = run.result("tenant.exists");
    assert_eq!(r["evidence"]["path"], "sql");
    let m = run.message("tenant.exists");
    assert!(
        m.starts_with("no tenant (from database \"prefect\"; the API at"),
        "{m}"
    );
    assert!(m.contains("default backend - 404"), "{m}");
    assert!(
        run.fix("tenant.exists")
            .contains("jobs.createTenant.enabled=true")
    );
}
