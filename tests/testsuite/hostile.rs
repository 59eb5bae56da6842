//! Hostile input, end to end on the built binary: a canary secret in every place a secret can enter
//! (flags, values files, the UI's settings.json, redirects, proxies, kubeconfig exec plugins), servers
//! that send control characters, unbounded or malformed answers, and inputs meant to crash or exhaust
//! the program. Each class of the trust promises has its mechanism proven here, not each example.

use crate::support;

use std::{
    io::{Read as _, Write as _},
    time::Duration,
};

use serde_json::{Value, json};
use support::{
    check, doctor,
    http::{Apollo, Reply, Server, ui_answer},
    kube::{Cluster, release_secret},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once, run_sub,
};

/// A canary that only the run learns (from a server or a plugin), never given up front.
const LEARNED: &str = "learned-Secr3t-k4p2w";

fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every ESC in `out` starts an SGR colour sequence of our own; no other control character but
/// `\n` appears.
fn only_our_escapes(out: &str) {
    let mut rest = out;
    while let Some(i) = rest.find('\x1b') {
        let after = &rest[i + 1..];
        let sgr = after.starts_with('[')
            && after[1..].find('m').is_some_and(|m| {
                after[1..1 + m]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';')
            });
        assert!(
            sgr,
            "a raw escape sequence reached the output: {:?}",
            &after[..after.len().min(40)]
        );
        rest = after;
    }
    for c in out.chars() {
        assert!(
            c == '\n' || c == '\x1b' || !c.is_control(),
            "control character {c:?} in the output:\n{out}"
        );
    }
}

/// Writes a kubeconfig for the API server at `server` (cluster extra lines, user body) into `dir`.
fn kubeconfig(dir: &std::path::Path, server: &str, cluster_extra: &str, user: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n    server: {server}\n{cluster_extra}\
             contexts:\n- name: t\n  context:\n    cluster: t\n    user: t\nusers:\n- name: t\n  user:{user}\n"
        ),
    )
    .expect("kubeconfig");
    path.display().to_string()
}

/// The message of `api.reachable` for the API at `base`/graphql.
fn api_reachable(base: &str) -> String {
    let run = check(
        &[
            "--timeout",
            "2s",
            "--api-url",
            &format!("{base}/graphql"),
            "--only",
            "api.reachable",
        ],
        &[],
    );
    run.message("api.reachable").to_string()
}

// ---------------------------------------------------------------------------------------------------
// 1. Secrets learned at run time

#[test]
fn credentials_in_the_uis_server_url_are_never_shown() {
    let apollo = Apollo::default().start();
    let port = apollo.addr.port();
    let settings = format!(
        "{{\"server_url\": \"http://admin:{}@127.0.0.1:{port}/graphql\", \"base_url\": \"/\"}}",
        encoded(LEARNED)
    );
    let ui = Server::start(move |hit| ui_answer(hit, &settings));
    let run = check(
        &["--timeout", "2s", "--ui-url", &ui.url],
        &[LEARNED, &encoded(LEARNED)],
    );
    // The checks still judge the URL (the browser would send those credentials).
    assert_eq!(run.status("ui.settings-json"), "pass", "{}", run.text);
    assert!(run.text.contains("admin:****@127.0.0.1"), "{}", run.text);
}

#[test]
fn credentials_in_a_redirect_are_never_shown() {
    let target =
        Server::start(|hit| ui_answer(hit, "{\"server_url\": \"http://localhost:4200/graphql\"}"));
    let to = format!(
        "http://u:{LEARNED}@127.0.0.1:{}/settings.json",
        target.addr.port()
    );
    let front = Server::start(move |hit| {
        if hit.path == "/settings.json" {
            Reply::new(302, "text/html", "moved").header("location", &to)
        } else {
            ui_answer(hit, "{}")
        }
    });
    let run = check(
        &["--timeout", "2s", "--ui-url", &front.url, "--only", "ui.*"],
        &[LEARNED, &encoded(LEARNED)],
    );
    assert!(run.text.contains("redirected"), "{}", run.text);
}

