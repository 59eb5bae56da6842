//! What hostile servers say: control characters, huge and odd errors, ten thousand misowned
//! functions, a huge server_url; escaped, cut and bounded.

use super::*;

#[test]
fn control_characters_from_servers_are_escaped_in_every_format() {
    let hostile = "1.4\x1b[2J\x1b]0;pwned\x07\r\n✔ db.password  forged\u{202e}";
    let apollo = Server::start(move |hit| {
        let q = hit.query().unwrap_or_default();
        if q.contains("core_version") {
            Reply::json(
                200,
                &json!({"data": {"api": {"version": hostile, "core_version": hostile}}}),
            )
        } else if q.contains("tenant") {
            Reply::json(
                200,
                &json!({"errors": [{"message": hostile, "extensions": {"code": hostile}}]}),
            )
        } else {
            Apollo::default().answer(hit)
        }
    });
    let api = format!("{}/graphql", apollo.url);
    for color in ["always", "never", "auto"] {
        let (_, out, err, _) = run_once(&[
            "check",
            "--color",
            color,
            "-v",
            "--timeout",
            "2s",
            "--api-url",
            &api,
        ]);
        only_our_escapes(&out);
        only_our_escapes(&err);
        assert!(
            !out.lines()
                .any(|l| l.trim_start().starts_with("✔ db.password")),
            "{out}"
        );
        assert!(out.contains("\\x1b[2J") && out.contains("\\r\\n"), "{out}");
    }
    let run = check(&["--timeout", "2s", "--api-url", &api], &[]);
    assert!(
        run.message("api.version").contains("\\x1b]0;pwned\\x07"),
        "{}",
        run.message("api.version")
    );
    // JUnit and SARIF are valid documents whatever the bytes.
    let (_, junit, _, _) =
        run_once(&["check", "-o", "junit", "--timeout", "2s", "--api-url", &api]);
    roxmltree::Document::parse(&junit).expect("JUnit is XML");
    let (_, sarif, _, _) =
        run_once(&["check", "-o", "sarif", "--timeout", "2s", "--api-url", &api]);
    serde_json::from_str::<Value>(&sarif).expect("SARIF is JSON");
}

#[test]
fn a_database_name_with_control_characters_is_escaped_in_messages_and_fixes() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // The server's error names the database it was asked for, bytes and all.
    let url = pg.url(APP_USER, CANARY, "no\x1b[31mdb\r\nforged");
    let (_, out, _, _) = run_once(&[
        "check",
        "--color",
        "always",
        "--database-url",
        &url,
        "--only",
        "db.*",
    ]);
    only_our_escapes(&out);
    assert!(out.contains("no\\x1b[31mdb\\r\\nforged"), "{out}");
}

/// A "PostgreSQL" that answers the startup with the error `message` (SQLSTATE 28000).
fn hostile_postgres(message: Vec<u8>) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        // Serve the connections of one run (several formats run one after another).
        for stream in listener.incoming().take(1) {
            let Ok(mut s) = stream else { continue };
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let n = u32::from_be_bytes(len) as usize;
            let mut rest = vec![0u8; n.saturating_sub(4)];
            let _ = s.read_exact(&mut rest);
            let mut fields = b"SFATAL\0C28000\0M".to_vec();
            fields.extend_from_slice(&message);
            fields.extend_from_slice(b"\0\0");
            let mut msg = vec![b'E'];
            msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
            msg.extend_from_slice(&fields);
            let _ = s.write_all(&msg);
        }
    });
    (addr, handle)
}

#[test]
fn a_ten_mebibyte_postgresql_error_is_a_readable_line() {
    let (addr, handle) = hostile_postgres(vec![b'e'; 10 * 1024 * 1024]);
    let url = format!("postgres://prefect:{CANARY}@{addr}/prefect?sslmode=disable");
    let (_, out, _, _) = run_once(&[
        "check",
        "-o",
        "json",
        "--timeout",
        "3s",
        "--database-url",
        &url,
        "--only",
        "db.password",
    ]);
    handle.join().unwrap();
    assert!(out.len() < 20_000, "the report is {} bytes", out.len());
    let j: Value = serde_json::from_str(&out).unwrap();
    let msg = support::result_in(&j, "db.password")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("bytes cut"), "{msg}");
}

