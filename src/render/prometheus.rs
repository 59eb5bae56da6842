//! The report as Prometheus metrics, in the text exposition format (0.0.4), written with the
//! `prometheus-client` crate (which escapes label values):
//!
//! - `prefect_doctor_check_status{check,area,severity,release,namespace}`: 0 pass, 1 warn, 2 fail,
//!   3 error, -1 skip;
//! - `prefect_doctor_check_duration_seconds{…}`: how long the check took;
//! - `prefect_doctor_run_timestamp_seconds`: when the run ended (Unix time);
//! - `prefect_doctor_checks{status}`: how many checks ended so, every status present;
//! - `prefect_doctor_not_diagnosed`: how many contexts could not be listed, and releases not read,
//!   in a fleet run (0 otherwise): with none of their series, only this says they are missing.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::prometheus_text,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::report::{Report, Status};

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The value of `prefect_doctor_check_status` for a status.
pub fn status_value(s: Status) -> i64 {
    match s {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
        Status::Error => 3,
        Status::Skip => -1,
    }
}

/// The metrics of one or more reports (one per release); `release`/`namespace` are empty when the
/// run found no Helm release. `not_diagnosed`: the contexts and releases a fleet run could not list
/// or read.
pub fn render_many<'a>(
    reports: impl IntoIterator<Item = &'a Report>,
    not_diagnosed: usize,
) -> String {
    let mut registry = Registry::default();
    let status = Family::<Labels, Gauge>::default();
    let duration = Family::<Labels, FloatGauge>::default();
    let timestamp = FloatGauge::default();
    let checks = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    registry.register(
        "prefect_doctor_check_status",
        "Each check's last status: 0 pass, 1 warn, 2 fail, 3 error, -1 skip",
        status.clone(),
    );
    registry.register(
        "prefect_doctor_check_duration_seconds",
        "How long each check took in its last run",
        duration.clone(),
    );
    registry.register(
        "prefect_doctor_run_timestamp_seconds",
        "When the last run ended, in seconds since the Unix epoch",
        timestamp.clone(),
    );
    registry.register(
        "prefect_doctor_checks",
        "How many checks ended with each status in the last run",
        checks.clone(),
    );
    let missing = Gauge::<i64>::default();
    registry.register(
        "prefect_doctor_not_diagnosed",
        "How many contexts could not be listed, and releases could not be read, in the last run",
        missing.clone(),
    );
    missing.set(i64::try_from(not_diagnosed).unwrap_or(i64::MAX));
    let mut latest = 0i64;
    let mut counts = [0i64; 5];
    for report in reports {
        latest = latest.max(report.finished_unix);
        let (release, namespace) = report
            .release
            .as_ref()
            .map(|r| (r.name.clone(), r.namespace.clone()))
            .unwrap_or_default();
        for r in &report.results {
            let labels: Labels = vec![
                ("check", r.id.clone()),
                ("area", r.area.clone()),
                ("severity", r.severity.to_string()),
                ("release", release.clone()),
                ("namespace", namespace.clone()),
            ];
            status.get_or_create(&labels).set(status_value(r.status));
            duration
                .get_or_create(&labels)
                .set(r.duration_ms as f64 / 1000.0);
            counts[index(r.status)] += 1;
        }
    }
    timestamp.set(latest as f64);
    for s in [
        Status::Pass,
        Status::Warn,
        Status::Fail,
        Status::Error,
        Status::Skip,
    ] {
        checks
            .get_or_create(&vec![("status", s.as_str())])
            .set(counts[index(s)]);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

/// The metrics of one report.
pub fn render(report: &Report) -> String {
    render_many([report], 0)
}

fn index(s: Status) -> usize {
    match s {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
        Status::Error => 3,
        Status::Skip => 4,
    }
}
