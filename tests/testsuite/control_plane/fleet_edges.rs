//! A fleet's edges on a control plane of the test's own (`-A` finds exactly what is there): a Helm
//! release Secret that is not a release, beside one that is; the config file and user checks applied
//! to every release, and a bad check file stopping the run before any release is looked at; a kube
//! config trusting another CA than the API server's.

use super::*;

/// A Secret of Helm's whose payload is not a release (as a hand edit or a broken tool leaves it):
/// named, never dropped, and the readable release is still diagnosed, in every format.
#[test]
fn a_release_that_cannot_be_read_is_said_beside_the_one_that_can() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let r = running_release(cp, "readable", Scenario::default());
    let z = cp.namespace("mangled");
    cp.create(
        &support::kube::release_secret("mangled", &z, 3, "deployed", "H4sI-not-a-release")
            .to_string(),
    );
    let (code, out, err) = fleet_run(&r.kubeconfig, &["-o", "json", "--only", "kube.*"]);
    assert_eq!(code, 1, "an unreadable release makes the run fail: {err}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(j["summary"]["releases"], 1, "{j:#}");
    assert_eq!(j["releases"][0]["namespace"], json!(r.ns));
    assert_eq!(j["releases"][0]["exit_code"], 0, "{j:#}");
    let unlisted = j["unlisted"].as_array().expect("unlisted");
    assert_eq!(unlisted.len(), 1, "{j:#}");
    let said = unlisted[0]["error"].as_str().unwrap_or("");
    let cannot = format!("cannot read release {z}/mangled: ");
    assert!(said.starts_with(&cannot), "{said}");
    let (code, out, _) = fleet_run(&r.kubeconfig, &["--only", "kube.*"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("not diagnosed in the current context: {cannot}")),
        "{out}"
    );
    // A CI gate reading JUnit, and an alert on the metrics, see it too.
    let (_, junit, _) = fleet_run(&r.kubeconfig, &["--only", "kube.*", "-o", "junit"]);
    let suite = junit
        .split("<testsuite ")
        .find(|s| s.contains("name=\"prefect-doctor check: not diagnosed\""))
        .unwrap_or_else(|| panic!("{junit}"));
    assert!(
        suite.contains("<testcase name=\"the current context\""),
        "{suite}"
    );
    assert!(
        suite.contains(&format!("<error message=\"{cannot}")),
        "{suite}"
    );
    let (_, sarif, _) = fleet_run(&r.kubeconfig, &["--only", "kube.*", "-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).expect("SARIF");
    support::sarif::assert_valid_sarif(&sarif);
    let run = sarif["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["automationDetails"]["id"] == "not-diagnosed")
        .unwrap_or_else(|| panic!("{sarif:#}"));
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    let note = &run["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "error");
    assert!(
        note["message"]["text"].as_str().is_some_and(
            |t| t.starts_with(&format!("not diagnosed in the current context: {cannot}"))
        ),
        "{note}"
    );
    let (_, metrics, _) = fleet_run(&r.kubeconfig, &["--only", "kube.*", "-o", "prometheus"]);
    assert!(
        metrics
            .lines()
            .any(|l| l == "prefect_doctor_not_diagnosed 1"),
        "{metrics}"
    );
}

/// The config file (a skip, a severity) and a user check apply to every release of the fleet; a
/// check file that does not parse is a usage error before any release is looked at (the audit log:
/// no port-forward after it).
#[test]
fn the_config_file_and_user_checks_apply_to_every_release_and_a_bad_one_stops_the_run_first() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let runs: Vec<Running> = ["conf-a", "conf-b"]
        .into_iter()
        .map(|t| running_release(cp, t, Scenario::default()))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("doctor.toml");
    std::fs::write(
        &config,
        "[skip]\n\"db.timezone\" = \"our database sets UTC per session\"\n\
         [severity]\n\"site.tenants\" = \"warning\"\n",
    )
    .expect("config");
    let checks = dir.path().join("checks");
    std::fs::create_dir(&checks).expect("checks");
    // Fails on purpose (no release has ten tenants): its severity is the config file's.
    std::fs::write(
        checks.join("tenants.toml"),
        "id = \"site.tenants\"\ntitle = \"Ten tenants\"\n[sql]\n\
         query = \"SELECT count(*)::int4 AS n FROM public.tenant\"\nexpect = \"rows[0].n >= 10\"\n",
    )
    .expect("check");
    let (config, checks) = (config.display().to_string(), checks.display().to_string());
    let args = [
        "-o",
        "json",
        "--config",
        config.as_str(),
        "--checks",
        checks.as_str(),
    ];
    let (code, out, err) = fleet_run(&runs[0].kubeconfig, &args);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let failing: Vec<String> = j["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .filter(|c| c["status"] == "fail" || c["status"] == "error")
        .map(|c| format!("{}: {}", c["id"], c["message"]))
        .collect();
    assert_eq!(
        code, 0,
        "a warning does not fail the run: {err} {failing:?}"
    );
    let releases = j["releases"].as_array().expect("releases");
    assert_eq!(releases.len(), 2, "{j:#}");
    for r in releases {
        for (id, status) in [
            ("site.tenants", "warn"),
            ("db.timezone", "skip"),
            ("db.reachable", "pass"),
        ] {
            assert_eq!(support::result_in(r, id)["status"], status, "{id}: {r:#}");
        }
    }
    // A check file that does not parse: a usage error, and no release is looked at.
    std::fs::write(
        std::path::Path::new(&checks).join("broken.toml"),
        "id = \"site.b\"\n[sql\n",
    )
    .expect("broken check");
    let forwards = || {
        requests_of(cp, "admin")
            .iter()
            .filter(|(_, uri, _)| uri.contains("/portforward"))
            .count()
    };
    let before = forwards();
    assert!(before > 0, "the first run port-forwarded");
    let (code, out, err) = fleet_run(&runs[0].kubeconfig, &args);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("broken.toml"), "{err}");
    assert_eq!(forwards(), before, "a release was looked at");
}

/// A kube config trusting another CA than the one that signed the API server's certificate: the
/// release's finding, said as TLS, with what that usually means.
#[test]
fn a_kube_config_trusting_another_ca_is_said_as_tls() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let r = running_release(cp, "otherca", Scenario::default());
    let (_, other_ca) = support::http::tls_server_pki("localhost", "another CA");
    let text = std::fs::read_to_string(&r.kubeconfig).expect("kube config");
    let line = text
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .expect("the CA line")
        .to_string();
    let wrong = text.replace(
        &line,
        &format!(
            "    certificate-authority-data: {}",
            support::kube::b64(other_ca.as_bytes())
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong_kc = dir.path().join("config");
    std::fs::write(&wrong_kc, wrong).expect("kube config");
    let (code, out, err, _) = run_once(&[
        "check",
        "--kubeconfig",
        &wrong_kc.display().to_string(),
        "-n",
        &r.ns,
        "--release",
        "prefect",
        "-o",
        "json",
    ]);
    assert_ne!(code, 0, "{out}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let release = support::result_in(&j, "kube.release");
    assert_eq!(release["status"], "error", "{release:#}");
    let message = release["message"].as_str().unwrap_or("");
    assert!(
        message.contains("TLS failed") && message.contains("certificate-authority did not sign"),
        "{message}"
    );
}