#[test]
fn a_postgresql_servers_error_text_is_escaped() {
    let (addr, handle) = hostile_postgres(
        b"password authentication failed\x1b[2J\x1b]0;pwned\x07\r\n  \xe2\x9c\x94 db.password forged".to_vec(),
    );
    let url = format!("postgres://prefect:{CANARY}@{addr}/prefect?sslmode=disable");
    let (_, out, _, _) = run_once(&[
        "check",
        "--color",
        "always",
        "--timeout",
        "3s",
        "--database-url",
        &url,
        "--only",
        "db.password",
    ]);
    handle.join().unwrap();
    only_our_escapes(&out);
    assert!(out.contains("\\x1b[2J\\x1b]0;pwned\\x07\\r\\n"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.trim_start().starts_with("✔ db.password")),
        "{out}"
    );
}

#[test]
fn ten_thousand_misowned_functions_make_one_generating_statement() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("managed")
        },
    );
    pg.sql(
        "managed",
        "DO $$ BEGIN FOR i IN 1..10000 LOOP \
           EXECUTE format('CREATE FUNCTION hdb_catalog.f%s() RETURNS int LANGUAGE sql AS ''SELECT 1''', i); \
         END LOOP; END $$;",
    );
    let url = pg.url(APP_USER, CANARY, "managed");
    let run = check(
        &["--database-url", &url, "--only", "hasura.function-owner"],
        &[CANARY],
    );
    assert_eq!(run.status("hasura.function-owner"), "fail");
    let msg = run.message("hasura.function-owner");
    assert!(
        msg.starts_with("10001 of 10002 functions") && msg.contains("and 9991 more"),
        "{msg}"
    );
    assert!(msg.len() < 2_100, "{} bytes", msg.len());
    let fix = run.fix("hasura.function-owner");
    assert!(
        fix.contains(
            "SELECT format('ALTER FUNCTION %s OWNER TO %I;', p.oid::regprocedure, 'prefect')"
        ),
        "{fix}"
    );
    assert!(
        fix.contains("\\gexec") && !fix.contains("ALTER FUNCTION hdb_catalog.f1()"),
        "{fix}"
    );
    assert!(
        run.verbose.len() < 40_000,
        "{} bytes of text report",
        run.verbose.len()
    );
    // The generated statement is what it says: run with \gexec it gives every function away.
    pg.sql(
        "managed",
        "SELECT format('ALTER FUNCTION %s OWNER TO %I;', p.oid::regprocedure, 'prefect') \
           FROM pg_proc p WHERE p.pronamespace = 'hdb_catalog'::regnamespace \
            AND NOT pg_has_role('prefect', p.proowner, 'USAGE') \\gexec",
    );
    let run = check(
        &["--database-url", &url, "--only", "hasura.function-owner"],
        &[CANARY],
    );
    assert_eq!(
        run.status("hasura.function-owner"),
        "pass",
        "{}",
        run.message("hasura.function-owner")
    );
}

#[test]
fn a_huge_server_url_is_not_echoed_whole() {
    let server_url = format!("http://{}.example/graphql", "a".repeat(900_000));
    let settings = format!("{{\"server_url\": \"{server_url}\"}}");
    let ui = Server::start(move |hit| ui_answer(hit, &settings));
    let (_, out, _, _) = run_once(&[
        "check",
        "-o",
        "json",
        "--timeout",
        "2s",
        "--ui-url",
        &ui.url,
    ]);
    assert!(out.len() < 60_000, "the report is {} bytes", out.len());
    let (_, text, _, _) = run_once(&["check", "-v", "--timeout", "2s", "--ui-url", &ui.url]);
    assert!(
        text.len() < 60_000,
        "the text report is {} bytes",
        text.len()
    );
}
