//! prefect-doctor as a CI gate: the exit-code contract, JUnit and SARIF reports (structure and the
//! SARIF 2.1.0 schema), --report files, the config file, and --wait against a real database.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    doctor,
    http::{Apollo, Reply, Server, ui},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    result_of,
    sarif::assert_valid_sarif,
};

fn out(args: &[&str]) -> (i32, String, String) {
    let (code, stdout, stderr, _) = support::run_once(args);
    (code, stdout, stderr)
}

fn graphql(s: &Server) -> String {
    format!("{}/graphql", s.url)
}

#[test]
fn exit_codes_follow_the_worst_status() {
    let healthy = Apollo::default().start();
    let no_cors = Apollo {
        cors: false,
        ..Apollo::default()
    }
    .start();
    let no_cors_ui = ui(&graphql(&no_cors));
    // A UI that talks to another API than the one checked: a warning.
    let other = Apollo::default().start();
    let other_api = graphql(&other);
    let healthy_ui = ui(&graphql(&healthy));
    // api.version cannot decide: `api` is missing from the answer.
    let odd = Server::start(|h| {
        if h.query().is_some_and(|q| q.contains("core_version")) {
            Reply::json(200, &json!({"data": {}}))
        } else {
            Apollo::default().answer(h)
        }
    });
    let dead = format!("http://127.0.0.1:{}/graphql", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let h = graphql(&healthy);
    let o = graphql(&odd);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--api-url", &h, "--only", "api.*"], 0, "pass only"),
        (vec!["--api-url", &h, "--only", "prefect.*"], 0, "skip only"),
        (
            vec![
                "--api-url",
                &other_api,
                "--ui-url",
                &healthy_ui.url,
                "--only",
                "ui.*",
            ],
            0,
            "a warning",
        ),
        (
            vec![
                "--api-url",
                &other_api,
                "--ui-url",
                &healthy_ui.url,
                "--only",
                "ui.*",
                "--strict",
            ],
            1,
            "a warning with --strict",
        ),
        (
            vec!["--ui-url", &no_cors_ui.url, "--only", "ui.*"],
            1,
            "a browser refused by CORS",
        ),
        (vec!["--api-url", &dead, "--only", "api.*"], 1, "a failure"),
        (vec!["--api-url", &o, "--only", "api.*"], 1, "an error"),
        (vec!["--only", "no.such.check"], 2, "a usage error"),
    ];
    for (args, code, what) in cases {
        for format in ["text", "json", "junit", "sarif"] {
            let mut a = vec!["check", "--timeout", "2s", "-o", format];
            a.extend(&args);
            let (got, stdout, stderr) = out(&a);
            assert_eq!(got, code, "{what} ({format}): {stdout}{stderr}");
        }
    }
}

