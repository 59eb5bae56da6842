//! `prefect-doctor fix` against the harness's real PostgreSQL and an in-test Apollo that learns
//! `create_tenant`: the dry run's plan and its statement log (reads only), every automatic fix
//! applied and checked again, the journal and its undo statements, a refusal rolled back, `--yes`
//! without a terminal, and names that need quoting.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{
    http::Apollo,
    pg::{PgServer, SUPERUSER_PASSWORD},
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once_in,
};

/// Runs `fix ARGS` once; asserts no secret in its output; returns exit code, stdout and stderr.
fn fix(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["fix", "--color", "never"];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    for secret in [CANARY, SUPERUSER_PASSWORD, ADMIN_PASSWORD] {
        assert!(!out.contains(secret), "{secret} in stdout:\n{out}");
        assert!(!err.contains(secret), "{secret} in stderr:\n{err}");
    }
    (code, out, err)
}

/// `fix -o json ARGS`: the exit code and the parsed report.
fn fix_json(args: &[&str]) -> (i32, Value) {
    let mut a = vec!["-o", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = fix(&a);
    let json: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("fix's JSON does not parse ({e}):\n{out}\nstderr: {err}"));
    assert_eq!(json["exit_code"].as_i64(), Some(i64::from(code)), "{out}");
    (code, json)
}

/// What differs between runs: ports, versions, timings.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (
            r"PostgreSQL \d+\.\d+[^ ,\n\x22]*( \([^)]*\))?",
            "PostgreSQL [version]",
        ),
        (r"in \d+ ms", "in [n] ms"),
        (r"(pgcrypto|pg_trgm) [0-9.]+", "$1 [v]"),
        (r"\d+ of the (\d+) connections", "[n] of the $1 connections"),
        (r"are in use \(\d+%\)", "are in use ([p]%)"),
    ]
}

const ADMIN_PASSWORD: &str = "admin-canary-Zz81-secret";

fn entry<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .find(|e| e["check"] == id)
        .unwrap_or_else(|| panic!("no plan entry for {id}: {json:#}"))
}

fn applied<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .find(|e| e["check"] == id)
        .unwrap_or_else(|| panic!("nothing applied for {id}: {json:#}"))
}

