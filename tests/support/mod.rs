//! Shared test support: a real PostgreSQL server, Prefect-like seeding, and a runner for the built
//! binary that checks every output format for leaked secrets.
#![allow(dead_code)]

pub mod cluster;
pub mod cluster_own;
pub mod cluster_pki;
pub mod dying;
pub mod http;
pub mod kube;
pub mod kube_fleet;
pub mod kube_relay;
pub mod kube_server;
pub mod kubelet;
pub mod libpq;
pub mod pg;
pub mod prefect;
pub mod sarif;
pub mod serving;
pub mod test_chart;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Run {
    pub code: i32,
    pub json: Value,
    pub text: String,
    pub verbose: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// The result of check `id` in a JSON report.
pub fn result_in<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("no result for {id} in {json}"))
}

/// [`result_in`], owned (for reports that are temporaries).
pub fn result_of(json: &Value, id: &str) -> Value {
    result_in(json, id).clone()
}

impl Run {
    pub fn result(&self, id: &str) -> &Value {
        result_in(&self.json, id)
    }
    pub fn status(&self, id: &str) -> &str {
        self.result(id)["status"].as_str().unwrap_or("?")
    }
    pub fn message(&self, id: &str) -> &str {
        self.result(id)["message"].as_str().unwrap_or("")
    }
    pub fn fix(&self, id: &str) -> &str {
        self.result(id)["fix"].as_str().unwrap_or("")
    }
}

/// The built binary with a clean environment (no PG*, PREFECT__* or proxy variables, no ~/.pgpass,
/// no ~/.prefect), with a 60 s deadline.
pub fn doctor() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(doctor_process());
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// As [`doctor`], as a process to spawn and talk to while it runs (no deadline: the caller stops it).
#[allow(dead_code)]
pub fn doctor_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("prefect-doctor"));
    for (k, _) in std::env::vars() {
        let proxy = k.to_ascii_lowercase().ends_with("_proxy");
        if k.starts_with("PG")
            || k.starts_with("PREFECT__")
            || proxy
            || k == "NO_COLOR"
            || k.starts_with("CLICOLOR")
            || k.starts_with("SSL_CERT")
            || k == "KUBECONFIG"
            || k.starts_with("KUBERNETES_")
        {
            cmd.env_remove(k);
        }
    }
    // No home and no `prefect` on PATH: the machine has no prefect CLI unless a test gives it one (the
    // binary runs no other program, so it needs no PATH).
    cmd.env("HOME", "/nonexistent").env("PATH", "/nonexistent");
    cmd
}

/// Runs the binary, asserts it exits 0, and returns its stdout.
pub fn stdout_of_success(args: &[&str]) -> String {
    let out = doctor()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).expect("UTF-8 output")
}

/// Runs the binary, whatever its exit code, and returns its stdout.
pub fn stdout_of_any(args: &[&str]) -> String {
    let out = doctor().args(args).output().expect("run prefect-doctor");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the binary once: exit code, stdout, stderr and wall time.
pub fn run_once(args: &[&str]) -> (i32, String, String, Duration) {
    run_once_in(&BTreeMap::new(), args)
}

/// As [`run_once`], with `env` set on top of [`doctor`]'s clean environment.
pub fn run_once_in(
    env: &BTreeMap<String, String>,
    args: &[&str],
) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let out = doctor()
        .envs(env)
        .args(args)
        .output()
        .expect("run prefect-doctor");
    let elapsed = started.elapsed();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    )
}

/// Runs `prefect-doctor check ARGS` as JSON, text, verbose text, JUnit and SARIF; asserts that none of
/// `secrets` appears anywhere (stdout or stderr) and that all five agree on the exit code.
pub fn check(args: &[&str], secrets: &[&str]) -> Run {
    run_sub("check", args, secrets)
}

/// As [`check`], for any subcommand that reports (`check`, `preflight`).
pub fn run_sub(sub: &str, args: &[&str], secrets: &[&str]) -> Run {
    run_sub_in(&BTreeMap::new(), sub, args, secrets)
}

/// As [`run_sub`], with `env` set on top of [`doctor`]'s clean environment.
pub fn run_sub_in(
    env: &BTreeMap<String, String>,
    sub: &str,
    args: &[&str],
    secrets: &[&str],
) -> Run {
    let mut json_args = vec![sub, "--output", "json"];
    json_args.extend_from_slice(args);
    let (code, stdout, stderr, elapsed) = run_once_in(env, &json_args);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("JSON report does not parse ({e}):\n{stdout}\nstderr: {stderr}")
    });
    let mut text_args = vec![sub, "--color", "never"];
    text_args.extend_from_slice(args);
    let (text_code, text, text_err, _) = run_once_in(env, &text_args);
    text_args.push("--verbose");
    let (verbose_code, verbose, verbose_err, _) = run_once_in(env, &text_args);
    let mut ci_outputs = Vec::new();
    for format in ["junit", "sarif"] {
        let mut a = vec![sub, "--output", format];
        a.extend_from_slice(args);
        let (c, out, err, _) = run_once_in(env, &a);
        assert_eq!(c, code, "{format} and JSON runs disagree on the exit code");
        ci_outputs.push((format, out, err));
    }
    for (what, out) in [
        ("json", &stdout),
        ("json stderr", &stderr),
        ("text", &text),
        ("text stderr", &text_err),
        ("verbose", &verbose),
        ("verbose stderr", &verbose_err),
    ]
    .into_iter()
    .chain(ci_outputs.iter().flat_map(|(f, o, e)| [(*f, o), (*f, e)]))
    {
        for s in secrets {
            assert!(
                !out.contains(s),
                "secret {s:?} leaked into the {what} output:\n{out}"
            );
        }
    }
    assert_eq!(
        code, text_code,
        "JSON and text runs disagree on the exit code\n{text}"
    );
    assert_eq!(code, verbose_code);
    assert_eq!(json["exit_code"].as_i64(), Some(i64::from(code)));
    assert_fixes_filled(&json);
    if sub == "check" && code != 2 {
        assert_replays(env, args, secrets);
    }
    Run {
        code,
        json,
        text,
        verbose,
        stderr,
        elapsed,
    }
}

