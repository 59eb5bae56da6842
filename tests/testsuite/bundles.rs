//! Support bundles: `bundle` records a run at the probe boundary, `check --from` re-analyses it with
//! the same checks and no network (the servers are stopped first), and reaches the recorded run's
//! verdicts; the bundle holds no secret; a hostile bundle is a clear exit 2.

use crate::support;

use std::{collections::BTreeMap, io::Read as _, path::Path};

use serde_json::{Value, json};
use support::{
    http::{Apollo, Server, ui},
    kube::{Cluster, KubeServer, b64},
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
    // The API behind an ingress that pins sessions with a cookie (nginx's INGRESSCOOKIE): a secret
    // the run cannot know, in a header.
    let cookie = "ingress-cookie-canary-5Tq2";
    let apollo = Apollo::default();
    let api = Server::start(move |hit| {
        apollo.answer(hit).header(
            "set-cookie",
            &format!("INGRESSCOOKIE={cookie}; Path=/; HttpOnly"),
        )
    });
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
    // No cluster: the database's facts are the only file for people.
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "database/facts.json",
            "manifest.json",
            "report.json",
            "session.json",
            "tape.json"
        ]
    );
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in [CANARY, ui_secret, SUPERUSER_PASSWORD, cookie] {
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

    // The password given as PGPASSWORD, not in the URL: just as absent.
    let from_env = dir.path().join("env.tar.gz");
    let target = from_env.display().to_string();
    let env = BTreeMap::from([("PGPASSWORD".to_string(), CANARY.to_string())]);
    let bare = format!("postgres://{APP_USER}@127.0.0.1:{}/prefect", pg.port);
    let (code, out, err, _) = run_once_in(
        &env,
        &["bundle", "--output-file", &target, "--database-url", &bare],
    );
    assert_ne!(code, 2, "{out}{err}");
    let files = unpack(&from_env);
    let report = json_of(&files, "report.json");
    assert!(
        report.to_string().contains("PGPASSWORD"),
        "the run used PGPASSWORD: {report:#}"
    );
    for (name, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(CANARY),
            "PGPASSWORD's value in {name}"
        );
    }
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

/// The kubeconfig's token (a canary too).
const KUBE_TOKEN: &str = "kube-token-canary-9f8e7d";
/// A password-named value the user gave the release.
const VALUES_CANARY: &str = "values-canary-Zr81";

/// A healthy install behind the chart's release, with a graphql log of 600 lines (one naming the
/// database password and one a customer's host) and two events.
struct KubeInstall {
    pg: PgServer,
    _apollo: Server,
    _ui: Server,
    server: KubeServer,
    graphql_pod: String,
}

fn kube_install() -> KubeInstall {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let apollo = Apollo::default().start();
    let ui = ui(&format!("{}/graphql", apollo.url));
    let mut c = Cluster::prefect(json!({
        "postgresql": {"auth": {"password": VALUES_CANARY}},
        "annotations": {"team": "data.customer.example"}
    }));
    c.forward("prefect-postgresql", 5432, ([127, 0, 0, 1], pg.port).into());
    c.forward("prefect-apollo", 4200, apollo.addr);
    c.forward("prefect-ui", 8080, ui.addr);
    c.set_secret_key("prefect-postgresql", "postgres-password", CANARY);
    c.set_secret_key("prefect-postgresql", "password", CANARY);
    let graphql_pod = c.pod_name("prefect-graphql");
    let mut log = String::new();
    for i in 0..600 {
        match i {
            550 => log.push_str(&format!(
                "connecting to postgresql://prefect:{CANARY}@prefect-postgresql:5432/prefect\n"
            )),
            560 => log.push_str("request from gateway.customer.example\n"),
            _ => log.push_str(&format!(
                "line {i:04} of the graphql service's log, as it runs\n"
            )),
        }
    }
    c.logs
        .insert((graphql_pod.clone(), "graphql".into(), false), log);
    for (i, (reason, at, message)) in [
        (
            "Pulled",
            "2022-12-22T10:00:30Z",
            "Successfully pulled image \"prefecthq/server:latest\"",
        ),
        (
            "BackOff",
            "2022-12-22T10:05:00Z",
            "Back-off restarting failed container graphql",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        c.objects.push(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{graphql_pod}.17{i}"), "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": graphql_pod, "namespace": "default"},
            "reason": reason, "message": message, "type": if i == 1 { "Warning" } else { "Normal" },
            "count": 3, "firstTimestamp": at, "lastTimestamp": at,
            "source": {"component": "kubelet"}
        }));
    }
    KubeInstall {
        pg,
        _apollo: apollo,
        _ui: ui,
        server: c.start(),
        graphql_pod,
    }
}

