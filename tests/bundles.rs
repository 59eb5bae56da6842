//! Support bundles: `bundle` records a run at the probe boundary, `check --from` re-analyses it with
//! the same checks and no network (the servers are stopped first), and reaches the recorded run's
//! verdicts; the bundle holds no secret; a hostile bundle is a clear exit 2.

mod support;

use std::{collections::BTreeMap, io::Read as _, path::Path};

use serde_json::Value;
use support::{
    http::{Apollo, ui},
    pg::{PgServer, SUPERUSER_PASSWORD},
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once_in,
};

/// Every file of the bundle at `path`, unpacked in memory.
fn unpack(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = std::fs::File::open(path).expect("the bundle");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

fn json_of(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(&files[name]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs `bundle ARGS` into a temporary file; returns its exit code, the path and its stdout.
fn bundle(dir: &Path, args: &[&str]) -> (i32, std::path::PathBuf, String) {
    let path = dir.join("b.tar.gz");
    let p = path.display().to_string();
    let mut a = vec!["bundle", "--output-file", p.as_str()];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    assert!(path.is_file(), "no bundle written: {out}\n{err}");
    (code, path, out)
}

/// `check --from PATH -o json ARGS`: its exit code and report.
fn replay(path: &Path, args: &[&str]) -> (i32, Value, String) {
    let p = path.display().to_string();
    let mut a = vec!["check", "--from", p.as_str(), "-o", "json"];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    let json = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("replay's JSON does not parse ({e}):\n{out}\n{err}"));
    (code, json, err)
}

/// Every check of the recorded report reaches the same status and message on replay, except those
/// whose data a bundle does not hold (`not_recorded`), which skip saying so.
fn assert_same_verdicts(recorded: &Value, replayed: &Value, not_recorded: &[&str]) {
    let by_id = |r: &Value| -> BTreeMap<String, Value> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["id"].as_str().unwrap().to_string(), x.clone()))
            .collect()
    };
    let (a, b) = (by_id(recorded), by_id(replayed));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same checks are reported"
    );
    let mut compared = 0;
    for (id, live) in &a {
        let again = &b[id];
        if not_recorded.iter().any(|p| id.starts_with(p)) {
            assert_eq!(again["status"], "skip", "{id}: {again:#}");
            assert!(
                again["message"]
                    .as_str()
                    .unwrap()
                    .contains("not in the bundle"),
                "{id}: {again:#}"
            );
            continue;
        }
        assert_eq!(
            (&live["status"], &live["message"]),
            (&again["status"], &again["message"]),
            "{id} differs on replay"
        );
        assert_eq!(live["fix"], again["fix"], "{id}'s fix differs on replay");
        compared += 1;
    }
    assert!(compared >= 10, "too few checks compared to prove anything");
}

/// Records a run against `pg` (and an Apollo and UI), stops every server, re-analyses the bundle and
/// compares; returns the bundle's files.
fn record_stop_replay(
    pg: PgServer,
    apollo: Apollo,
    db_url: impl Fn(&PgServer) -> String,
    dead_api: bool,
    extra: &[&str],
) -> BTreeMap<String, Vec<u8>> {
    let api = apollo.start();
    let ui = ui(&format!("{}/graphql", api.url));
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&pg);
    let api_url = if dead_api {
        // Nothing listens on the discard port.
        "http://127.0.0.1:9/graphql".to_string()
    } else {
        format!("{}/graphql", api.url)
    };
    let ui_url = ui.url.clone();
    let args = [
        &[
            "--database-url",
            url.as_str(),
            "--api-url",
            &api_url,
            "--ui-url",
            &ui_url,
        ][..],
        extra,
    ]
    .concat();
    let (code, path, out) = bundle(dir.path(), &args);
    assert!(out.contains("bundle written: "), "{out}");
    assert!(out.contains("re-analyse it with: prefect-doctor check --from"));
    let files = unpack(&path);
    let recorded = json_of(&files, "report.json");
    assert_eq!(recorded["exit_code"].as_i64(), Some(i64::from(code)));

    // Nothing to reach any more: every answer must come from the bundle.
    let log_path = pg.log_path();
    drop(pg);
    drop(api);
    drop(ui);
    let log_before = std::fs::read_to_string(&log_path).unwrap_or_default();
    for format in ["json", "text"] {
        let (c, _, _, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string(), "-o", format],
        );
        assert_eq!(c, code, "{format}: the replay's exit code is the run's");
    }
    let (replay_code, replayed, _) = replay(&path, &[]);
    assert_eq!(replay_code, code);
    assert_same_verdicts(&recorded, &replayed, &["prefect."]);
    assert!(
        replayed["notices"][0]
            .as_str()
            .unwrap()
            .contains("re-analysed from the bundle"),
        "{replayed:#}"
    );
    assert_eq!(replayed["targets"], recorded["targets"]);
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap_or_default(),
        log_before,
        "the replay reached no database"
    );
    files
}

