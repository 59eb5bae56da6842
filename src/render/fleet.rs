//! A fleet run (every release at once) as text and JSON: one section per release, then a table; the
//! JUnit, SARIF and Prometheus renderers take several reports themselves (`render_many`). Every
//! report is sanitized before it gets here, and the names from the cluster are escaped here.

use colored::Colorize;
use serde_json::{Value, json};

use crate::{
    fleet_report::{Fleet, Member},
    report::{Report, SCHEMA_VERSION, Status, Summary},
    untrusted::{MAX_EVIDENCE_STRING, MAX_MESSAGE, line},
};

fn shown(s: &str) -> String {
    line(s, MAX_EVIDENCE_STRING)
}

/// `context/namespace/release`, escaped.
pub fn heading(m: &Member) -> String {
    shown(&m.heading())
}

fn first_failing(r: &Report) -> Option<&str> {
    r.results
        .iter()
        .find(|c| matches!(c.status, Status::Fail | Status::Error))
        .map(|c| c.id.as_str())
}

/// Every release's checks added up.
pub fn total(fleet: &Fleet) -> Summary {
    let mut t = Summary::default();
    for (_, r) in &fleet.releases {
        let s = &r.summary;
        t.pass += s.pass;
        t.warn += s.warn;
        t.fail += s.fail;
        t.error += s.error;
        t.skip += s.skip;
    }
    t
}

/// What the run could not list or read, as (where, why): the context (`the current context` when
/// none was named) and the error.
pub fn not_diagnosed(fleet: &Fleet) -> Vec<(String, String)> {
    fleet
        .unlisted
        .iter()
        .map(|u| {
            (
                u.context
                    .clone()
                    .unwrap_or_else(|| "the current context".to_string()),
                u.error.clone(),
            )
        })
        .collect()
}

/// The metrics of every release, and how many contexts and releases were not diagnosed.
pub fn prometheus(fleet: &Fleet) -> String {
    super::prometheus::render_many(fleet.releases.iter().map(|(_, r)| r), fleet.unlisted.len())
}

pub fn text(fleet: &Fleet, verbose: bool) -> String {
    let mut out = String::new();
    for (m, r) in &fleet.releases {
        let title = format!("━━ {} ━━", heading(m));
        out.push_str(&format!("{}\n", title.bold()));
        out.push_str(&super::text::render(r, verbose));
        out.push('\n');
    }
    for (place, why) in not_diagnosed(fleet) {
        out.push_str(&format!(
            "{} {}: {}\n",
            "not diagnosed in".red().bold(),
            shown(&place),
            line(&why, MAX_MESSAGE)
        ));
    }
    let failing = fleet
        .releases
        .iter()
        .filter(|(_, r)| r.exit_code != 0)
        .count();
    out.push_str(&format!(
        "{}\n",
        format!(
            "fleet: {} release{}, {failing} failing",
            fleet.releases.len(),
            if fleet.releases.len() == 1 { "" } else { "s" }
        )
        .bold()
    ));
    let rows: Vec<[String; 8]> = fleet
        .releases
        .iter()
        .map(|(m, r)| {
            let s = &r.summary;
            [
                shown(&m.release),
                shown(&m.namespace),
                shown(m.context.as_deref().unwrap_or("(current)")),
                s.pass.to_string(),
                s.warn.to_string(),
                s.fail.to_string(),
                s.error.to_string(),
                first_failing(r).unwrap_or("-").to_string(),
            ]
        })
        .collect();
    let head = [
        "RELEASE",
        "NAMESPACE",
        "CONTEXT",
        "PASS",
        "WARN",
        "FAIL",
        "ERROR",
        "FIRST FAILING",
    ];
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt_row = |cells: Vec<&str>| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if (3..7).contains(&i) {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                l.push_str("  ");
            }
        }
        l.trim_end().to_string()
    };
    out.push_str(&fmt_row(head.to_vec()));
    out.push('\n');
    for r in &rows {
        out.push_str(&fmt_row(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

pub fn json(fleet: &Fleet) -> String {
    let releases: Vec<Value> = fleet
        .releases
        .iter()
        .map(|(m, r)| {
            json!({
                "context": m.context,
                "namespace": m.namespace,
                "release": m.release,
                "targets": r.targets,
                "notices": r.notices,
                "results": r.results,
                "summary": r.summary,
                "exit_code": r.exit_code,
            })
        })
        .collect();
    let t = total(fleet);
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "command": "check",
        "releases": releases,
        "unlisted": fleet.unlisted,
        "summary": {
            "releases": fleet.releases.len(),
            "failing_releases": fleet.releases.iter().filter(|(_, r)| r.exit_code != 0).count(),
            "pass": t.pass, "warn": t.warn, "fail": t.fail, "error": t.error, "skip": t.skip,
        },
        "exit_code": fleet.exit_code(),
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