fn statements(e: &Value) -> Vec<String> {
    e["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["statement"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What the doctor's own connections sent, from the server's statement log after `from`.
fn ours(pg: &PgServer, from: usize) -> Vec<String> {
    pg.log()[from..]
        .lines()
        .filter(|l| {
            l.contains("app=prefect-doctor")
                && (l.contains("statement: ") || l.contains("execute "))
        })
        .map(|l| {
            let sql = l.split_once(": ").map(|(_, s)| s).unwrap_or("");
            sql.split_once(": ")
                .map(|(_, s)| s)
                .unwrap_or(sql)
                .trim_start()
                .to_string()
        })
        .collect()
}

/// An install with every fault `fix` can make right: the extensions gone after the migrations ran,
/// a time zone that is not UTC, Hasura's catalog owned by a managed database's admin, no tenant.
fn broken(pg: &PgServer) {
    seed(
        pg,
        &Seed {
            extensions: false,
            db_timezone: Some("Europe/Paris".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            hdb_function_owner: Some("postgres".into()),
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
}

/// The database's state as the fixes change it.
fn state(pg: &PgServer) -> (String, String, String, String) {
    (
        pg.sql_value(
            "prefect",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension \
             WHERE extname IN ('pgcrypto', 'pg_trgm')",
        ),
        pg.sql_value(
            "prefect",
            "SELECT coalesce((SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s \
             JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'prefect' \
             AND s.setrole = 0), '')",
        ),
        pg.sql_value(
            "prefect",
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'hdb_catalog'",
        ),
        pg.sql_value(
            "prefect",
            "SELECT string_agg(proname || '=' || proowner::regrole::text, ',' ORDER BY proname) \
             FROM pg_proc WHERE pronamespace = 'hdb_catalog'::regnamespace",
        ),
    )
}

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
fn apply_fixes_everything_then_checks_again_and_journals_the_undo() {
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
    let admin = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/?sslmode=disable",
        pg.port
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("fix.jsonl");
    let journal_arg = journal.display().to_string();
    let fixed = [
        "db.extensions",
        "db.timezone",
        "hasura.schema-owner",
        "hasura.function-owner",
        "tenant.exists",
    ];
    let only: Vec<&str> = fixed.iter().flat_map(|id| ["--only", id]).collect();
    let args = [
        &[
            "--database-url",
            url.as_str(),
            "--api-url",
            &api_url,
            "--admin-url",
            &admin,
            "--apply",
            "--yes",
            "--journal",
            &journal_arg,
        ][..],
        &only,
    ]
    .concat();
    let (code, json) = fix_json(&args);
    assert_eq!(json["mode"], "apply");
    for id in fixed {
        let a = applied(&json, id);
        assert_eq!(a["result"], "fixed", "{id}: {a:#}");
        assert_eq!(a["state"], "committed");
        assert_eq!(a["recheck"], "pass");
    }
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(applied(&json, "db.timezone")["user"], "prefect");
    assert_eq!(applied(&json, "hasura.schema-owner")["user"], "postgres");
    assert_eq!(
        state(&pg),
        (
            "pg_trgm,pgcrypto".to_string(),
            "TimeZone=UTC".to_string(),
            "prefect".to_string(),
            "check_violation=prefect,insert_event_log=prefect".to_string()
        )
    );
    assert_eq!(*created.lock().unwrap(), ["default"]);

    // The journal: a line per statement, as whom, what it replaced and how to undo it.
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    for l in &lines {
        assert_eq!(l["result"], "applied", "{l}");
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
    }
    assert!(!text.contains(SUPERUSER_PASSWORD) && !text.contains(CANARY));
    let schema = lines
        .iter()
        .find(|l| l["check"] == "hasura.schema-owner")
        .unwrap();
    assert_eq!(schema["connection"], "admin");
    assert_eq!(schema["user"], "postgres");
    assert_eq!(schema["replaces"], "owner cloudsqladmin");
    let tenant = lines
        .iter()
        .find(|l| l["check"] == "tenant.exists")
        .unwrap();
    assert_eq!(tenant["connection"], "api");
    assert!(tenant.get("undo").is_none());

    // Every undo, run as written, puts the database back as it was.
    let undo: Vec<String> = lines
        .iter()
        .rev()
        .filter_map(|l| l["undo"].as_str().map(str::to_string))
        .collect();
    pg.sql("prefect", &undo.join("\n"));
    assert_eq!(
        state(&pg),
        (
            String::new(),
            "TimeZone=Europe/Paris".to_string(),
            "cloudsqladmin".to_string(),
            "check_violation=prefect,insert_event_log=postgres".to_string()
        )
    );

    // Applying twice is safe: fix again, then once more with nothing left to do.
    let (code, _) = fix_json(&args);
    assert_eq!(code, 0);
    let (code, json) = fix_json(&args);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["plan"], serde_json::json!([]));
    assert_eq!(json["applied"], serde_json::json!([]));
}

#[test]
fn a_refused_statement_rolls_the_whole_check_back() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("prefect")
        },
    );
    // An admin user that may hand over one function (it is a member of its owner) and not the
    // other (owned by the superuser): the first ALTER succeeds, the second is refused.
    pg.sql(
        "prefect",
        &format!(
            "CREATE ROLE ownera NOLOGIN;\n\
             CREATE FUNCTION hdb_catalog.aaa_first(n int) RETURNS int LANGUAGE sql AS 'SELECT 1';\n\
             ALTER FUNCTION hdb_catalog.aaa_first(int) OWNER TO ownera;\n\
             CREATE ROLE halfadmin LOGIN PASSWORD '{ADMIN_PASSWORD}' IN ROLE ownera, {APP_USER};\n\
             GRANT CREATE ON SCHEMA hdb_catalog TO halfadmin;"
        ),
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("fix.jsonl");
    let admin = pg.url("halfadmin", ADMIN_PASSWORD, "prefect");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "hasura.function-owner",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
        "--journal",
        &journal.display().to_string(),
    ]);
    assert_eq!(code, 1);
    let plan = entry(&json, "hasura.function-owner");
    assert_eq!(statements(plan).len(), 2, "{plan:#}");
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["state"], "rolled_back", "{a:#}");
    assert_eq!(a["failed"], 1);
    assert_eq!(a["result"], "not applied");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("must be owner of function insert_event_log"),
        "{a:#}"
    );
    assert!(
        a["hint"]
            .as_str()
            .unwrap()
            .contains("the --admin-url user may not do this either")
    );
    // Nothing half-applied: the first function is still its old owner's.
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'aaa_first'"
        ),
        "ownera"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["result"], "rolled back");
    assert!(lines[0].get("error").is_none());
    assert_eq!(lines[1]["result"], "failed");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("must be owner")
    );
    assert_eq!(lines[1]["user"], "halfadmin");
    // The text report of the same: the plan, then what became of it.
    let (code, text, _) = fix(&[
        "--database-url",
        &url,
        "--only",
        "hasura.function-owner",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    assert_eq!(code, 1);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("fix_rolled_back_text", text);
    });

    // A wrong --admin-url password: a clear result, nothing done, the password nowhere.
    let wrong = pg.url("postgres", ADMIN_PASSWORD, "prefect");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "hasura.function-owner",
        "--admin-url",
        &wrong,
        "--apply",
        "--yes",
    ]);
    assert_eq!(code, 1);
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["state"], "not_run");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("could not connect with --admin-url"),
        "{a:#}"
    );
}

