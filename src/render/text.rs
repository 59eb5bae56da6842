//! The text report: checks grouped by area, one line each, the fix and docs under every warning and
//! failure, and a closing summary. Styling is ANSI; the caller's stream strips it when colour is off.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use crate::{
    catalog::{AREAS, area_title},
    report::{Report, Status},
};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn status_style(s: Status) -> Style {
    match s {
        Status::Pass => AnsiColor::Green.on_default(),
        Status::Warn => AnsiColor::Yellow.on_default(),
        Status::Fail => AnsiColor::Red.on_default().bold(),
        Status::Skip => DIM,
        Status::Error => AnsiColor::Magenta.on_default().bold(),
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

fn indent(text: &str, by: usize) -> String {
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

pub fn render(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BOLD}prefect-doctor {}{BOLD:#}", report.command);
    for t in &report.targets {
        let _ = writeln!(
            out,
            "  {:<9} {}  {DIM}({}){DIM:#}",
            t.kind, t.address, t.source
        );
    }
    let loud = AnsiColor::Yellow.on_default().bold();
    for n in &report.notices {
        let _ = writeln!(out, "{loud}‼ {n}{loud:#}");
    }
    let width = report.results.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut areas: Vec<&str> = AREAS.iter().map(|(a, _)| *a).collect();
    for r in &report.results {
        if !areas.contains(&r.area.as_str()) {
            areas.push(&r.area);
        }
    }
    for area in areas {
        let in_area: Vec<_> = report.results.iter().filter(|r| r.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{BOLD}{}{BOLD:#}", area_title(area));
        for r in in_area {
            let st = status_style(r.status);
            let _ = writeln!(
                out,
                "  {st}{}{st:#} {:<width$}  {}",
                marker(r.status),
                r.id,
                r.message
            );
            if let Some(l) = &r.location
                && matches!(r.status, Status::Warn | Status::Fail | Status::Error)
            {
                let _ = writeln!(out, "      at {}:{}:{}", l.file, l.line, l.column);
            }
            if verbose {
                let _ = writeln!(
                    out,
                    "      {DIM}{} · {} · {} ms{DIM:#}",
                    r.title, r.severity, r.duration_ms
                );
                for (k, v) in &r.evidence {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(out, "      {DIM}{k}: {v}{DIM:#}");
                }
            }
            if let Some(fix) = &r.fix {
                let _ = writeln!(out, "      {BOLD}fix:{BOLD:#}");
                let _ = writeln!(out, "{}", indent(fix, 8));
                let _ = writeln!(out, "      {BOLD}docs:{BOLD:#} {}", r.docs);
            }
        }
    }
    let s = &report.summary;
    let total = report.results.len();
    let verdict = if report.exit_code == 0 {
        let g = AnsiColor::Green.on_default().bold();
        format!("{g}OK{g:#}")
    } else {
        let r = AnsiColor::Red.on_default().bold();
        format!("{r}FAILED{r:#}")
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
    for n in &report.notices {
        let _ = writeln!(out, "{loud}‼ {n}{loud:#}");
    }
    out
}