/// Reads a JUnit file back: (name, classname, outcome, message, body) per test case.
fn junit_cases(xml: &str) -> Vec<(String, String, String, String, String)> {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|tc| {
            let outcome = tc
                .children()
                .find(|c| matches!(c.tag_name().name(), "failure" | "error" | "skipped"));
            (
                tc.attribute("name").unwrap_or_default().to_string(),
                tc.attribute("classname").unwrap_or_default().to_string(),
                outcome
                    .map(|o| o.tag_name().name().to_string())
                    .unwrap_or_else(|| "pass".to_string()),
                outcome
                    .and_then(|o| o.attribute("message"))
                    .unwrap_or_default()
                    .to_string(),
                outcome
                    .and_then(|o| o.text())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn faulty_db() -> (PgServer, String) {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            db_timezone: Some("Europe/Berlin".into()),
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    (pg, url)
}

#[test]
fn reports_in_every_format_at_once() {
    let (_pg, url) = faulty_db();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("out.xml");
    let sarif = dir.path().join("out.sarif");
    let json_path = dir.path().join("out.json");
    let (code, stdout, stderr) = out(&[
        "check",
        "--color",
        "never",
        "--database-url",
        &url,
        "--report",
        &format!("junit={}", junit.display()),
        "--report",
        &format!("sarif={}", sarif.display()),
        "--report",
        &format!("json={}", json_path.display()),
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    // The terminal still gets text.
    assert!(stdout.contains("✘ tenant.exists"), "{stdout}");

    // No file holds the password.
    for f in [&junit, &sarif, &json_path] {
        assert!(!std::fs::read_to_string(f).unwrap().contains(CANARY));
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();

    // JUnit: one case per check, classname = area, failures carry message and fix.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), results.len());
    for (r, (name, classname, outcome, message, body)) in results.iter().zip(&cases) {
        let id = r["id"].as_str().unwrap();
        assert!(name.starts_with(&format!("{id}: ")), "{name}");
        assert_eq!(
            classname,
            &format!("prefect-doctor.{}", r["area"].as_str().unwrap())
        );
        let expected = match r["status"].as_str().unwrap() {
            "pass" | "warn" => "pass",
            "fail" => "failure",
            "error" => "error",
            _ => "skipped",
        };
        assert_eq!(outcome, expected, "{id}");
        if expected != "pass" {
            assert_eq!(message, r["message"].as_str().unwrap());
        }
        if expected == "failure" {
            assert!(body.contains("fix:"), "{body}");
        }
    }
    let tenant = cases
        .iter()
        .find(|c| c.0.starts_with("tenant.exists"))
        .unwrap();
    assert!(tenant.4.contains("jobs.createTenant.enabled=true"));
    assert!(xml.contains(&format!("failures=\"{}\"", json["summary"]["fail"])));

    // SARIF: schema-valid; one rule per catalog entry; one result per warn/fail/error.
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_valid_sarif(&sarif);
    let run = &sarif["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        prefect_doctor::catalog::Catalog::builtin().entries().len()
    );
    let findings = results
        .iter()
        .filter(|r| matches!(r["status"].as_str(), Some("warn" | "fail" | "error")))
        .count();
    assert_eq!(run["results"].as_array().unwrap().len(), findings);
    let tz = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "db.timezone")
        .unwrap();
    assert_eq!(tz["level"], "warning");
    let rule = &run["tool"]["driver"]["rules"][tz["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "db.timezone");
    assert!(rule["helpUri"].as_str().unwrap().starts_with("https://"));
    // Live findings are attached to the target (no release known here).
    assert!(
        tz["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            .as_str()
            .unwrap()
            .starts_with("database:postgres://prefect:****@")
    );
}

#[test]
fn sarif_regions_for_values_files_and_the_release() {
    use prefect_doctor::{
        catalog::{Catalog, Severity},
        render::sarif,
        report::{CheckResult, Location, Release, Report, Status},
    };
    let r = CheckResult {
        id: "db.password".into(),
        title: "t".into(),
        area: "database".into(),
        severity: Severity::Error,
        status: Status::Fail,
        message: "bad".into(),
        evidence: serde_json::Map::new(),
        fix: Some("fix it".into()),
        docs: "https://example.com".into(),
        duration_ms: 1,
        source: "builtin".into(),
        location: Some(Location {
            snippet: None,
            file: "values.yaml".into(),
            line: 12,
            column: 5,
        }),
    };
    let mut live = r.clone();
    live.location = None;
    live.id = "tenant.exists".into();
    let mut report = Report::new("preflight", vec![], vec![r, live], false, 1);
    report.release = Some(Release {
        name: "prefect".into(),
        namespace: "default".into(),
    });
    let v: Value = serde_json::from_str(&sarif::render(&report, Catalog::builtin())).unwrap();
    assert_valid_sarif(&v);
    let res = &v["runs"][0]["results"];
    assert_eq!(
        res[0]["locations"][0]["physicalLocation"],
        json!({"artifactLocation": {"uri": "values.yaml"}, "region": {"startLine": 12, "startColumn": 5}})
    );
    assert_eq!(
        res[1]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "default/prefect"
    );
}

#[test]
fn config_file_skips_with_reasons_and_overrides_severity() {
    let (_pg, url) = faulty_db();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(".prefect-doctor.toml");
    std::fs::write(
        &cfg,
        "release = \"prod\"\nnamespace = \"prefect\"\ntimeout = \"3s\"\n\
         [skip]\n\"db.timezone\" = \"the managed database sets UTC per session\"\n\
         [severity]\n\"tenant.exists\" = \"warning\"\n",
    )
    .unwrap();
    // Found in the current directory.
    let o = doctor()
        .current_dir(dir.path())
        .args(["check", "-o", "json", "--database-url", &url])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let find = |id: &str| result_of(&json, id);
    let tz = find("db.timezone");
    assert_eq!(tz["status"], "skip");
    assert_eq!(
        tz["message"],
        ".prefect-doctor.toml: the managed database sets UTC per session".replace(
            ".prefect-doctor.toml: ",
            "skipped by .prefect-doctor.toml: "
        )
    );
    let tenant = find("tenant.exists");
    assert_eq!(tenant["status"], "warn");
    assert_eq!(tenant["severity"], "warning");
    // release/namespace fill the fix.
    assert!(
        tenant["fix"]
            .as_str()
            .unwrap()
            .contains("helm upgrade prod prefecthq/prefect-server -n prefect")
    );
    assert_eq!(o.status.code(), Some(0), "only warnings left");

    // Mistakes are usage errors, named precisely.
    std::fs::write(&cfg, "[skip]\n\"db.timezon\" = \"x\"\n").unwrap();
    let (code, _, err) = out(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean db.timezone"), "{err}");
    std::fs::write(&cfg, "skips = 1\n").unwrap();
    let (code, _, err) = out(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `skips`"), "{err}");
}

#[test]
fn wait_turns_green_when_the_fault_is_repaired() {
    let (pg, url) = faulty_db();
    let started = Instant::now();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("prefect-doctor"))
        .args([
            "check",
            "-o",
            "json",
            "--database-url",
            &url,
            "--only",
            "tenant.exists",
            "--wait",
            "60s",
        ])
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it see the fault, then repair it the way `create-tenant` does.
    std::thread::sleep(Duration::from_millis(1500));
    pg.sql(
        "prefect",
        "INSERT INTO public.tenant (name, slug) VALUES ('default', 'default')",
    );
    let output = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["results"][0]["status"], "pass");
    // It reported once, the final state.
    assert_eq!(json["results"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn wait_gives_up_on_time() {
    let (_pg, url) = faulty_db();
    let started = Instant::now();
    let (code, stdout, _) = out(&[
        "check",
        "-o",
        "json",
        "--database-url",
        &url,
        "--only",
        "tenant.exists",
        "--wait",
        "3s",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["results"][0]["status"], "fail");
    // It did wait (rounds at 1 s and 3 s), and stopped at the deadline rather than running on.
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}