#[test]
fn apply_without_a_terminal_needs_yes_and_changes_nothing() {
    let pg = PgServer::start();
    broken(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let before = pg.log().len();
    let (code, out, err) = fix(&["--database-url", &url, "--apply"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("add --yes"), "{err}");
    assert!(ours(&pg, before).is_empty(), "nothing at all was sent");
    // --yes and --journal mean nothing without --apply: a usage error.
    let (code, _, err) = fix(&["--database-url", &url, "--yes"]);
    assert_eq!(code, 2, "{err}");
    // A bad --admin-url is a usage error that does not echo its password (fix() looks).
    let bad = format!("postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:notaport/prefect");
    let (code, _, err) = fix(&["--database-url", &url, "--admin-url", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--admin-url"), "{err}");
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
fn an_apollo_that_refuses_the_mutation_is_reported() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    let apollo = Apollo {
        tenants: vec![],
        refuse_create: Some("permission denied: tenant creation is disabled"),
        ..Apollo::default()
    };
    let api = apollo.start();
    let api_url = format!("http://127.0.0.1:{}/graphql", api.port());
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--api-url",
        &api_url,
        "--only",
        "tenant.exists",
        "--apply",
        "--yes",
    ]);
    assert_eq!(code, 1);
    let a = applied(&json, "tenant.exists");
    assert_eq!(a["result"], "not applied", "{a:#}");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("tenant creation is disabled")
    );
    assert!(a["hint"].as_str().unwrap().contains("create-tenant"));
    // And never an INSERT: the table is untouched.
    assert_eq!(
        pg.sql_value("prefect", "SELECT count(*) FROM public.tenant"),
        "0"
    );
}

/// Runs `fix ARGS` with a terminal as its stdin, stdout and stderr; answers the question with
/// `answer` once it is asked. Returns the exit code and everything the terminal showed.
fn on_terminal(args: &[&str], answer: &str) -> (i32, String) {
    use std::{
        io::{Read, Write},
        process::Stdio,
        sync::mpsc,
        time::{Duration, Instant},
    };
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("prefect-doctor"));
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("PATH", "/nonexistent")
        .args(["fix", "--color", "never"])
        .args(args);
    for stdio in 0..3 {
        let fd = pty.slave.try_clone().expect("dup");
        match stdio {
            0 => cmd.stdin(Stdio::from(fd)),
            1 => cmd.stdout(Stdio::from(fd)),
            _ => cmd.stderr(Stdio::from(fd)),
        };
    }
    let mut child = cmd.spawn().expect("start prefect-doctor");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child has exited and no one holds the terminal.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut answered = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(bytes) => seen.extend(bytes),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !answered && String::from_utf8_lossy(&seen).contains("[y/N] ") {
            master.write_all(answer.as_bytes()).expect("answer");
            answered = true;
        }
        if let Ok(Some(_)) = child.try_wait()
            && rx.try_recv().is_err()
        {
            // Give the reader a moment for the last bytes.
            std::thread::sleep(Duration::from_millis(200));
            while let Ok(b) = rx.try_recv() {
                seen.extend(b);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fix on a terminal did not finish"
        );
    }
    let code = child.wait().expect("exit").code().unwrap_or(-1);
    let shown = String::from_utf8_lossy(&seen).replace("\r\n", "\n");
    for secret in [CANARY, SUPERUSER_PASSWORD] {
        assert!(
            !shown.contains(secret),
            "{secret} on the terminal:\n{shown}"
        );
    }
    (code, shown)
}

