//! `serve`: runs the checks every interval and serves the last run's metrics, report and health
//! over HTTP; it is started as the built binary, scraped twice and stopped with SIGTERM.

use crate::support;

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

/// One well-behaved `GET /healthz` on a fresh connection: answered `ok` within 1 s, or the reason.
fn healthz_within_a_second(addr: &str) -> Result<Duration, String> {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let limit = Duration::from_secs(1);
    let sock: std::net::SocketAddr = addr.parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&sock, limit).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let raw = String::from_utf8_lossy(&raw);
    if !raw.starts_with("HTTP/1.1 200") || !raw.ends_with("ok\n") {
        return Err(format!("answered {raw:?}"));
    }
    if took > limit {
        return Err(format!("answered after {took:?}"));
    }
    Ok(took)
}

/// `count` probes, 200 ms apart: every one must be answered within 1 s.
fn healthz_holds(addr: &str, count: usize, during: &str) {
    let mut slowest = Duration::ZERO;
    for i in 0..count {
        match healthz_within_a_second(addr) {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => panic!("during {during}, probe {i}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{during}: {count} probes answered, the slowest in {slowest:?}");
}

/// The endpoint's open files and resident memory, from /proc.
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    (fds, kb * 1024)
}

/// Whoever reaches the port cannot lock the liveness probe out: during each attack (bounded in
/// count and time, loopback only) a well-behaved `/healthz` on a fresh connection is answered
/// within 1 s every time, open files and memory stay bounded, and SIGTERM still drains and exits 0.
#[test]
fn hostile_clients_cannot_lock_out_healthz() {
    use std::io::Write;
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("postgres://u@{}/x", closed.local_addr().unwrap());
    drop(closed);
    let mut serving = Serving::start(&[
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "60s",
        "--timeout",
        "1s",
        "--database-url",
        &dead,
    ]);
    serving.wait_for("run 1:");
    let addr = serving.addr.clone();
    let pid = serving.pid();
    let sock: std::net::SocketAddr = addr.parse().unwrap();
    let mut worst = (0usize, 0u64);
    let mut note = |(f, m): (usize, u64)| worst = (worst.0.max(f), worst.1.max(m));

    // 1. 200 slow clients: a request head a byte every half second, reconnecting when cut.
    let stop = Arc::new(AtomicBool::new(false));
    let mut drips = Vec::new();
    for _ in 0..200 {
        let stop = stop.clone();
        drips.push(std::thread::spawn(move || {
            let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
            let deadline = std::time::Instant::now() + Duration::from_secs(12);
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(1))
                else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                for b in head {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    healthz_holds(&addr, 15, "200 slow-drip clients");
    note(fds_and_rss(pid));
    stop.store(true, Ordering::Relaxed);
    for d in drips {
        d.join().unwrap();
    }

    // 2. 100 idle connections: connect, send nothing.
    let idle: Vec<_> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(sock).ok())
        .collect();
    healthz_holds(&addr, 10, "100 idle connections");
    note(fds_and_rss(pid));
    drop(idle);

    // 3. 80 clients pipelining requests and never reading the answers.
    let request = b"GET /report.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let greedy: Vec<_> = (0..80)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(sock).ok()?;
            s.set_write_timeout(Some(Duration::from_millis(100))).ok()?;
            // Until the socket's buffers are full both ways (the write times out).
            for _ in 0..20 {
                if s.write_all(&request).is_err() {
                    break;
                }
            }
            Some(s)
        })
        .collect();
    healthz_holds(&addr, 10, "80 clients pipelining without reading");
    note(fds_and_rss(pid));
    drop(greedy);

    // 4. More connections than the budget at once: the oldest make room.
    let flood: Vec<_> = (0..700)
        .filter_map(|_| std::net::TcpStream::connect(sock).ok())
        .collect();
    assert!(flood.len() > 600, "the flood could not connect");
    healthz_holds(&addr, 10, "700 idle connections");
    note(fds_and_rss(pid));
    drop(flood);

    let (fds, rss) = worst;
    eprintln!(
        "at worst {fds} open files, {} MiB resident",
        rss / (1024 * 1024)
    );
    assert!(fds < 512 + 64, "{fds} open files");
    assert!(rss < 128 * 1024 * 1024, "{rss} bytes resident");
    let (code, log) = serving.terminate();
    assert_eq!(code, 0, "{log:?}");
}
