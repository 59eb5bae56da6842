//! Secrets learned at run time never shown: in URLs, redirects, usage errors, tokens echoed back,
//! proxies, Prefect's configuration; placeholders are not mistaken for them.

use super::*;

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