#[test]
fn usage_errors_never_echo_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    // The parse error is on the line that holds the password.
    std::fs::write(
        &broken,
        format!("postgresql:\n  auth:\n    password: {CANARY}: oops\n"),
    )
    .unwrap();
    let broken = broken.display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "check".into(),
            "--api-url".into(),
            format!("http://u:{CANARY}@[::1"),
        ],
        vec![
            "check".into(),
            "--ui-url".into(),
            format!("http://u:{CANARY}@host:notaport/"),
        ],
        vec![
            "check".into(),
            "--database-url".into(),
            format!("postgres://u:{CANARY}@h:notaport/db"),
        ],
        vec![
            "check".into(),
            "--database-url".into(),
            format!("host=h password={CANARY} port=zz"),
        ],
        vec![
            "check".into(),
            "--resolve".into(),
            format!("http://u:{CANARY}@h:1:x"),
        ],
        vec![
            "preflight".into(),
            "--set".into(),
            format!("postgresql.auth.password={CANARY},a["),
        ],
        vec![
            "preflight".into(),
            "--set".into(),
            format!("postgresql.auth.password={CANARY}\\,x,b[zz]=1"),
        ],
        vec![
            "preflight".into(),
            "--set-string".into(),
            format!("a.token={CANARY},{}", "x.".repeat(100) + "=1"),
        ],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            !err.contains(CANARY) && !out.contains(CANARY),
            "{args:?} leaked: {err}"
        );
        assert!(!err.trim().is_empty(), "{args:?}: no message");
    }
    // A YAML error's snippet shows the line, its password masked.
    let run = run_sub("preflight", &["-f", &broken], &[CANARY]);
    assert_eq!(run.status("values.parse"), "fail");
    assert!(
        run.result("values.parse")["location"]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("password: ****")),
        "{}",
        run.result("values.parse")
    );
}

