//! `db.connections` and `db.size` against the real PostgreSQL: other clients hold connections (idle
//! `psql` sessions) while the role's limit is tightened; Prefect's log table grows past a threshold.

use crate::support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use support::{
    check,
    pg::{PgServer, SUPERUSER_PASSWORD, bin_dir},
    prefect::{APP_USER, CANARY, Seed, seed},
};

/// `n` psql sessions of the app user that each hold a connection for a while.
fn sleepers(pg: &PgServer, n: usize) -> Vec<Child> {
    (0..n)
        .map(|_| {
            Command::new(bin_dir().join("psql"))
                .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
                .args(["-U", APP_USER, "-d", "prefect", "-c", "SELECT pg_sleep(60)"])
                .env("PGPASSWORD", CANARY)
                .env("PGAPPNAME", "sleeper")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("psql")
        })
        .collect()
}

/// Connections of application `sleeper` the server shows (bounded polling until `want`).
fn wait_for_sleepers(pg: &PgServer, want: usize) {
    for _ in 0..100 {
        let out = Command::new(bin_dir().join("psql"))
            .args(["-X", "-tA", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c"])
            .arg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sleeper' AND state = 'active'")
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .output()
            .expect("psql");
        if String::from_utf8_lossy(&out.stdout).trim() == want.to_string() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the {want} sleeping sessions did not connect");
}

/// Ends the sleeping sessions: the clients, and their server backends (a backend in `pg_sleep` does
/// not notice its client going away until the sleep ends).
fn release(pg: &PgServer, held: &mut Vec<Child>) {
    for c in held.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    held.clear();
    pg.sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sleeper';",
    );
    wait_for_sleepers(pg, 0);
}

#[test]
fn connections_in_use_against_the_limits() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let run = || {
        check(
            &["--database-url", &url, "--only", "db.connections"],
            &[CANARY],
        )
    };

    // A quiet server: plenty of room.
    let r = run();
    assert_eq!(r.status("db.connections"), "pass", "{}", r.text);
    assert!(
        r.message("db.connections")
            .contains("connections the server allows"),
        "{}",
        r.message("db.connections")
    );

    // Role limit 5, three other sessions plus the doctor's own: 4 of 5 = 80% → warn, naming them.
    pg.sql(
        "postgres",
        &format!("ALTER ROLE {APP_USER} CONNECTION LIMIT 5;"),
    );
    let mut held = sleepers(&pg, 3);
    wait_for_sleepers(&pg, 3);
    let r = run();
    release(&pg, &mut held);
    assert_eq!(r.status("db.connections"), "warn", "{}", r.text);
    let msg = r.message("db.connections");
    assert!(
        msg.starts_with("4 of the 5 connections role \"prefect\" may open are in use (80%)"),
        "{msg}"
    );
    assert!(msg.contains("prefect/sleeper (3)"), "{msg}");
    assert!(
        r.fix("db.connections")
            .contains("ALTER ROLE prefect CONNECTION LIMIT 200;"),
        "{}",
        r.fix("db.connections")
    );

    // Role limit 20, eighteen other sessions plus the doctor's own: 19 of 20 = 95% → fail.
    pg.sql(
        "postgres",
        &format!("ALTER ROLE {APP_USER} CONNECTION LIMIT 20;"),
    );
    let mut held = sleepers(&pg, 18);
    wait_for_sleepers(&pg, 18);
    let url_json = url.clone();
    let out = support::run_once(&[
        "check",
        "-o",
        "json",
        "--database-url",
        &url_json,
        "--only",
        "db.connections",
    ]);
    release(&pg, &mut held);
    let j: serde_json::Value = serde_json::from_str(&out.1).expect("json");
    let r = support::result_in(&j, "db.connections");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("19 of the 20 connections role \"prefect\" may open are in use (95%)"),
        "{r}"
    );
    assert_eq!(out.0, 1);

    // At the limit itself the doctor cannot log in: db.password says why, and this check waits on it.
    pg.sql(
        "postgres",
        &format!("ALTER ROLE {APP_USER} CONNECTION LIMIT 0;"),
    );
    let r = run();
    assert_eq!(r.status("db.password"), "fail", "{}", r.text);
    assert!(
        r.message("db.password")
            .contains("too many connections for role"),
        "{}",
        r.message("db.password")
    );
    assert_eq!(r.status("db.connections"), "skip");
}

#[test]
fn prefects_growing_tables_against_the_threshold() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // About 3 MB of log lines (rows under the TOAST threshold are stored as they are).
    pg.sql(
        "prefect",
        "SET ROLE prefect; \
         CREATE TABLE public.log (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
           timestamp timestamptz NOT NULL DEFAULT now(), message text); \
         INSERT INTO public.log (message) SELECT repeat('x', 1000) FROM generate_series(1, 3000); \
         RESET ROLE;",
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let run = check(&["--database-url", &url, "--only", "db.size"], &[CANARY]);
    assert_eq!(run.status("db.size"), "pass", "{}", run.text);
    let msg = run.message("db.size");
    assert!(
        msg.contains("(threshold 10.0 GB)") && msg.contains("log "),
        "{msg}"
    );

    // The team's threshold from .prefect-doctor.toml: past it, a warning with the retention SQL.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("doctor.toml");
    std::fs::write(&cfg, "db_size_warning = \"1MB\"\n").unwrap();
    let run = check(
        &[
            "--database-url",
            &url,
            "--only",
            "db.size",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[CANARY],
    );
    assert_eq!(run.status("db.size"), "warn", "{}", run.text);
    // One unit rule for the total, the threshold and every table: never "0 MB" beside kB parts.
    let msg = run.message("db.size");
    assert!(msg.contains("past the 1.0 MB threshold"), "{msg}");
    let sizes = regex::Regex::new(r"\d+(\.\d)? (B|kB|MB|GB)").unwrap();
    let total = sizes
        .find(msg.split("hold ").nth(1).unwrap_or(""))
        .unwrap()
        .as_str();
    assert!(
        !total.starts_with("0 ") && !total.starts_with("0.0"),
        "{msg}"
    );
    assert!(
        sizes
            .find_iter(msg)
            .all(|m| m.as_str().ends_with(" B") || m.as_str().contains('.')),
        "{msg}"
    );
    assert_eq!(run.code, 0, "a warning alone passes");
    let fix = run.fix("db.size");
    assert!(
        fix.contains("DELETE FROM log WHERE timestamp < now() - interval '30 days';"),
        "{fix}"
    );
    assert!(fix.contains("in database `prefect`"), "{fix}");
    // A bad threshold is a usage error.
    std::fs::write(&cfg, "db_size_warning = \"big\"\n").unwrap();
    let (code, _, err, _) = support::run_once(&[
        "check",
        "--database-url",
        &url,
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("db_size_warning"), "{err}");
}