/// The bytes of every file but the manifest: what `--max-size` bounds.
fn content_size(files: &BTreeMap<String, Vec<u8>>) -> usize {
    files
        .iter()
        .filter(|(n, _)| n.as_str() != "manifest.json")
        .map(|(_, b)| b.len())
        .sum()
}

#[test]
fn a_cluster_bundle_holds_values_pods_events_logs_and_database_facts_for_people() {
    let install = kube_install();
    let dir = tempfile::tempdir().unwrap();
    let kc = install.server.kubeconfig();
    let (_, path, out) = bundle(
        dir.path(),
        &[
            "--kubeconfig",
            &kc,
            "--timeout",
            "3s",
            "--redact",
            r"[a-z]+\.customer\.example",
        ],
    );
    assert!(!out.contains(CANARY), "{out}");
    let files = unpack(&path);
    let log_name = format!("logs/{}/graphql.log", install.graphql_pod);
    for name in [
        "database/facts.json",
        "release/user-values.json",
        "release/values.json",
        "cluster/pods.json",
        "cluster/events.json",
        log_name.as_str(),
    ] {
        assert!(files.contains_key(name), "{name} not in {:?}", files.keys());
    }
    // No secret, as text or base64, and no customer host, in any byte.
    let b64_canary = b64(CANARY.as_bytes());
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in [CANARY, b64_canary.as_str(), KUBE_TOKEN, VALUES_CANARY] {
            assert!(!text.contains(secret), "{secret} in {name}");
        }
        assert!(
            !text.contains("customer.example"),
            "a --redact match in {name}"
        );
    }
    // The log: its last 500 lines, the password's line masked, the host's line redacted.
    let log = String::from_utf8(files[&log_name].clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 500, "{log}");
    assert!(lines[0].starts_with("line 0100 "), "{}", lines[0]);
    assert!(lines[499].starts_with("line 0599 "), "{}", lines[499]);
    assert!(lines[450].starts_with("connecting to postgresql://prefect:"));
    assert_eq!(lines[460], "request from REDACTED");
    // The values as the user gave them, the password masked.
    let user = json_of(&files, "release/user-values.json");
    assert_eq!(user["postgresql"]["auth"]["password"], "****");
    assert_eq!(user["annotations"]["team"], "REDACTED");
    let values = json_of(&files, "release/values.json");
    assert_eq!(values["postgresql"]["auth"]["password"], "****");
    assert!(
        values["ui"].is_object(),
        "the chart's defaults merged: {values:#}"
    );
    // The pods, and the events newest first.
    let pods = json_of(&files, "cluster/pods.json");
    let graphql = pods
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == install.graphql_pod.as_str())
        .unwrap_or_else(|| panic!("{pods:#}"));
    assert_eq!(graphql["phase"], "Running");
    assert_eq!(graphql["ready"], true);
    assert_eq!(graphql["containers"][0]["state"], "running");
    let events = json_of(&files, "cluster/events.json");
    assert_eq!(events[0]["reason"], "BackOff");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(
        events[0]["object"],
        format!("Pod/{}", install.graphql_pod).as_str()
    );
    assert_eq!(events[1]["reason"], "Pulled");
    // The database's facts.
    let facts = json_of(&files, "database/facts.json");
    assert!(
        facts["server"]["version_num"].as_i64().unwrap() >= 120000,
        "{facts:#}"
    );
    let extensions = facts["extensions"].to_string();
    assert!(
        extensions.contains("pgcrypto") && extensions.contains("pg_trgm"),
        "{facts:#}"
    );
    assert_eq!(facts["alembic_revision"][0][0], "ac5747fb571c", "{facts:#}");
    assert!(
        facts["schemas"].to_string().contains("hdb_catalog"),
        "{facts:#}"
    );
    // The manifest says what each file holds; nothing was cut.
    let manifest = json_of(&files, "manifest.json");
    let collected = manifest["collected"].to_string();
    for name in files.keys() {
        assert!(
            collected.contains(name.as_str()),
            "{name} is not in {collected}"
        );
    }
    assert_eq!(manifest["cut"], json!([]));
    // The files for people change nothing on replay.
    drop(install);
    let (code, replayed, err) = replay(&path, &[]);
    assert_ne!(code, 2, "{err}");
    assert_eq!(
        replayed["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "kube.pods")
            .map(|r| r["status"].clone()),
        Some(json!("pass")),
        "{replayed:#}"
    );
}