#[test]
fn a_healthy_install_replays_to_the_same_verdicts() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    record_stop_replay(
        pg,
        Apollo::default(),
        |pg| pg.url(APP_USER, CANARY, "prefect"),
        false,
        &[],
    );
}

#[test]
fn a_broken_install_replays_to_the_same_findings_and_fixes() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            extensions: false,
            db_timezone: Some("Europe/Paris".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            hdb_function_owner: Some("postgres".into()),
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    let files = record_stop_replay(
        pg,
        Apollo {
            tenants: vec![],
            ..Apollo::default()
        },
        |pg| pg.url(APP_USER, CANARY, "prefect"),
        false,
        &[],
    );
    let recorded = json_of(&files, "report.json");
    let failing: Vec<&str> = recorded["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in ["tenant.exists", "hasura.schema-owner", "db.extensions"] {
        assert!(failing.contains(&id), "{id} fails in {failing:?}");
    }
}

#[test]
fn a_refused_password_and_a_dead_api_replay_too() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // The wrong password, and an API that answers nothing useful.
    let files = record_stop_replay(
        pg,
        Apollo {
            version: "2022.09.23",
            ..Apollo::default()
        },
        |pg| pg.url(APP_USER, "not-the-password-c4n4ry", "prefect"),
        true,
        &["--timeout", "2s"],
    );
    let recorded = json_of(&files, "report.json");
    let result = |id: &str| {
        recorded["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(result("db.password")["status"], "fail");
    assert_eq!(result("api.reachable")["status"], "fail");
    assert!(
        result("api.reachable")["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{:#}",
        result("api.reachable")
    );
    let all = files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<String>();
    assert!(!all.contains("not-the-password-c4n4ry"));
}

#[test]
fn no_secret_enters_the_bundle_and_redact_patterns_hide_the_rest() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let ui_secret = "ui-settings-canary-77Qx";
    let api = Apollo::default().start();
    // A UI whose server_url carries credentials (a canary of its own).
    let ui = ui(&format!(
        "http://admin:{ui_secret}@127.0.0.1:{}/graphql",
        api.port()
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (_, path, out) = bundle(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--api-url",
            &format!("{}/graphql", api.url),
            "--ui-url",
            &ui.url,
            "--redact",
            r"127\.0\.0\.1",
        ],
    );
    assert!(!out.contains(CANARY));
    let files = unpack(&path);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["manifest.json", "report.json", "session.json", "tape.json"]
    );
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in [CANARY, ui_secret, SUPERUSER_PASSWORD] {
            assert!(!text.contains(secret), "{secret} in {name}");
        }
        assert!(
            !text.contains("127.0.0.1"),
            "the --redact pattern's matches are gone from {name}"
        );
    }
    let manifest = json_of(&files, "manifest.json");
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["redact_patterns"], 1);
    let command_line = manifest["command_line"].to_string();
    assert!(command_line.contains("--database-url"));
    assert!(!command_line.contains(CANARY));
    // Still a bundle the checks can read.
    let (code, replayed, err) = replay(&path, &[]);
    assert_ne!(code, 2, "{err}");
    assert!(replayed["results"].as_array().unwrap().len() > 10);
}