#[test]
fn on_a_terminal_it_shows_the_plan_and_asks_first() {
    let pg = PgServer::start();
    broken(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let args = ["--database-url", url.as_str(), "--only", "db.*", "--apply"];
    let before = state(&pg);

    // No: nothing changes.
    let (code, shown) = on_terminal(&args, "n\n");
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("Apply 3 changes? [y/N] "), "{shown}");
    assert!(shown.contains("ALTER DATABASE prefect SET timezone TO 'UTC';"));
    assert!(shown.contains("Nothing was applied."), "{shown}");
    assert_eq!(state(&pg), before);
    // One change is one change.
    let one = [
        "--database-url",
        url.as_str(),
        "--only",
        "db.timezone",
        "--apply",
    ];
    let (_, shown) = on_terminal(&one, "n\n");
    assert!(shown.contains("Apply 1 change? [y/N] "), "{shown}");
    assert_eq!(state(&pg), before);

    // Yes: applied and checked again; the plan is shown once, before the question.
    let (code, shown) = on_terminal(&args, "y\n");
    assert_eq!(shown.matches("\nPlan\n").count(), 1, "{shown}");
    assert!(shown.contains("db.timezone  fixed as prefect"), "{shown}");
    assert!(shown.contains("db.extensions  fixed as prefect"), "{shown}");
    assert_eq!(code, 0, "{shown}");
    assert_eq!(state(&pg).1, "TimeZone=UTC");
}

#[test]
fn a_lock_held_elsewhere_costs_one_deadline_and_changes_nothing() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    // Another session (a Hasura migrating, say) has changed the function and not committed: the
    // fix's ALTER waits for that row, and no longer than the deadline.
    let mut locker = hold_the_function(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let admin = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/?sslmode=disable",
        pg.port
    );
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "hasura.*",
        "--admin-url",
        &admin,
        "--timeout",
        "1s",
        "--apply",
        "--yes",
    ]);
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(code, 1);
    // The schema's fix is its own transaction: it went through.
    assert_eq!(applied(&json, "hasura.schema-owner")["result"], "fixed");
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["state"], "rolled_back", "{a:#}");
    assert!(
        a["error"].as_str().unwrap().contains("lock timeout"),
        "{a:#}"
    );
    assert!(
        a["hint"]
            .as_str()
            .unwrap()
            .contains("another session holds")
    );
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'insert_event_log'"
        ),
        "postgres",
        "the locker's change was rolled back when it was killed, and the fix's never happened"
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

/// Starts a session that changes hdb_catalog.insert_event_log and does not commit for a minute;
/// returns once it holds the row.
fn hold_the_function(pg: &PgServer) -> std::process::Child {
    let locker = std::process::Command::new(support::pg::bin_dir().join("psql"))
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", "prefect", "-c"])
        .arg(
            "BEGIN; ALTER FUNCTION hdb_catalog.insert_event_log(text, text, text, text, json) \
             OWNER TO cloudsqladmin; SELECT pg_sleep(60);",
        )
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("PGAPPNAME", "locker")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start psql");
    wait_for(
        pg,
        "application_name = 'locker' AND query LIKE '%pg_sleep%' AND state = 'active'",
    );
    locker
}

/// Waits (30 s at the most) until a session matching `filter` is in pg_stat_activity.
fn wait_for(pg: &PgServer, filter: &str) {
    let started = std::time::Instant::now();
    while pg.sql_value(
        "postgres",
        &format!("SELECT count(*) > 0 FROM pg_stat_activity WHERE {filter}"),
    ) != "t"
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "no session where {filter}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_database_going_away_mid_plan_is_a_clear_result() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    let mut locker = hold_the_function(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let admin = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/?sslmode=disable",
        pg.port
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("fix.jsonl");
    let run = {
        let journal = journal.display().to_string();
        std::thread::spawn(move || {
            fix_json(&[
                "--database-url",
                &url,
                "--only",
                "hasura.*",
                "--admin-url",
                &admin,
                "--timeout",
                "20s",
                "--apply",
                "--yes",
                "--journal",
                &journal,
            ])
        })
    };
    // The fix's ALTER FUNCTION waits for the locker; then its connection is cut.
    wait_for(
        &pg,
        "application_name = 'prefect-doctor' AND wait_event_type = 'Lock'",
    );
    pg.sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'prefect-doctor' AND wait_event_type = 'Lock';",
    );
    let (code, json) = run.join().expect("the fix run");
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(code, 1);
    assert_eq!(applied(&json, "hasura.schema-owner")["result"], "fixed");
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["result"], "not applied", "{a:#}");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("terminating connection"),
        "{a:#}"
    );
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'insert_event_log'"
        ),
        "postgres"
    );
    let journal = std::fs::read_to_string(&journal).unwrap();
    assert!(journal.contains("\"result\":\"failed\""), "{journal}");
}

