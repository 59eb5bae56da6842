//! Several releases, namespaces, contexts and users in one run.

use super::*;

#[test]
fn a_fleet_across_namespaces_and_two_contexts_with_two_users() {
    let cp = control_plane!();
    let (a, b, c) = (
        cp.namespace("fleet-a"),
        cp.namespace("fleet-b"),
        cp.namespace("fleet-c"),
    );
    for (release, ns) in [("prefect", &a), ("prefect", &b), ("one", &c), ("two", &c)] {
        cp.install(ns, release, &[]);
    }
    // The fleet's ServiceAccount with deploy/rbac-fleet.yaml, in a namespace of its own.
    let home = cp.namespace("fleet-home");
    cp.apply(&deploy_in("rbac-fleet.yaml", &home));
    let fleet_token = cp.service_account_token(&home, "prefect-doctor");
    // A team's user with deploy/rbac.yaml's Role in its namespace only.
    cp.apply(&doctor_role_for_user(&b, cluster::TEAM));
    let ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem)
    };
    let kc = cp.dir().join(format!("fleet-{home}.kubeconfig"));
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fleet\nclusters:\n- name: real\n  \
             cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n\
             - name: fleet\n  context: {{cluster: real, user: fleet, namespace: {a}}}\n\
             - name: team\n  context: {{cluster: real, user: team, namespace: {b}}}\n\
             users:\n- name: fleet\n  user: {{token: {fleet_token}}}\n\
             - name: team\n  user: {{token: {team}}}\n",
            url = cp.url,
            team = cluster::TEAM_TOKEN
        ),
    )
    .expect("kubeconfig");
    let kc_arg = kc.display().to_string();
    let fleet_run = |args: &[&str]| -> Value {
        let mut all = vec![
            "check",
            "-o",
            "json",
            "--kubeconfig",
            kc_arg.as_str(),
            "--timeout",
            "10s",
        ];
        all.extend_from_slice(args);
        let (code, out, err, _) = run_once(&all);
        assert_ne!(code, 2, "{out}{err}");
        for secret in [fleet_token.as_str(), cluster::TEAM_TOKEN] {
            assert!(!out.contains(secret) && !err.contains(secret));
        }
        let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        support::assert_fixes_filled(&report);
        report
    };
    // "context/namespace/release" of each release diagnosed, and its kube.release verdict.
    let found = |report: &Value| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = report["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .map(|r| {
                let status = r["results"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|x| x["id"] == "kube.release"))
                    .map(|x| x["status"].clone())
                    .unwrap_or(Value::Null);
                let name = format!(
                    "{}/{}/{}",
                    r["context"].as_str().unwrap_or("?"),
                    r["namespace"].as_str().unwrap_or("?"),
                    r["release"].as_str().unwrap_or("?")
                );
                (name, status)
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let deployed = |names: &[String]| -> Vec<(String, Value)> {
        names.iter().map(|n| (n.clone(), json!("pass"))).collect()
    };

    // Every namespace, through the fleet's ClusterRole: these four (the other tests' releases too,
    // so only ours are compared).
    let report = fleet_run(&["-A", "--context", "fleet"]);
    // The other tests' releases are there too (some half-installed): only ours are compared.
    let ours: Vec<(String, Value)> = found(&report)
        .into_iter()
        .filter(|(r, _)| [&a, &b, &c].iter().any(|ns| r.contains(&format!("/{ns}/"))))
        .collect();
    assert_eq!(
        ours,
        deployed(&[
            format!("fleet/{a}/prefect"),
            format!("fleet/{b}/prefect"),
            format!("fleet/{c}/one"),
            format!("fleet/{c}/two"),
        ]),
        "{report}"
    );
    // Two contexts, two users, each in its context's namespace.
    let report = fleet_run(&["--context", "fleet", "--context", "team"]);
    assert_eq!(
        found(&report),
        deployed(&[format!("fleet/{a}/prefect"), format!("team/{b}/prefect")]),
        "{report}"
    );
    assert_eq!(report["unlisted"], json!([]), "{report}");
    // Both identities only read, and nothing they read was refused. (With -A the fleet's account
    // also reached the other tests' releases, some with their kubelet stopped: a port-forward
    // there is the API server's 500, not a refusal.)
    let sa = format!("system:serviceaccount:{home}:prefect-doctor");
    only_reads_in(cp, &sa, &[&a, &b, &c, &home]);
    only_reads(cp, cluster::TEAM);
}

