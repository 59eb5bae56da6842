//! The database checks against a real PostgreSQL server (see tests/support/pg.rs), end to end through
//! the built binary. Every run is checked for the canary password in text, verbose and JSON output.

use crate::support;

use support::{
    check,
    pg::{OracleCase, PgOptions, PgServer, libpq_differences, psql_connects},
    prefect::{APP_USER, CANARY, Seed, seed},
};

fn url(pg: &PgServer, db: &str) -> String {
    pg.url(APP_USER, CANARY, db)
}

/// `prefect-doctor check` on database `db` as the app user, with `extra` flags, in every output
/// format, watching for the canary password.
fn check_db(pg: &PgServer, db: &str, extra: &[&str]) -> support::Run {
    let url = url(pg, db);
    check(
        &[&["--database-url", url.as_str()][..], extra].concat(),
        &[CANARY],
    )
}

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
fn unix_socket_and_keyvalue_connection_string() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dsn = format!(
        "host={} port={} user={APP_USER} password='{CANARY}' dbname=prefect",
        pg.socket_dir().display(),
        pg.port
    );
    let run = check(&["--database-url", &dsn, "--only", "db.*"], &[CANARY]);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);
    assert!(
        run.message("db.reachable").contains(".s.PGSQL."),
        "{}",
        run.message("db.reachable")
    );
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