#[test]
fn through_a_release_the_fixes_go_through_its_port_forwards() {
    use support::{
        http::ui,
        kube::{Cluster, reference},
    };
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            db_timezone: Some("Europe/Paris".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    let apollo = Apollo {
        tenants: vec![],
        ..Apollo::default()
    };
    let created = apollo.created.clone();
    let apollo = apollo.start();
    let ui = ui(&format!("{}/graphql", apollo.url));
    let mut c =
        Cluster::prefect_rendered(serde_json::json!({}), &reference("manifest-rendered.yaml"));
    c.forward("prefect-postgresql", 5432, ([127, 0, 0, 1], pg.port).into());
    c.forward("prefect-apollo", 4200, apollo.addr);
    c.forward("prefect-ui", 8080, ui.addr);
    c.set_secret_key("prefect-postgresql", "postgres-password", CANARY);
    c.set_secret_key("prefect-postgresql", "password", CANARY);
    let server = c.start();
    let kc = server.kubeconfig();
    // The admin URL names only who: where is the release's database, through the same forward.
    let admin = format!("postgres://postgres:{SUPERUSER_PASSWORD}@/");
    let (code, json) = fix_json(&[
        "--kubeconfig",
        &kc,
        "--timeout",
        "3s",
        "--only",
        "db.timezone",
        "--only",
        "tenant.exists",
        "--only",
        "hasura.schema-owner",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    for id in ["db.timezone", "tenant.exists", "hasura.schema-owner"] {
        assert_eq!(applied(&json, id)["result"], "fixed", "{id}: {json:#}");
    }
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(applied(&json, "hasura.schema-owner")["user"], "postgres");
    assert_eq!(*created.lock().unwrap(), ["default"]);
    assert_eq!(json["report"]["release"]["name"], "prefect");
    // The cluster itself was only read (the port-forwards are GETs that upgrade).
    server.assert_only_gets();
}

/// Two `fix --apply` on one database at once: whatever the race gives (one waits for the other,
/// PostgreSQL's "tuple concurrently updated" rolls one back, or one finds nothing left to change), a
/// run whose own change did not take never says `fixed`; when the re-check passes anyway it says
/// `fixed elsewhere`, and the state ends good.
#[test]
fn two_fixes_at_once_never_claim_what_the_other_did() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            db_timezone: Some("Europe/Paris".into()),
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        pg.sql(
            "postgres",
            "ALTER DATABASE prefect SET timezone TO 'Europe/Paris';",
        );
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    fix_json(&[
                        "--database-url",
                        &url,
                        "--only",
                        "db.timezone",
                        "--apply",
                        "--yes",
                    ])
                })
            })
            .collect();
        for r in runs {
            let (code, json) = r.join().unwrap();
            for o in json["applied"].as_array().unwrap() {
                let took = matches!(o["state"].as_str(), Some("committed" | "unknown"));
                let result = o["result"].as_str().unwrap().to_string();
                if !took {
                    assert_ne!(result, "fixed", "{o}");
                }
                if result == "fixed elsewhere" {
                    assert_eq!(o["recheck"], "pass", "{o}");
                    assert!(
                        o["hint"].as_str().unwrap().contains("another session"),
                        "{o}"
                    );
                }
                outcomes.push(result);
            }
            // The other run may also finish before this one plans: then there is nothing to change,
            // said as such (a blocked entry, exit 1), and nothing is claimed.
            let nothing_left = json["plan"].as_array().unwrap().iter().all(|e| {
                e["action"] == "blocked"
                    && e["blocked"]
                        .as_str()
                        .unwrap_or("")
                        .contains("nothing to change")
            });
            assert!(code == 0 || (code == 1 && nothing_left), "{json}");
        }
        assert_eq!(state(&pg).1, "TimeZone=UTC");
    }
    eprintln!("outcomes: {outcomes:?}");
}