/// Every release of every namespace of a control plane of the test's own (`check -A` must find
/// these and only these), one of them with its pods gone (a failed rollout): each release its own
/// section, the worst its exit code, in every output format; the fleet's listing and every run only
/// read.
#[test]
fn every_release_of_every_namespace_is_diagnosed_and_one_broken_is_its_own_finding() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let runs: Vec<Running> = ["team-a", "team-b", "team-c"]
        .into_iter()
        .map(|t| running_release(cp, t, Scenario::default()))
        .collect();
    let (a, b, c) = (&runs[0].ns, &runs[1].ns, &runs[2].ns);
    // team-c's pods are gone.
    cp.kubectl_ok(&[
        "delete",
        "pods",
        "--all",
        "-n",
        c,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let run = |args: &[&str]| {
        let (code, out, _) = fleet_run(&runs[0].kubeconfig, args);
        (code, out)
    };
    let (code, out) = run(&["-o", "json"]);
    assert_eq!(code, 1, "the worst release's exit code: {out}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let releases = j["releases"].as_array().expect("releases");
    let names: Vec<String> = releases
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap_or("?"),
                r["release"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            format!("{a}/prefect"),
            format!("{b}/prefect"),
            format!("{c}/prefect")
        ],
        "these and only these"
    );
    let status_in = |r: &Value, id: &str| support::result_in(r, id)["status"].clone();
    for r in &releases[..2] {
        for id in ["kube.release", "kube.pods", "db.reachable", "tenant.exists"] {
            assert_eq!(status_in(r, id), "pass", "{id}: {r:#}");
        }
        assert_eq!(r["exit_code"], 0, "{r:#}");
        assert!(r["context"].is_null());
    }
    let broken = &releases[2];
    assert_eq!(status_in(broken, "kube.release"), "pass");
    assert_eq!(status_in(broken, "kube.pods"), "fail", "{broken:#}");
    assert_eq!(broken["exit_code"], 1);
    assert_eq!(j["summary"]["releases"], 3);
    assert_eq!(j["summary"]["failing_releases"], 1);
    assert_eq!(j["exit_code"], 1);
    for k in ["pass", "warn", "fail", "error", "skip"] {
        let sum: u64 = releases
            .iter()
            .map(|r| r["summary"][k].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(j["summary"][k].as_u64(), Some(sum), "{k}");
    }
    // Text: a section per release, then the table naming the broken one's first failing check.
    let (tcode, text) = run(&["--color", "never"]);
    assert_eq!(tcode, 1);
    for ns in [a, b, c] {
        assert!(text.contains(&format!("━━ {ns}/prefect ━━")), "{text}");
    }
    assert!(text.contains("fleet: 3 releases, 1 failing"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("prefect") && l.contains(c.as_str()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("(current)") && row.ends_with("kube.pods"),
        "{row}"
    );
    // JUnit: a test suite per release; SARIF: a run per release; metrics: each release's labels.
    let (_, junit) = run(&["-o", "junit"]);
    let doc = roxmltree::Document::parse(&junit).expect("JUnit XML");
    let suites: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(
        suites,
        [a, b, c]
            .iter()
            .map(|ns| format!("prefect-doctor check {ns}/prefect"))
            .collect::<Vec<_>>()
    );
    let (_, sarif) = run(&["-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).expect("SARIF");
    let sruns = sarif["runs"].as_array().expect("runs");
    assert_eq!(sruns.len(), 3);
    assert_eq!(sruns[2]["automationDetails"]["id"], format!("{c}/prefect"));
    assert!(sruns[2]["results"].to_string().contains("kube.pods"));
    let (_, prom) = run(&["-o", "prometheus"]);
    for ns in [a, b, c] {
        assert!(
            prom.lines()
                .any(|l| l.starts_with("prefect_doctor_check_status{")
                    && l.contains("check=\"kube.pods\"")
                    && l.contains(&format!("namespace=\"{ns}\""))
                    && l.contains("release=\"prefect\"")),
            "{ns}: {prom}"
        );
    }
    // The fleet's listing and every release's run, as an account of its own: only reads, each
    // answered.
    let (reader, user) = an_account_of_its_own(cp, a);
    let (_, out, _, _) = run_once(&[
        "check",
        "--kubeconfig",
        &reader,
        "--timeout",
        "10s",
        "-A",
        "-o",
        "json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(j["summary"]["releases"], 3, "{j:#}");
    only_reads(cp, &user);
}

/// Two releases in one namespace (`-n`): each diagnosed, the second's missing pods its own finding;
/// one release alone in its namespace: the single report, unchanged; direct URLs with several
/// releases: a usage error.
#[test]
fn several_releases_in_one_namespace_and_one_release_alone() {
    let cp = control_plane!();
    let team = running_release(cp, "team", Scenario::default());
    // A second release beside it, whose workloads have no pods yet.
    cp.install(&team.ns, "prefect2", &[]);
    let solo = running_release(cp, "solo", Scenario::default());
    let kc = team.kubeconfig.display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["check", "--kubeconfig", kc.as_str(), "--timeout", "10s"];
        all.extend_from_slice(args);
        run_once(&all)
    };
    let (_, out, err, _) = run(&["-n", &team.ns, "-o", "json"]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let releases: Vec<&str> = j["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("{j:#}"))
        .iter()
        .filter_map(|r| r["release"].as_str())
        .collect();
    assert_eq!(releases, ["prefect", "prefect2"]);
    let status_in = |r: &Value, id: &str| support::result_in(r, id)["status"].clone();
    let second = &j["releases"][1];
    assert_eq!(status_in(second, "kube.release"), "pass");
    assert_ne!(status_in(second, "kube.pods"), "pass", "{second:#}");
    assert_eq!(status_in(&j["releases"][0], "kube.pods"), "pass", "{j:#}");
    // One release in the namespace: the single report.
    let (code, out, _, _) = run(&["-n", &solo.ns, "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        j.get("releases").is_none() && j["results"].is_array(),
        "{j:#}"
    );
    assert_eq!(j["release"]["namespace"], json!(solo.ns));
    // Direct URLs name one install: with several releases that is a usage error.
    let (code, _, err, _) = run(&[
        "-n",
        &team.ns,
        "--database-url",
        "postgres://x@127.0.0.1:9/x",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("name one install"), "{err}");
}

/// Two contexts of one kube config and one it does not have, with `-A` on a plane of the test's
/// own: each context's releases, in its order; the missing one said beside them, and the run fails.
#[test]
fn several_contexts_and_one_that_does_not_exist() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let r = running_release(cp, "ctx", Scenario::default());
    let ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem)
    };
    let (kc, user) = an_account_of_its_own(cp, &r.ns);
    let token = std::fs::read_to_string(&kc)
        .expect("the account's kube config")
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_string))
        .expect("a token");
    let dir = tempfile::tempdir().expect("tempdir");
    let two = dir.path().join("config");
    std::fs::write(
        &two,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: east\nclusters:\n- name: c\n  cluster:\n    \
             server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: east\n  context:\n    \
             cluster: c\n    user: u\n- name: west\n  context:\n    cluster: c\n    user: u\n\
             users:\n- name: u\n  user:\n    token: {token}\n",
            cp.url
        ),
    )
    .expect("kube config");
    let two = two.display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec![
            "check",
            "--kubeconfig",
            two.as_str(),
            "--timeout",
            "10s",
            "-A",
        ];
        all.extend_from_slice(args);
        let (code, out, err, _) = run_once(&all);
        assert!(
            !out.contains(&token) && !err.contains(&token),
            "the token shown"
        );
        (code, out, err)
    };
    let (code, out, err) = run(&[
        "--context",
        "east",
        "--context",
        "nowhere",
        "--context",
        "west",
        "-o",
        "json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let found: Vec<String> = j["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("{j:#}"))
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}",
                r["context"].as_str().unwrap_or("?"),
                r["namespace"].as_str().unwrap_or("?"),
                r["release"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            format!("east/{}/prefect", r.ns),
            format!("west/{}/prefect", r.ns)
        ]
    );
    for rel in j["releases"].as_array().into_iter().flatten() {
        assert_eq!(
            support::result_in(rel, "kube.release")["status"],
            "pass",
            "{rel:#}"
        );
        assert_eq!(rel["exit_code"], 0, "{rel:#}");
    }
    assert_eq!(j["unlisted"][0]["context"], "nowhere");
    assert!(
        j["unlisted"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("nowhere")),
        "{j:#}"
    );
    // A context that could not be listed makes the run fail, the healthy ones still reported.
    assert_eq!(code, 1);
    let (_, text, _) = run(&[
        "--context",
        "east",
        "--context",
        "nowhere",
        "--color",
        "never",
    ]);
    assert!(
        text.contains("not diagnosed in nowhere: cannot list Helm releases: "),
        "{text}"
    );
    assert!(
        text.contains(&format!("━━ east/{}/prefect ━━", r.ns)),
        "{text}"
    );
    only_reads(cp, &user);
}

/// `serve -A` on a plane of the test's own: every release of the fleet in each run's metrics and
/// report.
#[test]
fn serve_reports_every_release_of_the_fleet() {
    let Some(own) = support::cluster_own::own() else {
        return;
    };
    let cp = own.cp;
    let runs: Vec<Running> = ["serve-a", "serve-b"]
        .into_iter()
        .map(|t| running_release(cp, t, Scenario::default()))
        .collect();
    let kc = runs[0].kubeconfig.display().to_string();
    let mut serving = support::serving::Serving::start(&[
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "1s",
        "--kubeconfig",
        &kc,
        "--timeout",
        "10s",
        "-A",
    ]);
    let line = serving.wait_for("run 1:");
    assert!(line.contains("run 1: 2 releases (0 failing): "), "{line}");
    let (status, metrics) = serving.request("GET", "/metrics");
    assert_eq!(status, 200);
    for r in &runs {
        assert!(
            metrics.lines().any(|l| l.contains("check=\"kube.release\"")
                && l.contains(&format!("namespace=\"{}\"", r.ns))
                && l.ends_with(" 0")),
            "{}: {metrics}",
            r.ns
        );
    }
    let (_, report) = serving.request("GET", "/report.json");
    let report: Value = serde_json::from_str(&report).expect("the report");
    assert_eq!(report["summary"]["releases"], 2);
    let (code, _) = serving.terminate();
    assert_eq!(code, 0);
}
