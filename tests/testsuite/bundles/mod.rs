//! Support bundles: `bundle` records a run at the probe boundary, `check --from` re-analyses it with
//! the same checks and no network (the servers are stopped first), and reaches the recorded run's
//! verdicts; the bundle holds no secret; a hostile bundle is a clear exit 2.

use crate::support;

use std::{collections::BTreeMap, io::Read as _, path::Path};

use serde_json::Value;
use support::{
    http::{Apollo, Server, ui},
    pg::{PgServer, SUPERUSER_PASSWORD},
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once_in,
};

/// Every file of the bundle at `path`, unpacked in memory.
pub(crate) fn unpack(path: &Path) -> BTreeMap<String, Vec<u8>> {
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

pub(crate) fn json_of(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(&files[name]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs `bundle ARGS` into a temporary file; returns its exit code, the path and its stdout.
pub(crate) fn bundle(dir: &Path, args: &[&str]) -> (i32, std::path::PathBuf, String) {
    let path = dir.join("b.tar.gz");
    let p = path.display().to_string();
    let mut a = vec!["bundle", "--output-file", p.as_str()];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    assert!(path.is_file(), "no bundle written: {out}\n{err}");
    (code, path, out)
}

/// `check --from PATH -o json ARGS`: its exit code and report.
pub(crate) fn replay(path: &Path, args: &[&str]) -> (i32, Value, String) {
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

mod hostile;
mod replay;