#[test]
fn the_largest_logs_are_cut_first_to_fit_max_size() {
    let install = kube_install();
    let dir = tempfile::tempdir().unwrap();
    let kc = install.server.kubeconfig();
    let args = ["--kubeconfig", kc.as_str(), "--timeout", "3s"];
    let (_, whole, _) = bundle(dir.path(), &args);
    let files = unpack(&whole);
    let log_name = format!("logs/{}/graphql.log", install.graphql_pod);
    let log_len = files[&log_name].len();
    assert!(log_len > 20_000, "{log_len}");
    // Just too small for everything: the log goes, every recorded answer stays.
    let max = (content_size(&files) + 64 * 1024 - log_len / 2).to_string();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let a = [&args[..], &["--max-size", max.as_str()]].concat();
    let (_, path, out) = bundle(&small, &a);
    assert!(out.contains("1 logs or recorded answers cut"), "{out}");
    let cut = unpack(&path);
    assert!(!cut.contains_key(&log_name));
    for kept in [
        "cluster/pods.json",
        "cluster/events.json",
        "release/values.json",
    ] {
        assert!(cut.contains_key(kept), "{kept}");
    }
    let manifest = json_of(&cut, "manifest.json");
    // Only the log: every recorded answer stays.
    assert_eq!(manifest["cut"].as_array().unwrap().len(), 1, "{manifest:#}");
    let said = manifest["cut"][0].as_str().unwrap();
    assert!(said.contains(&log_name) && said.contains("bytes"), "{said}");
    assert!(!manifest["collected"].to_string().contains(&log_name));
    // Far too small: the log, then the largest answers (the release's), which those checks then
    // miss on replay; the manifest names the first hundred and counts the rest.
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    let max =
        (files["report.json"].len() + files["session.json"].len() + 64 * 1024 + 20_000).to_string();
    let a = [&args[..], &["--max-size", max.as_str()]].concat();
    let (_, path, out) = bundle(&tiny, &a);
    let cut = unpack(&path);
    assert!(!cut.contains_key(&log_name));
    let manifest = json_of(&cut, "manifest.json");
    let said = manifest["cut"].as_array().unwrap();
    assert!(said[0].as_str().unwrap().contains(&log_name), "{said:?}");
    assert!(
        said[1].as_str().unwrap().starts_with(
            "the cluster's answer to GET \
                 /api/v1/namespaces/default/secrets/sh.helm.release.v1.prefect.v1 "
        ),
        "{said:?}"
    );
    assert!(out.contains(" logs or recorded answers cut"), "{out}");
    let content: usize = cut
        .iter()
        .filter(|(n, _)| n.as_str() != "manifest.json")
        .map(|(_, b)| b.len())
        .sum();
    assert!(
        content + 64 * 1024 <= max.parse::<usize>().unwrap(),
        "{content}"
    );
    drop(install.pg);
    let (code, replayed, err) = replay(&path, &[]);
    assert_ne!(code, 2, "{err}");
    let results = replayed["results"].as_array().unwrap();
    assert!(
        results.iter().any(|r| r["status"] == "skip"
            && r["message"].as_str().unwrap().contains("not in the bundle")),
        "{replayed:#}"
    );
    assert!(
        results.iter().all(|r| r["status"] != "error"),
        "{replayed:#}"
    );
    // Too small for the report itself: a clear exit 2 and nothing written, not even a temp file.
    let none = dir.path().join("none");
    std::fs::create_dir(&none).unwrap();
    let target = none.join("b.tar.gz").display().to_string();
    let (code, out, err, _) = run_once_in(
        &BTreeMap::new(),
        &[
            "bundle",
            "--output-file",
            &target,
            "--database-url",
            "postgres://prefect@127.0.0.1:9/prefect",
            "--max-size",
            "10KB",
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--max-size 10000 bytes cannot hold even the report"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&none).unwrap().count(), 0);
}

/// `fix --from BUNDLE` plans from what the bundle recorded, as a dry run that says so, with nothing
/// live to reach; it can never apply (exit 2 before anything is read or contacted).
#[test]
fn fix_plans_from_a_bundle_and_never_applies() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            db_timezone: Some("Europe/Paris".into()),
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("prefect")
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (code, path, _) = bundle(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--only",
            "db.*",
            "--only",
            "hasura.*",
        ],
    );
    assert_eq!(code, 1);
    drop(pg);
    let p = path.display().to_string();
    let (code, out, err, _) =
        run_once_in(&BTreeMap::new(), &["fix", "--from", &p, "--color", "never"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("planned from a support bundle: nothing is changed"),
        "{out}"
    );
    assert!(
        out.contains("ALTER DATABASE prefect SET timezone TO 'UTC';"),
        "{out}"
    );
    assert!(
        out.contains("`fix --apply` run against the install itself"),
        "{out}"
    );
    assert!(!out.contains(CANARY) && !err.contains(CANARY));
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &["fix", "--from", &p, "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["mode"], "bundle");
    for refused in [
        vec!["fix", "--from", p.as_str(), "--apply", "--yes"],
        vec![
            "fix",
            "--from",
            p.as_str(),
            "--admin-url",
            "postgres://postgres@127.0.0.1/x",
        ],
    ] {
        let (code, out, err, _) = run_once_in(&BTreeMap::new(), &refused);
        assert_eq!(code, 2, "{refused:?}: {out}{err}");
        assert!(err.contains("can never change anything"), "{err}");
        assert!(out.is_empty());
    }
}

/// Bytes made on the fly: `head`, then `unit` `count` times, then `tail` (a bomb never held whole).
struct Repeat {
    parts: Vec<(Vec<u8>, u64)>,
    at: usize,
    left: u64,
    pos: usize,
}

impl Repeat {
    fn new(head: &str, unit: &str, count: u64, tail: &str) -> (Repeat, u64) {
        let parts = vec![
            (head.as_bytes().to_vec(), 1),
            (unit.as_bytes().to_vec(), count),
            (tail.as_bytes().to_vec(), 1),
        ];
        let len = parts.iter().map(|(b, n)| b.len() as u64 * n).sum();
        let left = parts[0].1;
        (
            Repeat {
                parts,
                at: 0,
                left,
                pos: 0,
            },
            len,
        )
    }
}

impl std::io::Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.at < self.parts.len() {
            let (unit, _) = &self.parts[self.at];
            if self.left == 0 || unit.is_empty() {
                self.at += 1;
                self.left = self.parts.get(self.at).map_or(0, |p| p.1);
                self.pos = 0;
                continue;
            }
            let take = (unit.len() - self.pos).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&unit[self.pos..self.pos + take]);
            n += take;
            self.pos += take;
            if self.pos == unit.len() {
                self.pos = 0;
                self.left -= 1;
            }
        }
        Ok(n)
    }
}

