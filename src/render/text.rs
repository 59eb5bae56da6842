//! The text report: checks grouped by area, one line each, the fix and docs under every warning and
//! failure; checks skipped for one shared reason folded into one line (each shown with `-v`); a
//! closing summary and a short "What to do" list of the failing checks, root causes first. Colour
//! comes from `colored`, whose switch the caller sets (off for files and pipes).

use std::fmt::Write as _;

use colored::{ColoredString, Colorize as _};

use crate::{
    catalog::{AREAS, area_title},
    report::{CheckResult, Report, Status},
};

pub(crate) fn styled(s: &str, status: Status) -> ColoredString {
    match status {
        Status::Pass => s.green(),
        Status::Warn => s.yellow(),
        Status::Fail => s.red().bold(),
        Status::Skip => s.dimmed(),
        Status::Error => s.magenta().bold(),
    }
}

pub fn marker(s: Status) -> &'static str {
    match s {
        Status::Pass => "✔",
        Status::Warn => "‼",
        Status::Fail => "✘",
        Status::Skip => "○",
        Status::Error => "!",
    }
}

pub(crate) fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Skips that share their message with another skip of the same area are folded into one line.
fn folded<'a>(in_area: &[&'a CheckResult]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in in_area.iter().filter(|r| r.status == Status::Skip) {
        match groups.iter_mut().find(|(m, _)| *m == r.message) {
            Some((_, ids)) => ids.push(&r.id),
            None => groups.push((&r.message, vec![&r.id])),
        }
    }
    groups.retain(|(_, ids)| ids.len() > 1);
    groups
}

fn result_line(out: &mut String, r: &CheckResult, width: usize, verbose: bool) {
    let _ = writeln!(
        out,
        "  {} {:<width$}  {}",
        styled(marker(r.status), r.status),
        r.id,
        r.message
    );
    if let Some(l) = &r.location
        && matches!(r.status, Status::Warn | Status::Fail | Status::Error)
    {
        let _ = writeln!(out, "      at {}:{}:{}", l.file, l.line, l.column);
        for line in l.snippet.iter().flat_map(|s| s.lines()) {
            let _ = writeln!(out, "        {line}");
        }
    }
    if verbose {
        let _ = writeln!(
            out,
            "      {}",
            format!("{} · {} · {} ms", r.title, r.severity, r.duration_ms).dimmed()
        );
        for (k, v) in &r.evidence {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "      {}", format!("{k}: {v}").dimmed());
        }
    }
    if let Some(fix) = &r.fix {
        let _ = writeln!(out, "      {}", "fix:".bold());
        let _ = writeln!(out, "{}", indent(fix, 8));
        let _ = writeln!(out, "      {} {}", "docs:".bold(), r.docs);
    }
}

/// The first line of a failing check's fix (else its message), cut to fit one line.
fn first_step(r: &CheckResult) -> String {
    let line = r
        .fix
        .as_deref()
        .and_then(|f| f.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or(&r.message);
    let mut s: String = line.chars().take(110).collect();
    if line.chars().count() > 110 {
        s.push('…');
    }
    s
}

pub fn render(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        format!("prefect-doctor {}", report.command).bold()
    );
    for t in &report.targets {
        let _ = writeln!(
            out,
            "  {:<9} {}  {}",
            t.kind,
            t.address,
            format!("({})", t.source).dimmed()
        );
    }
    for n in &report.notices {
        let _ = writeln!(out, "{}", format!("‼ {n}").yellow().bold());
    }
    let width = report.results.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut areas: Vec<&str> = AREAS.iter().map(|(a, _)| *a).collect();
    for r in &report.results {
        if !areas.contains(&r.area.as_str()) {
            areas.push(&r.area);
        }
    }
    for area in areas {
        let in_area: Vec<&CheckResult> = report.results.iter().filter(|r| r.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", area_title(area).bold());
        let groups = if verbose {
            Vec::new()
        } else {
            folded(&in_area)
        };
        let mut shown_groups: Vec<&str> = Vec::new();
        for r in &in_area {
            match groups
                .iter()
                .find(|(m, ids)| *m == r.message && ids.contains(&r.id.as_str()))
            {
                Some((message, ids)) if r.status == Status::Skip => {
                    if shown_groups.contains(message) {
                        continue;
                    }
                    shown_groups.push(message);
                    let _ = writeln!(
                        out,
                        "  {} {}",
                        styled(marker(Status::Skip), Status::Skip),
                        format!("{} checks skipped: {message}", ids.len()).dimmed()
                    );
                    let _ = writeln!(
                        out,
                        "      {}",
                        format!("{} (-v lists each)", ids.join(", ")).dimmed()
                    );
                }
                _ => result_line(&mut out, r, width, verbose),
            }
        }
    }
    let s = &report.summary;
    let total = report.results.len();
    let verdict = if report.exit_code == 0 {
        "OK".green().bold()
    } else {
        "FAILED".red().bold()
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        out,
        "\n{verdict}: {} — {} passed, {}, {} failed, {} skipped, {} in {:.2}s",
        plural(total, "check", "checks"),
        s.pass,
        plural(s.warn, "warning", "warnings"),
        s.fail,
        s.skip,
        plural(s.error, "error", "errors"),
        report.elapsed_ms as f64 / 1000.0
    );
    // Results come in catalog order, prerequisites first: the root causes lead the list.
    let failing: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\n{}", "What to do, in this order:".bold());
        let w = failing.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for (i, r) in failing.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {}  {}",
                i + 1,
                styled(&format!("{:<w$}", r.id), r.status),
                first_step(r)
            );
        }
    }
    for n in &report.notices {
        let _ = writeln!(out, "{}", format!("‼ {n}").yellow().bold());
    }
    out
}