/// Variables set for one target.
type Env = Vec<(&'static str, String)>;

/// The database target read as libpq reads it, libpq the oracle: for each target (a string, the
/// environment, a service file, a password file) the doctor connects as the user, to the database,
/// host and port and with the TLS libpq does, or both refuse. The oracle is the newest libpq
/// (psycopg's, 18); Debian's psql (libpq 15) must agree too, but for what it does not know yet.
#[test]
fn the_database_target_is_read_as_libpq_reads_it() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // A second server whose sessions are read-only (as a standby's), for host lists and
    // target_session_attrs; and a port nothing listens on.
    let ro = PgServer::start();
    ro.sql(
        "postgres",
        &format!(
            "CREATE ROLE {APP_USER} LOGIN PASSWORD '{CANARY}'; CREATE DATABASE prefect OWNER {APP_USER}; \
             ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();"
        ),
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // libpq's default user is the operating-system user: give it a role here.
    let os_user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    pg.sql(
        "postgres",
        &format!("CREATE ROLE \"{os_user}\" LOGIN PASSWORD '{CANARY}'; GRANT CONNECT ON DATABASE prefect TO \"{os_user}\";"),
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let port = pg.port.to_string();
    let services = dir.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "# the team's services\n[prefect]\nhost=127.0.0.1\nport={port}\nuser={APP_USER}\ndbname=prefect\nsslmode=disable\n\n\
             [other]\nhost=127.0.0.1\nport={port}\ndbname=postgres\nsslmode=disable\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join(".pg_service.conf"),
        format!("[prefect]\nhost=127.0.0.1\nport={port}\nuser={APP_USER}\ndbname=prefect\nsslmode=disable\n"),
    )
    .unwrap();
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, "[prefect]\nthis line has no equals sign\n").unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:*:*:*:{CANARY}\n")).unwrap();
    let mut perms = std::fs::metadata(&pgpass).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&pgpass, perms).unwrap();
    let p = |k: &'static str, v: &str| (k, v.to_string());
    let pw = p("PGPASSWORD", CANARY);
    let file = |f: &std::path::Path| p("PGSERVICEFILE", &f.display().to_string());
    let url = pg.url(APP_USER, CANARY, "prefect");
    let no_user = format!("postgres://127.0.0.1:{port}/prefect?sslmode=disable");
    let ro_port = ro.port.to_string();
    let list = |ports: &[&str], extra: &str| {
        Some(format!(
            "host={} port={} user={APP_USER} password={CANARY} dbname=prefect sslmode=disable {extra}",
            vec!["127.0.0.1"; ports.len()].join(","),
            ports.join(",")
        ))
    };
    let dead = dead.to_string();
    // Targets only libpq 16 and later read (libpq 15 refuses their parameters, or ignores their
    // variables).
    let since_16 = [
        "require_auth: the server's method allowed",
        "require_auth: a cleartext password refused",
        "require_auth: not the server's method",
        "require_auth: none refused",
        "load_balance_hosts=random",
        "PGLOADBALANCEHOSTS",
    ];
    let cases: Vec<(&str, Option<String>, Env)> = vec![
        ("a full URL", Some(url.clone()), vec![]),
        (
            "key=value",
            Some(format!(
                "host=127.0.0.1 port={port} user={APP_USER} password={CANARY} dbname=prefect sslmode=disable"
            )),
            vec![],
        ),
        (
            "no user: the OS user",
            Some(no_user.clone()),
            vec![pw.clone()],
        ),
        (
            "no user, no database: both the OS user's",
            Some(format!("host=127.0.0.1 port={port} sslmode=disable")),
            vec![pw.clone()],
        ),
        (
            "the environment alone",
            None,
            vec![
                p("PGHOST", "127.0.0.1"),
                p("PGPORT", &port),
                p("PGUSER", APP_USER),
                pw.clone(),
                p("PGDATABASE", "prefect"),
                p("PGSSLMODE", "disable"),
            ],
        ),
        (
            "service= with PGSERVICEFILE",
            Some("service=prefect".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "PGSERVICE",
            None,
            vec![p("PGSERVICE", "prefect"), file(&services), pw.clone()],
        ),
        (
            "the string over the service",
            Some("service=prefect dbname=postgres".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "the service over PG* variables",
            Some("service=prefect".into()),
            vec![
                file(&services),
                pw.clone(),
                p("PGDATABASE", "postgres"),
                p("PGUSER", "nobody"),
            ],
        ),
        (
            "a service without a user: the OS user",
            Some("service=other".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "~/.pg_service.conf",
            Some("service=prefect".into()),
            vec![pw.clone()],
        ),
        (
            "an unknown service",
            Some("service=nope".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "a broken service file",
            Some("service=prefect".into()),
            vec![file(&broken), pw.clone()],
        ),
        (
            "a password file with wildcards",
            Some(format!(
                "postgres://{APP_USER}@127.0.0.1:{port}/prefect?sslmode=disable"
            )),
            vec![p("PGPASSFILE", &pgpass.display().to_string())],
        ),
        (
            "several hosts: the first refuses",
            list(&[&dead, &port], ""),
            vec![],
        ),
        (
            "several hosts in a URL",
            Some(format!(
                "postgres://{APP_USER}:{CANARY}@127.0.0.1:{dead},127.0.0.1:{port}/prefect?sslmode=disable"
            )),
            vec![],
        ),
        (
            "several hosts from PGHOST and PGPORT",
            None,
            vec![
                p("PGHOST", "127.0.0.1,127.0.0.1"),
                p("PGPORT", &format!("{dead},{port}")),
                p("PGUSER", APP_USER),
                pw.clone(),
                p("PGDATABASE", "prefect"),
                p("PGSSLMODE", "disable"),
            ],
        ),
        (
            "several hosts: none answers",
            list(&[&dead, &dead], ""),
            vec![],
        ),
        ("more ports than hosts", list(&[&port], "port=1,2"), vec![]),
        (
            "read-write passes the read-only server",
            list(&[&ro_port, &port], "target_session_attrs=read-write"),
            vec![],
        ),
        (
            "PGTARGETSESSIONATTRS",
            list(&[&ro_port, &port], ""),
            vec![p("PGTARGETSESSIONATTRS", "read-write")],
        ),
        (
            "read-only finds the read-only server",
            list(&[&port, &ro_port], "target_session_attrs=read-only"),
            vec![],
        ),
        (
            "primary: the first (neither is in recovery)",
            list(&[&dead, &ro_port, &port], "target_session_attrs=primary"),
            vec![],
        ),
        (
            "standby: none is",
            list(&[&port, &ro_port], "target_session_attrs=standby"),
            vec![],
        ),
        (
            "prefer-standby: any when none is",
            list(
                &[&dead, &ro_port, &port],
                "target_session_attrs=prefer-standby",
            ),
            vec![],
        ),
        (
            "read-write alone on a read-only server",
            list(&[&ro_port], "target_session_attrs=read-write"),
            vec![],
        ),
        (
            "an unknown target_session_attrs",
            list(&[&port], "target_session_attrs=master"),
            vec![],
        ),
        (
            "options make the session read-only",
            list(
                &[&port],
                "target_session_attrs=read-write options='-c default_transaction_read_only=on'",
            ),
            vec![],
        ),
        (
            "PGOPTIONS with a setting the server does not know",
            list(&[&port], ""),
            vec![p("PGOPTIONS", "-c no_such_setting=1")],
        ),
        (
            "application_name and PGAPPNAME",
            list(&[&port], "application_name=team-dashboard"),
            vec![p("PGAPPNAME", "other")],
        ),
        (
            "require_auth: the server's method allowed",
            list(&[&port], "require_auth=scram-sha-256"),
            vec![],
        ),
        (
            "require_auth: a cleartext password refused",
            list(&[&port], "require_auth=password"),
            vec![],
        ),
        (
            "require_auth: not the server's method",
            list(&[&port], "require_auth=!scram-sha-256"),
            vec![],
        ),
        (
            "require_auth: none refused",
            list(&[&port], ""),
            vec![p("PGREQUIREAUTH", "none")],
        ),
        (
            "channel_binding=require without TLS",
            list(&[&port], "channel_binding=require"),
            vec![],
        ),
        (
            "load_balance_hosts=random",
            list(&[&port, &port], "load_balance_hosts=random"),
            vec![],
        ),
        (
            "PGLOADBALANCEHOSTS",
            list(&[&port], ""),
            vec![p("PGLOADBALANCEHOSTS", "sometimes")],
        ),
    ];
    let cases: Vec<OracleCase> = cases
        .into_iter()
        .map(|(name, conninfo, env)| (name, conninfo, env, home.as_path()))
        .collect();
    let differ = libpq_differences(&cases, &since_16, CANARY);
    assert!(differ.is_empty(), "{differ:#?}");
    // The application name the string gives is the one the doctor's session ran under (the server
    // logs it with every statement); its own name only where none is given.
    let log = pg.log();
    let ran_as = |app: &str| {
        log.lines().any(|l| {
            l.contains(&format!("app={app} "))
                && l.contains("current_setting('server_version_num')")
        })
    };
    assert!(ran_as("team-dashboard"), "{log}");
    assert!(ran_as("prefect-doctor"), "{log}");
}

/// libpq's `connect_timeout` (and `PGCONNECT_TIMEOUT`) against a server that takes the connection
/// and never speaks: libpq gives up after it, and so does the doctor (well within its own longer
/// `--timeout`); a value that is not an integer is refused by both.
#[test]
fn connect_timeout_is_honoured_as_libpq_honours_it() {
    // Accepts and says nothing, as a stuck server or a proxy with nothing behind it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            keep.lock().expect("held").push(c);
        }
    });
    let home = tempfile::tempdir().expect("home");
    let env_timeout: Env = vec![("PGCONNECT_TIMEOUT", "2".to_string())];
    for (conninfo, env) in [
        (
            format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=2"),
            Env::new(),
        ),
        (
            format!("host=127.0.0.1 port={port} user=u dbname=d"),
            env_timeout,
        ),
    ] {
        let started = std::time::Instant::now();
        let libpq = psql_connects(Some(&conninfo), &env, home.path());
        let libpq_took = started.elapsed();
        let e = libpq.expect_err("libpq connects to a silent server");
        assert!(e.contains("timeout expired"), "{e}");
        let mut cmd = support::doctor();
        cmd.env("HOME", home.path());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let out = cmd
            .args([
                "check",
                "-o",
                "json",
                "--only",
                "db.reachable",
                "--timeout",
                "30s",
                "--database-url",
                &conninfo,
            ])
            .output()
            .expect("run");
        let took = started.elapsed();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        let r = support::result_in(&json, "db.reachable");
        assert_eq!(r["status"], "fail", "{r}");
        // It waited the connect timeout (2 s), however late the busy machine let it say so.
        let m = r["message"].as_str().unwrap_or("");
        let waited: f64 = m
            .split("timed out after ")
            .nth(1)
            .and_then(|rest| rest.split('s').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no wait in {r}"));
        assert!((2.0..15.0).contains(&waited), "{r}");
        // Both gave up at the connect timeout, not the doctor's own 30 s.
        assert!(
            libpq_took < std::time::Duration::from_secs(15),
            "{libpq_took:?}"
        );
        assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    }
    // Not an integer: both refuse, the doctor as a usage error naming the option.
    let bad = format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=soon");
    let e = psql_connects(Some(&bad), &[], home.path()).expect_err("libpq refuses");
    assert!(
        e.contains("invalid integer value \"soon\" for connection option \"connect_timeout\""),
        "{e}"
    );
    let out = support::doctor()
        .env("HOME", home.path())
        .args(["check", "--only", "db.reachable", "--database-url", &bad])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid integer value \"soon\" for connection option \"connect_timeout\""),
        "{err}"
    );
}
