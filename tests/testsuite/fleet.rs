//! Every release at once: an in-test API server holding the chart's release in several namespaces
//! (each pod port-forwarded to the real PostgreSQL, Apollo and UI), diagnosed with `-A`, `-n NS` and
//! several `--context`s, in every output format.

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
fn a_release_that_cannot_be_read_is_said_beside_the_one_that_can() {
    // The secret is Helm's, its payload is not a release: it is named, never dropped, and the
    // readable release is still diagnosed (as a fleet of one, since there are two).
    let inst = install(&[("prefect", "team-a")], |c| {
        c.objects.push(support::kube::release_secret(
            "mangled",
            "team-z",
            3,
            "deployed",
            "H4sI-not-a-release",
        ));
    });
    let kc = inst.server.kubeconfig();
    let (code, out, err) = doctor(&kc, &["-A", "-o", "json", "--only", "kube.*"]);
    assert_eq!(code, 1, "an unreadable release makes the run fail: {err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(j["summary"]["releases"], 1, "{j:#}");
    assert_eq!(j["releases"][0]["namespace"], "team-a");
    assert_eq!(j["releases"][0]["exit_code"], 0, "{j:#}");
    let unlisted = j["unlisted"].as_array().unwrap();
    assert_eq!(unlisted.len(), 1, "{j:#}");
    let said = unlisted[0]["error"].as_str().unwrap();
    assert!(
        said.starts_with("cannot read release team-z/mangled: "),
        "{said}"
    );
    let (code, out, _) = doctor(&kc, &["-A", "--only", "kube.*"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("not diagnosed in the current context: cannot read release team-z/mangled: "),
        "{out}"
    );
    // A CI gate reading JUnit, and an alert on the metrics, see it too.
    let (_, junit, _) = doctor(&kc, &["-A", "--only", "kube.*", "-o", "junit"]);
    let suite = junit
        .split("<testsuite ")
        .find(|s| s.contains("name=\"prefect-doctor check: not diagnosed\""))
        .unwrap_or_else(|| panic!("{junit}"));
    assert!(
        suite.contains("<testcase name=\"the current context\""),
        "{suite}"
    );
    assert!(
        suite.contains("<error message=\"cannot read release team-z/mangled: "),
        "{suite}"
    );
    let (_, sarif, _) = doctor(&kc, &["-A", "--only", "kube.*", "-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    support::sarif::assert_valid_sarif(&sarif);
    let run = sarif["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["automationDetails"]["id"] == "not-diagnosed")
        .unwrap_or_else(|| panic!("{sarif:#}"));
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    let note = &run["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "error");
    assert!(
        note["message"]["text"].as_str().unwrap().starts_with(
            "not diagnosed in the current context: cannot read release team-z/mangled: "
        ),
        "{note}"
    );
    let (_, metrics, _) = doctor(&kc, &["-A", "--only", "kube.*", "-o", "prometheus"]);
    assert!(
        metrics
            .lines()
            .any(|l| l == "prefect_doctor_not_diagnosed 1"),
        "{metrics}"
    );
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

#[test]
fn the_config_file_and_user_checks_apply_to_every_release_and_a_bad_one_stops_the_run_first() {
    let inst = install(&[("prefect", "team-a"), ("prefect", "team-b")], |_| {});
    let kc = inst.server.kubeconfig();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("doctor.toml");
    std::fs::write(
        &config,
        "[skip]\n\"db.timezone\" = \"our database sets UTC per session\"\n\
         [severity]\n\"site.tenants\" = \"warning\"\n",
    )
    .unwrap();
    let checks = dir.path().join("checks");
    std::fs::create_dir(&checks).unwrap();
    // Fails on purpose (no release has ten tenants): its severity is the config file's.
    std::fs::write(
        checks.join("tenants.toml"),
        "id = \"site.tenants\"\ntitle = \"Ten tenants\"\n[sql]\n\
         query = \"SELECT count(*)::int4 AS n FROM public.tenant\"\nexpect = \"rows[0].n >= 10\"\n",
    )
    .unwrap();
    let (config, checks) = (config.to_str().unwrap(), checks.to_str().unwrap());
    let (code, out, err) = doctor(
        &kc,
        &["-A", "-o", "json", "--config", config, "--checks", checks],
    );
    assert_eq!(code, 0, "a warning does not fail the run: {err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let releases = j["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    for r in releases {
        assert_eq!(status_in(r, "site.tenants"), "warn", "{r:#}");
        assert_eq!(status_in(r, "db.timezone"), "skip", "{r:#}");
        assert_eq!(status_in(r, "db.reachable"), "pass", "{r:#}");
    }
    // A check file that does not parse: a usage error, and no release is looked at.
    std::fs::write(
        std::path::Path::new(checks).join("broken.toml"),
        "id = \"site.b\"\n[sql\n",
    )
    .unwrap();
    let portforwards = |inst: &support::kube_fleet::FleetInstall| {
        inst.server
            .hits()
            .iter()
            .filter(|h| h.path.contains("/portforward"))
            .count()
    };
    let before = portforwards(&inst);
    assert!(before > 0, "the first run port-forwarded");
    let (code, out, err) = doctor(
        &kc,
        &["-A", "-o", "json", "--config", config, "--checks", checks],
    );
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("broken.toml"), "{err}");
    assert_eq!(portforwards(&inst), before, "a release was looked at");
}

/// The Kubernetes client's own stack (built for TCP_NODELAY) against an HTTPS API server, as every
/// real cluster is: the kubeconfig's CA is trusted, port-forwards run over TLS, and a CA that did not
/// sign the server's certificate is the release's finding, said as TLS.
#[test]
fn the_api_server_over_https_with_the_kubeconfigs_ca_and_a_wrong_one() {
    let inst = install(&[("prefect", "team-a"), ("prefect", "team-b")], |c| {
        c.tls = Some(support::http::tls_server_pki(
            "localhost",
            "prefect-doctor API server CA",
        ));
    });
    assert!(inst.server.url.starts_with("https://localhost:"));
    let kc = inst.server.kubeconfig();
    let (code, out, err) = doctor(&kc, &["-A", "-o", "json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for r in j["releases"].as_array().unwrap() {
        assert_eq!(status_in(r, "kube.release"), "pass", "{r:#}");
        assert_eq!(status_in(r, "db.reachable"), "pass", "{r:#}");
        assert_eq!(status_in(r, "tenant.exists"), "pass", "{r:#}");
    }
    // The same kubeconfig trusting another CA.
    let (_, other_ca) = support::http::tls_server_pki("localhost", "another CA");
    let text = std::fs::read_to_string(&kc).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap()
        .to_string();
    let wrong = text.replace(
        &line,
        &format!(
            "    certificate-authority-data: {}",
            support::kube::b64(other_ca.as_bytes())
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let wrong_kc = dir.path().join("config");
    std::fs::write(&wrong_kc, wrong).unwrap();
    let (code, out, err) = doctor(
        wrong_kc.to_str().unwrap(),
        &["-n", "team-a", "--release", "prefect", "-o", "json"],
    );
    assert_ne!(code, 0, "{out}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let release = support::result_in(&j, "kube.release");
    assert_eq!(release["status"], "error", "{release:#}");
    let message = release["message"].as_str().unwrap();
    assert!(message.contains("TLS failed"), "{message}");
    assert!(
        message.contains("certificate-authority did not sign"),
        "{message}"
    );
}