#[test]
fn a_check_whose_data_the_bundle_lacks_skips_saying_so() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    // Recorded with the database checks only: the API's and UI's answers are not in it.
    let (_, path, _) = bundle(dir.path(), &["--database-url", &url, "--only", "db.*"]);
    drop(pg);
    // A user check whose query the recorded run never sent.
    let checks = dir.path().join("budget.toml");
    std::fs::copy("examples/checks/table-budget.toml", &checks).unwrap();
    let (_, replayed, err) = replay(
        &path,
        &[
            "--checks",
            &checks.display().to_string(),
            "--only",
            "db.*",
            "--only",
            "site.*",
        ],
    );
    let results = replayed["results"].as_array().unwrap();
    let user = results
        .iter()
        .find(|r| r["source"] != "builtin")
        .unwrap_or_else(|| panic!("the user check ran: {replayed:#}\n{err}"));
    assert_eq!(user["status"], "skip", "{user:#}");
    assert!(
        user["message"]
            .as_str()
            .unwrap()
            .contains("not in the bundle: the query"),
        "{user:#}"
    );
    let reachable = results.iter().find(|r| r["id"] == "db.reachable").unwrap();
    assert_eq!(reachable["status"], "pass");
}

/// Writes a gzip'd tar of `entries` (name, kind, bytes) at `path`, names written raw.
fn hostile_tar(path: &Path, entries: &[(&str, tar::EntryType, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, kind, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        // Set the raw name so that `..` and absolute paths get through the builder's own checks.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(*kind);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
            h.set_size(0);
        }
        h.set_cksum();
        b.append(
            &h,
            if *kind == tar::EntryType::Symlink {
                &[][..]
            } else {
                *bytes
            },
        )
        .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_and_broken_bundles_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = br#"{"format": 1, "doctor_version": "0.1.0", "created": "2026-12-04T00:00:00Z", "command_line": [], "collected": [], "left_out": []}"#;
    let newer = br#"{"format": 99, "something": "new"}"#;
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "garbage",
            Box::new(|p: &Path| std::fs::write(p, b"not a bundle at all").unwrap()),
            "not a prefect-doctor bundle",
        ),
        (
            "dotdot",
            Box::new(|p: &Path| {
                hostile_tar(p, &[("../evil.json", tar::EntryType::Regular, b"{}")])
            }),
            "has an absolute path or `..`",
        ),
        (
            "absolute",
            Box::new(|p: &Path| {
                hostile_tar(p, &[("/tmp/evil.json", tar::EntryType::Regular, b"{}")])
            }),
            "has an absolute path or `..`",
        ),
        (
            "symlink",
            Box::new(|p: &Path| hostile_tar(p, &[("tape.json", tar::EntryType::Symlink, b"")])),
            "is a link or a special file",
        ),
        (
            "newer",
            Box::new(move |p: &Path| {
                hostile_tar(p, &[("manifest.json", tar::EntryType::Regular, newer)])
            }),
            "made by a newer prefect-doctor; this one reads format 1",
        ),
        (
            "incomplete",
            Box::new(move |p: &Path| {
                hostile_tar(p, &[("manifest.json", tar::EntryType::Regular, manifest)])
            }),
            "it lacks session.json, tape.json",
        ),
        (
            "huge",
            Box::new(|p: &Path| {
                // A 1 GB file (sparse: nothing is really written).
                let f = std::fs::File::create(p).unwrap();
                f.set_len(1 << 30).unwrap();
            }),
            "larger than any bundle",
        ),
    ];
    for (name, make, expect) in cases {
        let path = d.join(format!("{name}.tar.gz"));
        make(&path);
        let (code, out, err, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string()],
        );
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    // A truncated real-looking bundle: its first half.
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (_, path, _) = bundle(d, &["--database-url", &url, "--only", "db.*"]);
    let bytes = std::fs::read(&path).unwrap();
    let cut = d.join("truncated.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err, _) = run_once_in(
        &BTreeMap::new(),
        &["check", "--from", &cut.display().to_string()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a prefect-doctor bundle"), "{err}");
    // Nothing was written beside the inputs.
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".tar.gz") || n == "evil.json"),
        "{names:?}"
    );
    assert!(!d.join("evil.json").exists() && !d.parent().unwrap().join("evil.json").exists());
}
