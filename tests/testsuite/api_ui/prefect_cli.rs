//! The API and UI named by the local prefect CLI's configuration.

use super::*;

fn prefect_home(config: &str, backend: Option<&str>) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".prefect");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    if let Some(b) = backend {
        std::fs::write(dir.join("backend.toml"), format!("backend = \"{b}\"\n")).unwrap();
    }
    home
}

fn run_home(home: &std::path::Path, args: &[&str]) -> Value {
    let out = doctor()
        .env("HOME", home)
        .args(["check", "-o", "json", "--timeout", "2s"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn local_prefect_cli_config() {
    let apollo = Apollo::default().start();
    let config = format!(
        "[server]\n  host = \"http://127.0.0.1\"\n  port = {}\n",
        apollo.port()
    );

    // Server backend, endpoint reaches Apollo: pass, and the API target comes from the config.
    let home = prefect_home(&config, Some("server"));
    let json = run_home(home.path(), &[]);
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(
        r["evidence"]["cli_api_source"],
        "~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );
    assert_eq!(result_of(&json, "api.reachable")["status"], "pass");
    assert_eq!(
        json["targets"].as_array().unwrap()[1]["source"],
        "the prefect CLI's API, from ~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
    );

    // `prefect backend server` never run: the CLI talks to Prefect Cloud.
    let home = prefect_home(&config, None);
    let r = result_of(&run_home(home.path(), &[]), "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("Prefect Cloud (https://api.prefect.io), not your server: the backend is \"cloud\" (the default)"),
        "{r}"
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .contains("prefect backend server")
    );

    // The endpoint does not answer: the README's "Connecting to your Server".
    let home = prefect_home(
        "[server]\n  host = \"http://127.0.0.1\"\n  port = 9\n",
        Some("server"),
    );
    let r = result_of(
        &run_home(home.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("which does not answer")
    );
    let fix = r["fix"].as_str().unwrap();
    assert!(fix.contains("host = \"http://<EXTERNAL-IP>\""), "{fix}");
    assert!(
        fix.contains("(it now says\nhttp://127.0.0.1:9)") || fix.contains("http://127.0.0.1:9")
    );

    // Environment variables win over the files, as in prefect.
    let out = doctor()
        .env("HOME", home.path())
        .env("PREFECT__SERVER__ENDPOINT", graphql(&apollo))
        .args(["check", "-o", "json", "--only", "prefect.*"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result_of(&json, "prefect.cli-config")["status"],
        "pass",
        "{json}"
    );

    // A file Prefect cannot load breaks every `prefect` command: this check's finding and a notice
    // at the report's top, whatever `--only` selected; the run goes on.
    let home = prefect_home("[server\nhost = ", Some("server"));
    let json = run_home(home.path(), &["--api-url", &graphql(&apollo)]);
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("every `prefect` command on this machine fails: Prefect 1.4.1 cannot load its configuration: ~/.prefect/config.toml is not valid TOML"),
        "{r}"
    );
    assert!(r["fix"].as_str().unwrap().contains("prefect config"));
    assert_eq!(result_of(&json, "api.reachable")["status"], "pass");
    let only_api = run_home(
        home.path(),
        &["--api-url", &graphql(&apollo), "--only", "api.reachable"],
    );
    assert!(
        only_api["notices"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("config.toml is not valid TOML")),
        "{only_api}"
    );

    // Only Prefect 2 lives in ~/.prefect: not judged as a Prefect 1 CLI.
    let p2 = tempfile::tempdir().unwrap();
    std::fs::create_dir(p2.path().join(".prefect")).unwrap();
    std::fs::write(
        p2.path().join(".prefect/profiles.toml"),
        "active = \"default\"\n[profiles.default]\n",
    )
    .unwrap();
    let r = result_of(
        &run_home(p2.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "skip", "{r}");
    assert!(r["message"].as_str().unwrap().contains("Prefect 2"));

    // No ~/.prefect, no variable, no `prefect` on PATH: no CLI to judge, and the skip says where it would
    // point if installed.
    let empty = tempfile::tempdir().unwrap();
    let r = result_of(
        &run_home(empty.path(), &["--api-url", &graphql(&apollo)]),
        "prefect.cli-config",
    );
    assert_eq!(r["status"], "skip", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("no prefect CLI on this machine"),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap().contains("Prefect Cloud"),
        "{r}"
    );

    // The same with a `prefect` on PATH: Prefect 1.x then talks to Prefect Cloud, and the report says so.
    let bin = empty.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("prefect"), "#!/bin/sh\nexit 0\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("prefect"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let out = doctor()
        .env("HOME", empty.path())
        .env("PATH", format!("/nonexistent:{}", bin.display()))
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "2s",
            "--api-url",
            &graphql(&apollo),
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = result_of(&json, "prefect.cli-config");
    assert_eq!(r["status"], "warn", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("Prefect Cloud (https://api.prefect.io)")
    );
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .contains("prefect backend server")
    );
}
