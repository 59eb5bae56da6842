//! A fleet where only the in-test API server will do: a port-forward held half a second (to prove
//! `--parallel`), fifty releases served in milliseconds, and a release Secret labelled with what a
//! real API server refuses to store (a terminal escape and 5,000 characters). Every other fleet test
//! is on the real control plane (`control_plane::fleet`, `control_plane::fleet_edges`).

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{kube_fleet::fleet_install as install, prefect::CANARY, run_once_in};

fn doctor(kubeconfig: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["check", "--kubeconfig", kubeconfig, "--timeout", "3s"];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    assert!(!out.contains(CANARY) && !err.contains(CANARY));
    (code, out, err)
}

fn status_in(release: &Value, id: &str) -> String {
    release["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {id} in {release:#}"))
}

#[test]
fn parallel_bounds_the_releases_diagnosed_at_once() {
    let names: Vec<String> = (0..6).map(|i| format!("team-{i}")).collect();
    let releases: Vec<(&str, &str)> = names.iter().map(|n| ("prefect", n.as_str())).collect();
    let mut gauge = None;
    // Each release's database port-forward is answered half a second after it is asked for: the
    // releases at that step at once are the releases running at once (a run cannot end while its
    // request is held, and a request is not sent before its run starts).
    let inst = install(&releases, |c| {
        c.hold_forwards = Some((5432, std::time::Duration::from_millis(500)));
        gauge = Some(c.held_forwards.clone());
    });
    let gauge = gauge.expect("the cluster's gauge");
    let kc = inst.server.kubeconfig();
    let (code, out, err) = doctor(
        &kc,
        &["-A", "--parallel", "2", "-o", "json", "--only", "db.*"],
    );
    assert_eq!(code, 0, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(j["summary"]["releases"], 6, "{}", j["unlisted"]);
    // Never more than two at once, and two did run together.
    assert_eq!(
        gauge.most(5432),
        2,
        "database port-forwards asked for at once"
    );

    for bad in ["0", "65", "many"] {
        let (code, _, err) = doctor(&kc, &["-A", "--parallel", bad]);
        assert_eq!(code, 2, "--parallel {bad}: {err}");
        assert!(err.contains("--parallel"), "{err}");
    }
}

#[test]
fn fifty_releases_of_which_three_are_broken() {
    let names: Vec<String> = (0..50).map(|i| format!("ns-{i:02}")).collect();
    let releases: Vec<(&str, &str)> = names.iter().map(|n| ("prefect", n.as_str())).collect();
    let broken = ["ns-07", "ns-23", "ns-41"];
    let inst = install(&releases, |c| {
        c.objects.retain(|o| {
            !(o["kind"] == "Pod"
                && broken.contains(&o["metadata"]["namespace"].as_str().unwrap_or_default()))
        })
    });
    let kc = inst.server.kubeconfig();
    let (code, out, err) = doctor(&kc, &["-A", "-o", "json", "--only", "kube.*"]);
    assert_eq!(code, 1, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(j["summary"]["releases"], 50, "{}", j["unlisted"]);
    assert_eq!(j["summary"]["failing_releases"], 3);
    let failing: Vec<&str> = j["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["exit_code"] != 0)
        .map(|r| r["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(failing, broken);
    for r in j["releases"].as_array().unwrap() {
        assert_eq!(status_in(r, "kube.release"), "pass", "{r:#}");
    }
}

#[test]
fn what_cannot_be_read_is_escaped_and_capped_in_every_format() {
    // The release's name is a label of its secret: outside text, here with a terminal escape and a
    // very long tail.
    let hostile = format!("evil\u{1b}[31m{}", "x".repeat(5_000));
    let inst = install(&[("prefect", "team-a")], |c| {
        let mut secret =
            support::kube::release_secret("evil", "team-z", 1, "deployed", "H4sI-not-a-release");
        secret["metadata"]["labels"]["name"] = Value::String(hostile.clone());
        c.objects.push(secret);
    });
    let kc = inst.server.kubeconfig();
    for format in ["text", "json", "junit", "sarif"] {
        let (code, out, err) = doctor(&kc, &["-A", "--only", "kube.*", "-o", format]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(!out.contains('\u{1b}'), "{format}: a raw escape");
        assert!(out.contains("\\x1b[31m"), "{format}: {out}");
        assert!(!out.contains(&"x".repeat(2_500)), "{format}: not capped");
    }
}
