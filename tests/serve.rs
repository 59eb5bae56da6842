//! `serve`: runs the checks every interval and serves the last run's metrics, report and health
//! over HTTP; it is started as the built binary, scraped twice and stopped with SIGTERM.

mod support;

use std::time::Duration;

use support::{
    doctor,
    http::{Apollo, ui},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    serving::{Serving, metric},
};

#[test]
fn it_runs_every_interval_serves_the_last_run_and_stops_on_sigterm() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let api = Apollo::default().start();
    let ui = ui(&format!("{}/graphql", api.url));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let api_url = format!("{}/graphql", api.url);
    let mut serving = Serving::start(&[
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "1s",
        "--database-url",
        &url,
        "--api-url",
        &api_url,
        "--ui-url",
        &ui.url,
    ]);
    assert_eq!(
        serving.request("GET", "/healthz"),
        (200, "ok\n".to_string())
    );
    let run1 = serving.wait_for("run 1:");
    assert!(run1.contains("0 fail, 0 error"), "{run1}");
    let (status, first) = serving.request("GET", "/metrics");
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        metric(&first, "prefect_doctor_check_status", Some("db.reachable")),
        0.0
    );
    assert_eq!(
        metric(&first, "prefect_doctor_check_status", Some("tenant.exists")),
        0.0
    );
    let (status, report) = serving.request("GET", "/report.json");
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["command"], "check");
    assert!(report["results"].as_array().unwrap().len() > 10);
    // The second run: a second scrape sees a later run.
    serving.wait_for("run 2:");
    let (status, second) = serving.request("GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        metric(&second, "prefect_doctor_run_timestamp_seconds", None)
            >= metric(&first, "prefect_doctor_run_timestamp_seconds", None)
    );
    // Only GET and HEAD, only three paths.
    assert_eq!(serving.request("POST", "/metrics").0, 405);
    assert_eq!(serving.request("HEAD", "/healthz").0, 200);
    assert_eq!(serving.request("GET", "/admin").0, 404);
    let (code, log) = serving.terminate();
    assert_eq!(code, 0, "{log:?}");
    assert_eq!(
        log.last().map(|l| l.ends_with(" stopped")),
        Some(true),
        "{log:?}"
    );
    for line in &log {
        assert!(!line.contains(CANARY), "{line}");
        // Each line starts with its UTC time.
        assert!(
            line.split(' ')
                .next()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok(),
            "{line}"
        );
    }
    for body in [&first, &second] {
        assert!(!body.contains(CANARY));
    }
}

#[test]
fn a_run_slower_than_the_interval_is_reported_and_the_next_follows() {
    // An API that accepts and never answers: each run takes the 2 s timeout, twice the interval.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_url = format!("http://{}/graphql", silent.local_addr().unwrap());
    let mut serving = Serving::start(&[
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "1s",
        "--timeout",
        "2s",
        "--only",
        "api.reachable",
        "--api-url",
        &api_url,
    ]);
    // Before the first run ends there is nothing to serve yet, and health is fine.
    assert_eq!(serving.request("GET", "/metrics").0, 503);
    assert_eq!(serving.request("GET", "/healthz").0, 200);
    let line = serving.wait_for("longer than the interval");
    assert!(line.contains("run 1 took"), "{line}");
    let run1 = serving
        .seen
        .iter()
        .find(|l| l.contains("run 1:"))
        .cloned()
        .unwrap();
    assert!(run1.contains("first failing: api.reachable"), "{run1}");
    serving.wait_for("run 2:");
    let (code, _) = serving.terminate();
    assert_eq!(code, 0);
}

#[test]
fn bad_addresses_and_intervals_are_clear_usage_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (args, says) in [
        (vec!["--listen", addr.as_str()], "cannot listen on"),
        (
            vec!["--interval", "0s"],
            "shorter than the shortest interval",
        ),
        (
            vec!["--interval", "500ms"],
            "shorter than the shortest interval",
        ),
        (vec!["--interval", "soon"], "is not a duration"),
        (vec!["--listen", "nowhere"], "invalid value 'nowhere'"),
        (
            vec!["--listen", "127.0.0.1:0", "--from", "x.tar.gz"],
            "--from",
        ),
    ] {
        let out = doctor()
            .arg("serve")
            .args(&args)
            .args(["--database-url", "postgres://x@127.0.0.1:9/x"])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