/// Every `check` scenario of the suite is also recorded into a support bundle and re-analysed from
/// it: the bundle holds none of `secrets`, and `check --from` reaches the recorded run's status,
/// message and fix for every check whose data a bundle holds (the local prefect configuration is
/// not collected: `prefect.*` re-analyse as skip).
pub fn assert_replays(env: &BTreeMap<String, String>, args: &[&str], secrets: &[&str]) {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("scenario.tar.gz");
    let shown = path.display().to_string();
    let mut a = vec!["bundle", "--output-file", shown.as_str()];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(env, &a);
    assert_ne!(code, 2, "bundle refused what check ran: {out}{err}");
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let file = std::fs::File::open(&path).expect("the bundle was written");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        let name = e.path().expect("a name").display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("readable");
        files.insert(name, bytes);
    }
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for s in secrets {
            assert!(!text.contains(s), "secret {s:?} is in the bundle's {name}");
        }
    }
    let json = |name: &str| -> Value {
        serde_json::from_slice(&files[name]).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let recorded = json("report.json");
    if let Ok(keep) = std::env::var("KEEP_BUNDLE") {
        let _ = std::fs::copy(&path, keep);
    }
    // The same selection and settings, nothing else: the targets come from the bundle.
    let mut replay_args = vec!["check", "--from", shown.as_str(), "-o", "json"];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--only" | "--skip" | "--config" | "--checks" | "--timeout" => {
                replay_args.push(a);
                if let Some(v) = it.next() {
                    replay_args.push(v);
                }
            }
            "--strict" => replay_args.push(a),
            _ => {}
        }
    }
    let (replay_code, out, err, _) = run_once_in(env, &replay_args);
    let replayed: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("the replay's JSON does not parse ({e}):\n{out}\n{err}"));
    let results =
        |r: &Value| -> Vec<Value> { r["results"].as_array().cloned().unwrap_or_default() };
    let again = results(&replayed);
    for live in results(&recorded) {
        let id = live["id"].as_str().unwrap_or_default();
        let Some(r) = again.iter().find(|r| r["id"] == id) else {
            panic!("{id} is not reported on replay: {replayed:#}");
        };
        if id.starts_with("prefect.") {
            assert_eq!(r["status"], "skip", "{id} on replay: {r:#}");
            continue;
        }
        assert_eq!(
            (&live["status"], &live["message"], &live["fix"]),
            (&r["status"], &r["message"], &r["fix"]),
            "{id} differs when re-analysed from its bundle"
        );
    }
    let prefect_changed = results(&recorded).iter().any(|r| {
        r["id"].as_str().is_some_and(|i| i.starts_with("prefect.")) && r["status"] != "skip"
    });
    if !prefect_changed {
        assert_eq!(
            replay_code,
            recorded["exit_code"].as_i64().unwrap_or(-1) as i32,
            "the replay's exit code"
        );
    }
}

/// Every placeholder of a printed fix was filled: the catalog marks one it was not given as
/// `<name>`, which a fix may never show for a `{name}` its check's catalog text uses (fixes may
/// still ask the user for `<PASSWORD>` and the like, in capitals). Without a Helm release found,
/// `<release>` and `<namespace>` are the user's to fill.
pub fn assert_fixes_filled(report: &Value) {
    let mut reports: Vec<&Value> = vec![report];
    reports.extend(report["releases"].as_array().into_iter().flatten());
    for r in reports {
        let release_known = !r["release"].is_null();
        for result in r["results"].as_array().into_iter().flatten() {
            assert_fix_filled(result, release_known);
        }
    }
}

fn assert_fix_filled(result: &Value, release_known: bool) {
    let placeholder = regex::Regex::new(r"<([a-z][a-z0-9_]*)>").expect("regex");
    let (Some(id), Some(fix)) = (result["id"].as_str(), result["fix"].as_str()) else {
        return;
    };
    let path = format!("{}/checks/{id}.toml", env!("CARGO_MANIFEST_DIR"));
    let Ok(catalog) = std::fs::read_to_string(&path) else {
        return;
    };
    for m in placeholder.captures_iter(fix) {
        let name = &m[1];
        if !release_known && (name == "release" || name == "namespace") {
            continue;
        }
        assert!(
            !catalog.contains(&format!("{{{name}}}")),
            "{id}'s fix shows <{name}> unfilled:\n{fix}"
        );
    }
}
