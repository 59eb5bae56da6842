//! A database that cannot be reached, or is not PostgreSQL, and the PG* variables.

use super::*;

#[test]
fn refused_port_fails_reachable_and_skips_the_rest() {
    let port = closed_port();
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect");
    let run = check(&["--database-url", &url], &[CANARY]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("db.reachable"), "fail");
    assert!(
        run.message("db.reachable").contains("connection refused"),
        "{}",
        run.message("db.reachable")
    );
    assert_eq!(run.result("db.reachable")["evidence"]["failure"], "refused");
    // Everything else is skipped: the database's dependents, the API and UI checks (no target given
    // for them, since --database-url was), and the CLI check (no prefect CLI on this machine).
    assert_eq!(run.json["summary"]["skip"], 30);
    assert!(
        run.message("prefect.cli-config")
            .starts_with("no prefect CLI on this machine"),
        "{}",
        run.message("prefect.cli-config")
    );
    assert!(run.message("api.reachable").starts_with("no API given"));
    assert!(
        run.fix("db.reachable")
            .contains("pg_isready -h 127.0.0.1 -p")
    );
}

#[test]
fn black_holed_port_costs_one_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(16).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect");
    let run = check(&["--database-url", &url, "--timeout", "1s"], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    let msg = run.message("db.reachable");
    assert!(
        msg.contains("timed out") && msg.contains("TCP connection was accepted"),
        "{msg}"
    );
    // A hang guard, not a benchmark: the whole run ends within the timeout plus one second.
    assert!(
        run.elapsed < Duration::from_secs(2),
        "run took {:?}",
        run.elapsed
    );
}

#[test]
fn something_that_is_not_postgres() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().take(16).flatten() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect?sslmode=disable");
    let run = check(&["--database-url", &url], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    assert_eq!(
        run.result("db.reachable")["evidence"]["failure"],
        "not-postgres",
        "{}",
        run.message("db.reachable")
    );
}

#[test]
fn unresolvable_host() {
    let url = format!("postgres://prefect:{CANARY}@db.does-not-exist.invalid:5432/prefect");
    let run = check(&["--database-url", &url, "--timeout", "2s"], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    let msg = run.message("db.reachable");
    // With no resolver reachable, the lookup may time out rather than fail: both say where it stopped.
    assert!(
        msg.contains("does not resolve") || msg.contains("resolving the host name"),
        "{msg}"
    );
}

#[test]
fn pg_environment_variables_are_used() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let out = doctor()
        .args(["check", "--output", "json", "--only", "db.password"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", APP_USER)
        .env("PGPASSWORD", CANARY)
        .env("PGDATABASE", "prefect")
        .env("PGSSLMODE", "disable")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(CANARY));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["targets"][0]["source"], "PG* environment variables");
    assert_eq!(
        json["results"][0]["evidence"]["password_source"],
        "PGPASSWORD"
    );
}
