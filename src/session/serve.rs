//! `serve`: the checks every interval, never two runs at once, their last report served over HTTP
//! (`crate::endpoint`) as metrics and JSON, one log line per run; it stops on SIGTERM or SIGINT.

use std::{
    net::SocketAddr,
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use super::check::CheckInput;
use crate::{
    endpoint::{self, Latest, Shared},
    engine::rounds::Quiet,
    redact, render,
};

/// The shortest interval `serve` takes.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What `serve` runs, where it listens and how often.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeInput {
    #[command(flatten)]
    pub check: CheckInput,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    /// Where to serve /metrics, /report.json and /healthz, e.g. 0.0.0.0:9090 (port 0: any free port,
    /// said in the first log line).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// How often to run the checks, e.g. 60s, 5m (at least 1s); a run slower than this is reported
    /// and the next starts when it ends.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_interval)]
    pub interval: Duration,
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration (try 30s, 5m): {e}"))?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "{s:?} is shorter than the shortest interval, {}",
            humantime::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(d)
}

enum Event {
    /// The endpoint stopped (a signal).
    Stopped,
    /// The first run could not start: a usage error.
    Fatal(String),
}

/// Serves until SIGTERM/SIGINT (`Ok`), or `Err` with a usage error (the address cannot be listened
/// on, the first run cannot start). `log` takes one line at a time.
pub fn run(input: &ServeInput, log: Arc<dyn Fn(&str) + Send + Sync>) -> Result<(), String> {
    if input.check.from.is_some() {
        return Err(
            "serve runs live checks; --from re-analyses a bundle (use check --from)".into(),
        );
    }
    let listener = std::net::TcpListener::bind(input.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", input.listen))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {}: {e}", input.listen))?;
    let addr = listener.local_addr().unwrap_or(input.listen);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    let listener = runtime
        .block_on(async { tokio::net::TcpListener::from_std(listener) })
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    log(&format!(
        "listening on http://{addr} (/metrics, /report.json, /healthz); a run every {}",
        humantime::format_duration(input.interval)
    ));
    let latest: Shared = Arc::default();
    let (events, happened) = mpsc::channel::<Event>();
    let (stop, stopped) = mpsc::channel::<()>();

    // The endpoint, on its own thread and runtime: the runs build theirs.
    let server = {
        let latest = latest.clone();
        let events = events.clone();
        std::thread::Builder::new()
            .name("endpoint".into())
            .spawn(move || {
                runtime.block_on(endpoint::serve(listener, latest, endpoint::termination()));
                let _ = events.send(Event::Stopped);
            })
            .map_err(|e| format!("cannot start: {e}"))?
    };
    {
        let input = input.clone();
        let log = log.clone();
        std::thread::Builder::new()
            .name("runs".into())
            .spawn(move || runs(&input, &latest, log.as_ref(), &events, &stopped))
            .map_err(|e| format!("cannot start: {e}"))?;
    }
    let outcome = match happened.recv() {
        Ok(Event::Fatal(e)) => Err(e),
        Ok(Event::Stopped) | Err(_) => {
            log("stopped");
            Ok(())
        }
    };
    // A run under way is abandoned (it only reads); the endpoint has drained.
    let _ = stop.send(());
    if outcome.is_ok() {
        let _ = server.join();
    }
    outcome
}

/// One run's outputs, rendered and redacted.
struct Done {
    json: String,
    metrics: String,
    summary: crate::report::Summary,
    exit_code: i32,
    /// `3 releases (1 failing): ` for a fleet, empty for one install.
    releases: String,
    first_failing: Option<String>,
}

fn failing(r: &crate::report::Report) -> Option<&str> {
    r.results
        .iter()
        .find(|c| {
            matches!(
                c.status,
                crate::report::Status::Fail | crate::report::Status::Error
            )
        })
        .map(|c| c.id.as_str())
}

/// One run: of one install, or of every release (`-A`, `-n NS`, several `--context`) as `check`.
fn one_run(input: &CheckInput, how: &super::fleet::FleetArgs) -> Result<Done, String> {
    match super::fleet::plan(input)? {
        super::fleet::Plan::Single => {
            let (report, _) = super::run::check(input, &Quiet)?;
            let report = report.sanitized();
            Ok(Done {
                json: redact::scrub(&render::json::render(&report)),
                metrics: redact::scrub(&render::prometheus::render(&report)),
                summary: report.summary,
                exit_code: report.exit_code,
                releases: String::new(),
                first_failing: failing(&report).map(str::to_string),
            })
        }
        super::fleet::Plan::Fleet(roster) => {
            let fleet = super::fleet::run(input, how, roster, &Quiet)?.sanitized();
            let failing_releases = fleet
                .releases
                .iter()
                .filter(|(_, r)| r.exit_code != 0)
                .count();
            Ok(Done {
                json: redact::scrub(&render::fleet::json(&fleet)),
                metrics: redact::scrub(&render::fleet::prometheus(&fleet)),
                summary: render::fleet::total(&fleet),
                exit_code: fleet.exit_code(),
                releases: format!(
                    "{} releases ({failing_releases} failing{}): ",
                    fleet.releases.len(),
                    if fleet.unlisted.is_empty() {
                        String::new()
                    } else {
                        format!(", {} contexts not listed", fleet.unlisted.len())
                    }
                ),
                first_failing: fleet.releases.iter().find_map(|(m, r)| {
                    failing(r).map(|id| format!("{} {id}", render::fleet::heading(m)))
                }),
            })
        }
    }
}

/// The runs, one after the other, until `stopped` says so.
fn runs(
    input: &ServeInput,
    latest: &Shared,
    log: &(dyn Fn(&str) + Send + Sync),
    events: &mpsc::Sender<Event>,
    stopped: &mpsc::Receiver<()>,
) {
    let mut n: u64 = 0;
    loop {
        n = n.saturating_add(1);
        let started = Instant::now();
        match one_run(&input.check, &input.fleet) {
            Ok(done) => {
                if let Ok(mut l) = latest.lock() {
                    *l = Latest {
                        runs: n,
                        report_json: Some(done.json),
                        metrics: Some(done.metrics),
                    };
                }
                let s = &done.summary;
                let first_failing = done
                    .first_failing
                    .map(|f| format!("; first failing: {f}"))
                    .unwrap_or_default();
                log(&format!(
                    "run {n}: {}{} pass, {} warn, {} fail, {} error, {} skip in {:.1}s (exit {}){first_failing}",
                    done.releases,
                    s.pass,
                    s.warn,
                    s.fail,
                    s.error,
                    s.skip,
                    started.elapsed().as_secs_f64(),
                    done.exit_code
                ));
            }
            Err(e) if n == 1 => {
                let _ = events.send(Event::Fatal(e));
                return;
            }
            Err(e) => log(&format!("run {n} could not start: {}", redact::scrub(&e))),
        }
        let took = started.elapsed();
        let wait = match input.interval.checked_sub(took) {
            Some(w) => w,
            None => {
                log(&format!(
                    "run {n} took {:.1}s, longer than the interval ({}): the next starts now",
                    took.as_secs_f64(),
                    humantime::format_duration(input.interval)
                ));
                Duration::ZERO
            }
        };
        match stopped.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