/// A kubeconfig whose token comes from an exec plugin (the program never sees it), in front of an
/// API server that echoes the bearer token in its 401, as some proxies do.
#[test]
fn a_bearer_token_echoed_by_the_api_server_is_masked() {
    let api = Server::start(|hit| {
        let auth = hit.header("authorization").unwrap_or("").to_string();
        Reply::json(
            401,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized",
                    "code": 401, "message": format!("invalid bearer token: {auth}")}),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let cred = json!({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                      "status": {"token": format!("{LEARNED}-exec-token")}});
    let script = dir.path().join("cred.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho '{cred}'\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = kubeconfig(
        dir.path(),
        &api.url,
        "",
        &format!(
            "\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}",
            script.display()
        ),
    );
    let run = check(
        &[
            "--timeout",
            "3s",
            "--kubeconfig",
            &kubeconfig,
            "--only",
            "kube.release",
        ],
        &[LEARNED],
    );
    assert!(
        api.hits().iter().any(|h| h
            .header("authorization")
            .is_some_and(|a| a.contains(LEARNED))),
        "the plugin's token was sent"
    );
    // A 401's words are not repeated at all (they are the proxy's, and hold the credentials):
    // the message says whose credentials were turned away and what to do.
    let m = run.message("kube.release");
    assert!(
        m.contains("did not accept the credentials of user t (context t): 401 Unauthorized")
            && !m.contains("invalid bearer token"),
        "{m}"
    );
    // A plugin that hangs is stopped at --timeout, one that fails is named (its own words, which may
    // hold what it guards, are not shown), and one that must ask the person is refused: each a
    // clear exit 2, never a hang.
    for (name, body, mode, says) in [
        (
            "hangs.sh",
            "exec /bin/sleep 30",
            "Never",
            "did not finish within 2s and was stopped",
        ),
        (
            "fails.sh",
            &format!("echo 'login expired for {LEARNED}-exec-token' >&2; exit 3") as &str,
            "Never",
            "failed (exit status: 3); run it yourself to see why",
        ),
        (
            "asks.sh",
            "true",
            "Always",
            "must ask for input (interactiveMode: Always)",
        ),
        (
            "prints.sh",
            "echo not-a-credential",
            "Never",
            "printed no ExecCredential",
        ),
    ] {
        let script = dir.path().join(name);
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let config = self::kubeconfig(
            dir.path(),
            &api.url,
            "",
            &format!(
                "\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: {mode}",
                script.display()
            ),
        );
        let started = std::time::Instant::now();
        let (code, _, err, _) = run_once(&["check", "--timeout", "2s", "--kubeconfig", &config]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(says) && err.contains(name), "{name}: {err}");
        assert!(!err.contains(LEARNED), "{name}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_refusing_proxy_is_named_and_its_password_masked() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy = format!("http://user:{LEARNED}@127.0.0.1:{proxy_port}");
    let json_args = [
        "check",
        "-o",
        "json",
        "--timeout",
        "2s",
        "--api-url",
        "http://prefect-api.test:4200/graphql",
        "--only",
        "api.reachable",
    ];
    let out = doctor()
        .args(json_args)
        .env("HTTP_PROXY", &proxy)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(LEARNED), "{text}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = support::result_in(&j, "api.reachable")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("the proxy http://user:****@127.0.0.1") && msg.contains("HTTP_PROXY"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------------
// 2. Control characters from servers

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

// ---------------------------------------------------------------------------------------------------
// 3. Reads that are bounded

#[test]
fn devices_and_huge_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    let big = big.display().to_string();
    for (args, needle) in [
        (vec!["check", "--config", "/dev/zero"], "not a regular file"),
        (
            vec!["check", "--kubeconfig", "/dev/zero"],
            "not a regular file",
        ),
        (
            vec!["check", "--kubeconfig", big.as_str()],
            "larger than 1 MiB",
        ),
        (vec!["check", "--config", big.as_str()], "larger than 1 MiB"),
        (
            vec!["preflight", "--config", dir.path().to_str().unwrap()],
            "not a regular file",
        ),
    ] {
        let (code, _, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A certificate path that is a device fails the connection at once, as a configuration error
    // (the client certificate under require: verify-full would first ask for roots).
    for key in ["sslrootcert", "sslcert"] {
        let (mode, extra) = if key == "sslcert" {
            ("require", "&sslkey=/dev/zero")
        } else {
            ("verify-full", "")
        };
        let url =
            format!("postgres://u:{CANARY}@127.0.0.1:1/db?sslmode={mode}&{key}=/dev/zero{extra}");
        let run = check(
            &["--database-url", &url, "--only", "db.reachable"],
            &[CANARY],
        );
        assert!(
            run.message("db.reachable").contains("not a regular file"),
            "{}",
            run.message("db.reachable")
        );
    }
    // A kubeconfig naming a device as its CA file.
    let kc = kubeconfig(
        dir.path(),
        "https://127.0.0.1:1",
        "    certificate-authority: /dev/zero\n",
        " {}",
    );
    let (code, _, err, _) = run_once(&["check", "--kubeconfig", &kc]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero is not a regular file"), "{err}");
}

#[test]
fn an_oversized_kubernetes_answer_is_cut_off() {
    // An "API server" whose every answer is 20 MiB.
    let huge = Server::start(|_| {
        let mut body =
            b"{\"kind\":\"SecretList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[".to_vec();
        body.extend(std::iter::repeat_n(b' ', 20 * 1024 * 1024));
        body.extend_from_slice(b"]}");
        Reply::new(200, "application/json", body)
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &huge.url, "", " {}");
    let run = check(
        &[
            "--timeout",
            "5s",
            "--kubeconfig",
            &kc,
            "--only",
            "kube.release",
        ],
        &[],
    );
    assert!(
        run.message("kube.release").contains("larger than 16 MiB"),
        "{}",
        run.message("kube.release")
    );
}

// ---------------------------------------------------------------------------------------------------
// 4. Crashes and blow-ups

#[test]
fn deep_wide_and_huge_set_expressions_are_clear_usage_errors() {
    let deep = format!("{}=1", vec!["a"; 10_000].join("."));
    let (code, _, err, _) = run_once(&["preflight", "--set", &deep]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nests deeper than 64 levels"), "{err}");
    let huge = format!("a={}", "x".repeat(100_000));
    let (code, _, err, _) = run_once(&["preflight", "--set", &huge]);
    assert_eq!(code, 2);
    assert!(err.contains("at most 64 KiB"), "{err}");
    let wide_lists = (0..20)
        .map(|i| format!("l{i}[65536]=1"))
        .collect::<Vec<_>>()
        .join(",");
    let (code, _, err, _) = run_once(&["preflight", "--set", &wide_lists]);
    assert_eq!(code, 2);
    assert!(err.contains("list entries"), "{err}");
    // 12,000 assignments in one flag are fine (each location names its own assignment).
    let wide = vec!["ui.apolloApiUrl=http://x/graphql"; 1_500].join(",");
    let run = run_sub("preflight", &["--set", &wide], &[]);
    assert_eq!(run.status("values.parse"), "pass");
    let many = vec!["a=1"; 12_000].join(",");
    let (code, out, err, _) = run_once(&["preflight", "-o", "json", "--set", &many]);
    assert!(code == 0 || code == 1, "{err}");
    assert!(out.len() < 200_000, "{} bytes", out.len());
}

#[test]
fn durations_are_capped_with_a_message() {
    for args in [
        &["check", "--timeout", "18446744073709551615s"][..],
        &["check", "--timeout", "18446744073709551615"],
        &["check", "--wait", "9223372036854775807s"],
        &["check", "--timeout", "11m"],
        &["check", "--wait", "2days"],
    ] {
        let (code, _, err, _) = run_once(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("longer than the maximum"), "{args:?}: {err}");
        assert!(!err.contains("panic"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "timeout = \"18446744073709551615s\"\n").unwrap();
    let (code, _, err, _) = run_once(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("longer than the maximum of 10m"), "{err}");
}

// ---------------------------------------------------------------------------------------------------
// 5. Work and output that are bounded

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

fn garbage_releases(n: usize) -> Cluster {
    let mut c = Cluster::default();
    for i in 0..n {
        c.objects.push(release_secret(
            &format!("junk{i}"),
            "default",
            1,
            "deployed",
            "H4sI////garbage%%%",
        ));
    }
    c
}

#[test]
fn release_discovery_is_bounded_in_requests_time_and_words() {
    // 3,000 unreadable releases: at most 50 are read, and the report says so in a short line.
    let server = garbage_releases(3_000).start();
    let kube_release = |server: &support::kube::KubeServer, timeout: &str| {
        let (_, out, err, elapsed) = run_once(&[
            "check",
            "-o",
            "json",
            "--timeout",
            timeout,
            "--kubeconfig",
            &server.kubeconfig(),
            "--only",
            "kube.release",
        ]);
        let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        let msg = support::result_in(&j, "kube.release")["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let reads = server
            .hits()
            .iter()
            .filter(|h| h.path.contains("/secrets/sh.helm.release"))
            .count();
        (msg, reads, elapsed)
    };
    let (msg, reads, _) = kube_release(&server, "5s");
    assert!(reads <= 50, "{reads} release reads");
    assert!(
        msg.contains("2950 more not read") && msg.len() < 2_100,
        "{msg}"
    );
    drop(server);
    // 30 releases that take a second each to read, under --timeout 2s: one deadline for them all.
    let mut c = garbage_releases(30);
    c.slow_release_reads = Some(Duration::from_secs(1));
    let server = c.start();
    let (msg, reads, elapsed) = kube_release(&server, "2s");
    assert!(msg.contains("not read within 2s"), "{msg}");
    // A deadline, not a benchmark: sequential reads would take 30 s.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    assert!(reads < 30, "{reads} release reads");
}

// ---------------------------------------------------------------------------------------------------
// 6. Exit codes and messages

#[test]
fn write_errors_on_stdout() {
    let bin = env!("CARGO_BIN_EXE_prefect-doctor");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(bin)
        .arg("list")
        .env("HOME", "/nonexistent")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write to standard output"));
    // A closed pipe (`| head`) is not an error.
    let mut child = std::process::Command::new(bin)
        .arg("gen-docs")
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn clear_messages_for_odd_answers() {
    let apollo = Server::start(|hit| {
        if hit.method == "POST" {
            Reply::json(200, &json!(["not", "an", "object"]))
        } else {
            Reply::new(404, "text/plain", "no")
        }
    });
    let msg = api_reachable(&apollo.url);
    assert!(
        msg.contains("JSON that is not a GraphQL answer") && !msg.contains("not JSON"),
        "{msg}"
    );
    // Over 100 response headers.
    let crowded = Server::start(|_| {
        let mut r = Reply::json(200, &json!({"data": {"hello": "👋"}}));
        for i in 0..120 {
            r = r.header(&format!("x-h{i}"), "v");
        }
        r
    });
    let msg = api_reachable(&crowded.url);
    assert!(
        msg.contains("more than 100 headers") && !msg.contains("scheme"),
        "{msg}"
    );
    // HTML from the Kubernetes API (a login portal in front of it).
    let portal = Server::start(|_| {
        Reply::new(
            200,
            "text/html",
            "<html><head><title>Sign in</title></head></html>",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &portal.url, "", " {}");
    let run = check(
        &[
            "--timeout",
            "2s",
            "--kubeconfig",
            &kc,
            "--only",
            "kube.release",
        ],
        &[],
    );
    let msg = run.message("kube.release");
    assert!(
        msg.contains("not Kubernetes JSON") && !msg.contains("line 1 column 1"),
        "{msg}"
    );
    // A duplicate key in a values file: no parser-library advice.
    let dup = dir.path().join("dup.yaml");
    std::fs::write(&dup, "ui:\n  a: 1\n  a: 2\n").unwrap();
    let run = run_sub("preflight", &["-f", dup.to_str().unwrap()], &[]);
    let msg = run.message("values.parse");
    assert!(
        msg.contains("appears twice") && !msg.contains("Options"),
        "{msg}"
    );
}

#[test]
fn secrets_in_the_prefect_config_are_never_shown() {
    let apollo = Apollo::default().start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::create_dir(home.join(".prefect")).unwrap();
    std::fs::write(
        home.join(".prefect/config.toml"),
        format!(
            "backend = \"server\"\n[cloud]\napi_key = \"{LEARNED}-key\"\n[server]\nendpoint = \"http://admin:{LEARNED}@127.0.0.1:{}/graphql\"\n",
            apollo.addr.port()
        ),
    )
    .unwrap();
    for format in ["json", "text", "junit", "sarif"] {
        let out = doctor()
            .args([
                "check",
                "-o",
                format,
                "-v",
                "--timeout",
                "2s",
                "--only",
                "prefect.*",
                "--only",
                "api.*",
            ])
            .env("HOME", home)
            .env("PREFECT__CLOUD__AUTH_TOKEN", format!("{LEARNED}-token"))
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!all.contains(LEARNED), "{format}: {all}");
        if format == "text" {
            assert!(all.contains("admin:****@127.0.0.1"), "{all}");
        }
    }
}

/// The masking of credential shapes leaves the placeholders of hints alone: a user must still read
/// `postgres://prefect:<password>@…` where the report asks for a password.
#[test]
fn placeholders_in_hints_are_not_masked() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("ext.yaml");
    std::fs::write(
        &values,
        "postgresql:\n  useSubChart: false\n  externalHostname: db.example\n  auth:\n    existingSecret: pg\n",
    )
    .unwrap();
    let run = run_sub(
        "preflight",
        &["-f", values.to_str().unwrap(), "--only", "db.reachable"],
        &[],
    );
    let msg = run.message("db.reachable");
    assert!(
        msg.contains("--database-url postgres://prefect:<password>@db.example:5432/prefect"),
        "{msg}"
    );
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn is_fifo(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Every file the program opens, for reading or writing, never blocks on a FIFO and never replaces a
/// special file: a FIFO with no reader or writer is refused at once, with what it is; one that a
/// process reads is written into; a character device is written as it is; a socket is refused.
#[test]
fn special_files_are_never_waited_on_nor_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let f = fifo.display().to_string();
    let dead = "postgres://u@127.0.0.1:9/x";
    // Reads: each refused at once, naming what it is.
    for args in [
        vec!["check", "--config", &f, "--database-url", dead],
        vec!["check", "--checks", &f, "--database-url", dead],
        vec!["check", "--kubeconfig", &f],
        vec!["check", "--from", &f],
        vec!["preflight", "-f", &f],
        vec!["lint-checks", &f],
    ] {
        let started = std::time::Instant::now();
        let (code, out, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("FIFO") || err.contains("not a regular file"),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} waited"
        );
        assert!(is_fifo(&fifo));
    }
    // Writes to a FIFO nobody reads: refused at once, the FIFO left a FIFO.
    for args in [
        vec![
            "bundle",
            "--output-file",
            &f,
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
        vec![
            "check",
            "--report",
            &format!("junit={f}"),
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
        vec![
            "fix",
            "--apply",
            "--yes",
            "--journal",
            &f,
            "--database-url",
            dead,
            "--timeout",
            "1s",
        ],
    ] {
        let started = std::time::Instant::now();
        let (code, out, err, _) = run_once(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("FIFO that no process is reading"),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} waited"
        );
        assert!(is_fifo(&fifo), "{args:?} replaced the FIFO");
    }
    // A FIFO that a process reads: the bundle goes through it, and it stays a FIFO.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    let (code, out, err, _) = run_once(&[
        "bundle",
        "--output-file",
        &f,
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    let got = reader.join().unwrap();
    assert!(code == 1 || code == 0, "{out}{err}");
    assert_eq!(
        &got[..2],
        &[0x1f, 0x8b],
        "a gzip stream came through the FIFO"
    );
    assert!(is_fifo(&fifo));
    // A character device is written as it is (and /dev/null stays /dev/null).
    let (code, out, err, _) = run_once(&[
        "bundle",
        "--output-file",
        "/dev/null",
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    assert!(code == 1 || code == 0, "{out}{err}");
    {
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // A socket: refused, left as it is.
    let sock = d.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let s = sock.display().to_string();
    let (code, _, err, _) = run_once(&[
        "bundle",
        "--output-file",
        &s,
        "--database-url",
        dead,
        "--timeout",
        "1s",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("it is a socket"), "{err}");
    {
        use std::os::unix::fs::FileTypeExt as _;
        assert!(
            std::fs::symlink_metadata(&sock)
                .unwrap()
                .file_type()
                .is_socket()
        );
    }
}
