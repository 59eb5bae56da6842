//! `-o prometheus` and `--report prometheus=FILE`: the report as Prometheus metrics, parsed back with
//! a Prometheus text parser and compared with the JSON report of the same run.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{
    http::{Apollo, ui},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once_in,
};

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the text format ({e}):\n{text}"))
}

fn gauge(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Gauge(g) | prometheus_parse::Value::Untyped(g) => *g,
        other => panic!("not a gauge: {other:?}"),
    }
}

#[test]
fn the_metrics_say_what_the_report_says() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // No tenant: one failing check among passes, warnings and skips.
    let api = Apollo {
        tenants: vec![],
        ..Apollo::default()
    }
    .start();
    let ui = ui(&format!("{}/graphql", api.url));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let api_url = format!("{}/graphql", api.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doctor.prom");
    let report_spec = format!("prometheus={}", file.display());
    let target = [
        "--database-url",
        url.as_str(),
        "--api-url",
        &api_url,
        "--ui-url",
        &ui.url,
    ];
    let env = BTreeMap::new();
    let (code, json, _, _) = run_once_in(&env, &[&["check", "-o", "json"][..], &target].concat());
    let json: Value = serde_json::from_str(&json).unwrap();
    let before = jiff::Timestamp::now().as_second();
    let (prom_code, prom, err, _) = run_once_in(
        &env,
        &[
            &["check", "-o", "prometheus", "--report", &report_spec][..],
            &target,
        ]
        .concat(),
    );
    let after = jiff::Timestamp::now().as_second();
    assert_eq!(prom_code, code, "the exit code is the run's: {err}");
    assert_eq!(code, 1);
    assert!(!prom.contains(CANARY) && !err.contains(CANARY));
    assert!(
        prom.contains("# TYPE prefect_doctor_check_status gauge"),
        "{prom}"
    );
    // The file is the same exposition (the run differs only in durations and time).
    let from_file = std::fs::read_to_string(&file).unwrap();
    let names = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&from_file), names(&prom));

    let scrape = parse(&prom);
    let value_of = |metric: &str, check: &str| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get("check") == Some(check))
            .map(|s| gauge(&s.value))
    };
    let results = json["results"].as_array().unwrap();
    for r in results {
        let id = r["id"].as_str().unwrap();
        let expected = match r["status"].as_str().unwrap() {
            "pass" => 0.0,
            "warn" => 1.0,
            "fail" => 2.0,
            "error" => 3.0,
            "skip" => -1.0,
            s => panic!("status {s}"),
        };
        // Durations differ between two runs; statuses do not (bar the clock).
        assert_eq!(
            value_of("prefect_doctor_check_status", id),
            Some(expected),
            "{id}"
        );
        let d = value_of("prefect_doctor_check_duration_seconds", id).unwrap();
        assert!((0.0..60.0).contains(&d), "{id}: {d}");
        let sample = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "prefect_doctor_check_status" && s.labels.get("check") == Some(id)
            })
            .unwrap();
        assert_eq!(sample.labels.get("area"), r["area"].as_str(), "{id}");
        assert_eq!(
            sample.labels.get("severity"),
            r["severity"].as_str(),
            "{id}"
        );
        // No release was looked at: the labels are there, empty.
        assert_eq!(sample.labels.get("release"), Some(""), "{id}");
        assert_eq!(sample.labels.get("namespace"), Some(""), "{id}");
    }
    assert_eq!(
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == "prefect_doctor_check_status")
            .count(),
        results.len()
    );
    assert_eq!(
        value_of("prefect_doctor_check_status", "tenant.exists"),
        Some(2.0)
    );
    for status in ["pass", "warn", "fail", "error", "skip"] {
        let n = scrape
            .samples
            .iter()
            .find(|s| s.metric == "prefect_doctor_checks" && s.labels.get("status") == Some(status))
            .map(|s| gauge(&s.value))
            .unwrap_or_else(|| panic!("no prefect_doctor_checks{{status={status:?}}}"));
        assert_eq!(n, json["summary"][status].as_f64().unwrap(), "{status}");
    }
    // Every metric deploy/monitoring.yaml's alerts name is one the doctor writes.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/monitoring.yaml"
    ))
    .unwrap();
    let mut named = 0;
    for (i, _) in rules.match_indices("prefect_doctor_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        named += 1;
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "deploy/monitoring.yaml names {name}, which the doctor does not write"
        );
    }
    assert!(named >= 4, "{rules}");
    // One install: nothing left undiagnosed, and the series says so (an alert needs it present).
    let missing = scrape
        .samples
        .iter()
        .find(|s| s.metric == "prefect_doctor_not_diagnosed")
        .map(|s| gauge(&s.value));
    assert_eq!(missing, Some(0.0));
    let at = scrape
        .samples
        .iter()
        .find(|s| s.metric == "prefect_doctor_run_timestamp_seconds")
        .map(|s| gauge(&s.value))
        .unwrap();
    assert!(
        (before as f64..=after as f64).contains(&at),
        "{before} ≤ {at} ≤ {after}"
    );
}

#[test]
fn a_bad_report_format_names_prometheus_among_the_formats() {
    let (code, _, err, _) = run_once_in(
        &BTreeMap::new(),
        &[
            "check",
            "--report",
            "prom=x.txt",
            "--database-url",
            "postgres://x@127.0.0.1:9/x",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("sarif or prometheus"), "{err}");
}
