//! `fix --apply`: one transaction a check, the journal, the re-check, and the terminal's question.

use super::*;

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
    // The command holds its copies of the terminal until it goes: only the child may, so that the
    // reader meets the end (EIO) once the child has exited, with every byte it wrote read before.
    drop(cmd);
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