/// A bundle of the three parts, `bomb` standing in for one of them.
fn bomb_bundle(path: &Path, part: &str, head: &str, unit: &str, count: u64, tail: &str) {
    let manifest = r#"{"format": 1, "doctor_version": "0.1.0", "created": "2026-12-04T00:00:00Z", "command_line": [], "collected": [], "left_out": []}"#;
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    let mut b = tar::Builder::new(gz);
    // The bomb first: it is what the reader meets.
    let mut names = vec![part];
    names.extend(
        ["manifest.json", "session.json", "tape.json"]
            .into_iter()
            .filter(|n| *n != part),
    );
    for name in names {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        if name == part {
            let (reader, len) = Repeat::new(head, unit, count, tail);
            h.set_size(len);
            b.append_data(&mut h, name, reader).unwrap();
        } else {
            let text: &str = match name {
                "manifest.json" => manifest,
                "session.json" => "{}",
                _ => r#"{"postgres_session": null, "postgres": [], "http": []}"#,
            };
            h.set_size(text.len() as u64);
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// The largest resident size of any child this process has waited for, in bytes.
fn children_peak_rss() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    u64::try_from(usage.max_rss()).unwrap_or(0) * 1024
}

/// Small files that unpack into huge JSON: refused (exit 2, one line) before they are parsed,
/// every one in bounded memory.
#[test]
fn bundle_bombs_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let rows = r#"{"postgres_session": null, "postgres": [{"sql": "x", "params": [], "answer": {"rows": [["#;
    let end = "0]]}}], \"http\": []}";
    let cases: [(&str, &str, &str, &str, u64, &str, &str); 6] = [
        // ~60 million zeros in the recorded answers (120 MB unpacked): past the part's cap.
        (
            "zeros-in-tape",
            "tape.json",
            rows,
            "0,",
            60_000_000,
            end,
            "tape.json is 120000107 bytes",
        ),
        // Under the cap, 30 million values: past the count, refused before parsing.
        (
            "values-in-tape",
            "tape.json",
            rows,
            "0,",
            30_000_000,
            end,
            "tape.json holds more than 2000000 values",
        ),
        (
            "zeros-in-manifest",
            "manifest.json",
            r#"{"format": 1, "x": ["#,
            "0,",
            60_000_000,
            "0]}",
            "manifest.json is",
        ),
        (
            "long-string",
            "tape.json",
            r#"{"postgres_session": null, "postgres": [], "http": [], "x": ""#,
            "x",
            50_000_000,
            "\"}",
            "a string longer than",
        ),
        (
            "deep",
            "tape.json",
            "",
            "[",
            100_000,
            "",
            "nesting deeper than",
        ),
        (
            "big-session",
            "session.json",
            "\"",
            "x",
            50_000_000,
            "\"",
            "session.json is",
        ),
    ];
    let mut worst = 0;
    for (name, part, head, unit, count, tail, says) in cases {
        let path = dir.path().join(format!("{name}.tar.gz"));
        bomb_bundle(&path, part, head, unit, count, tail);
        let small = std::fs::metadata(&path).unwrap().len();
        assert!(small < 1024 * 1024, "{name}: {small} bytes is not a bomb");
        let (code, out, err, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string()],
        );
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
        worst = worst.max(children_peak_rss());
    }
    eprintln!("the largest child's peak: {} MiB", worst / (1024 * 1024));
    assert!(worst < 256 * 1024 * 1024, "{worst} bytes at the peak");
}

/// Redaction rewrites outside values, never the bundle's structure: a bundle redacted with the
/// words its own format is made of still replays.
#[test]
fn redacting_the_formats_own_words_keeps_the_bundle_readable() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let mut args = vec!["--database-url", url.as_str(), "--only", "db.*"];
    for word in [
        "postgres", "rows", "Ok", "Err", "sql", "error", "json", "format", "true",
    ] {
        args.extend(["--redact", word]);
    }
    let (code, path, out) = bundle(dir.path(), &args);
    assert_eq!(code, 0, "{out}");
    let files = unpack(&path);
    let tape = String::from_utf8_lossy(&files["tape.json"]).into_owned();
    assert!(
        tape.contains("\"postgres\""),
        "the tape's own keys are kept"
    );
    drop(pg);
    let (code, replayed, err) = replay(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        support::result_in(&replayed, "db.password")["status"],
        "pass"
    );
}
