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
    match r.fix.as_deref() {
        Some(fix) => first_sentence(fix),
        None => first_sentence(&r.message),
    }
}

/// The first sentence of the first paragraph of `text`, its wrapped lines joined: never cut inside
/// a sentence. A paragraph with no sentence end (a heading, a list's lead-in) is given whole; a
/// paragraph that is a code block is not a sentence, so the next one is looked at.
pub(crate) fn first_sentence(text: &str) -> String {
    let paragraphs = text.split("\n\n").map(|p| {
        p.lines()
            .filter(|l| !l.starts_with("    "))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let Some(paragraph) = paragraphs.into_iter().find(|p| !p.is_empty()) else {
        return text.trim().to_string();
    };
    // A sentence ends at `.`, `!` or `?` outside `code`, followed by the end or by a space and a
    // capital (so "e.g. the" and "1.4.1" go on).
    let chars: Vec<char> = paragraph.chars().collect();
    let mut in_code = false;
    for (i, c) in chars.iter().enumerate() {
        match c {
            '`' => in_code = !in_code,
            '.' | '!' | '?' if !in_code => {
                let next = chars.get(i + 1);
                let after = chars.get(i + 2);
                if next.is_none()
                    || (next == Some(&' ') && after.is_some_and(|a| a.is_uppercase() || *a == '`'))
                {
                    return chars[..=i].iter().collect();
                }
            }
            _ => {}
        }
    }
    paragraph
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

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn what_to_do_is_a_whole_sentence() {
        assert_eq!(
            first_sentence(
                "Give the database a password that does not change between deployments. Either\n\
                 deploy a secret and set the `existingSecret` option, or set a constant password:"
            ),
            "Give the database a password that does not change between deployments."
        );
        // A sentence wrapped over lines is joined, not cut at the line's end.
        assert_eq!(
            first_sentence(
                "Start the chart's\nagent, e.g. with `--set agent.enabled=true`. Then wait."
            ),
            "Start the chart's agent, e.g. with `--set agent.enabled=true`."
        );
        // No sentence end: the first paragraph, whole; a code block is skipped.
        assert_eq!(
            first_sentence("    kubectl get pods\n\nRun this as\nthe owner:\n\n    ALTER ..."),
            "Run this as the owner:"
        );
        assert_eq!(
            first_sentence("Version 1.4.1 is old. Upgrade."),
            "Version 1.4.1 is old."
        );
    }

    /// Every catalog fix gives a whole first step: it ends a sentence or is a whole paragraph.
    #[test]
    fn every_catalog_fix_has_a_whole_first_step() {
        for spec in crate::catalog::Catalog::builtin().entries() {
            let mut fixes = vec![&spec.fix];
            fixes.extend(spec.fixes.values());
            for fix in fixes {
                let step = first_sentence(fix);
                let joined: String = fix.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(joined.contains(&step), "{}: {step:?}", spec.id);
                assert!(
                    step.ends_with(['.', ':', '!', '?', '`', ')']),
                    "{}: the first step is not a whole sentence: {step:?}",
                    spec.id
                );
            }
        }
    }
}
