//! A cluster's bundle, recorded through the real API server: the release's values as real Helm
//! stored them, its pods and events, a container's log read through the real logs endpoint (kwok
//! serving the file a container runtime writes), and the database's facts, for people; cut to fit.

use std::collections::BTreeMap;

use super::*;
use crate::bundles::{bundle, json_of, replay, unpack};
use support::{prefect::CANARY, run_once_in};

/// A password-named value the user gave the release.
const VALUES_CANARY: &str = "values-canary-Zr81";

/// A healthy release whose graphql container has logged 600 lines (one naming the database
/// password and one a customer's host), two events about its pod, and user values holding a
/// password and a customer's host.
struct KubeInstall {
    r: Running,
    kc: String,
    graphql_pod: String,
}

fn kube_install(cp: &ControlPlane, prefix: &str) -> KubeInstall {
    let graphql_pod = "prefect-graphql-6d4b9c7f5-x2x9k".to_string();
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
    let password = format!("postgresql.auth.password={VALUES_CANARY}");
    let r = running_release(
        cp,
        prefix,
        Scenario {
            helm: &[
                "--set",
                &password,
                "--set",
                "annotations.team=data.customer.example",
            ],
            logs: vec![(graphql_pod.as_str(), "graphql", log.as_str())],
            ..Scenario::default()
        },
    );
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
        cp.create(
            &json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{graphql_pod}.17{i}"), "namespace": r.ns},
                "involvedObject": {"kind": "Pod", "name": graphql_pod, "namespace": r.ns},
                "reason": reason, "message": message, "type": if i == 1 { "Warning" } else { "Normal" },
                "count": 3, "firstTimestamp": at, "lastTimestamp": at,
                "source": {"component": "kubelet"}
            })
            .to_string(),
        );
    }
    let kc = r.kubeconfig.display().to_string();
    KubeInstall { r, kc, graphql_pod }
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
    let cp = control_plane!();
    let install = kube_install(cp, "bundle");
    let dir = tempfile::tempdir().unwrap();
    let kc = install.kc.clone();
    let (_, path, out) = bundle(
        dir.path(),
        &[
            "--kubeconfig",
            &kc,
            "--timeout",
            "10s",
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
    let b64_canary = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(CANARY)
    };
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in [
            CANARY,
            b64_canary.as_str(),
            cluster::ADMIN_TOKEN,
            VALUES_CANARY,
        ] {
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
    // The pod's events, newest first (the API server writes its own besides, about the release's
    // Services: they are kept too).
    let events = json_of(&files, "cluster/events.json");
    let object = format!("Pod/{}", install.graphql_pod);
    let pods: Vec<&Value> = events
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["object"] == object.as_str())
        .collect();
    assert_eq!(pods.len(), 2, "{events:#}");
    assert_eq!(pods[0]["reason"], "BackOff");
    assert_eq!(pods[0]["type"], "Warning");
    assert_eq!(pods[1]["reason"], "Pulled");
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
    let cp = control_plane!();
    let install = kube_install(cp, "bundle");
    let dir = tempfile::tempdir().unwrap();
    let kc = install.kc.clone();
    let args = ["--kubeconfig", kc.as_str(), "--timeout", "10s"];
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
        said[1].as_str().unwrap().starts_with(&format!(
            "the cluster's answer to GET /api/v1/namespaces/{}/secrets/sh.helm.release.v1.prefect.v1 ",
            install.r.ns
        )),
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
    drop(install.r);
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
