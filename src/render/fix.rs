//! `fix`'s report: the plan (what is automatic, what is blocked and why, what is a person's) and,
//! after `--apply`, what became of each change. Text and JSON.

use std::fmt::Write as _;

use colored::Colorize as _;

use super::text::{indent, marker, styled};
use crate::{
    fix::{
        Conn,
        apply::Applied,
        report::{Action, Entry, FixReport},
    },
    report::Status,
};

pub fn json(report: &FixReport) -> String {
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// The header and the plan: what a person is asked to approve.
pub fn plan_text(report: &FixReport, verbose: bool) -> String {
    let mut out = String::new();
    if verbose {
        out.push_str(&super::text::render(&report.report, true));
        out.push('\n');
    }
    let mode = match report.mode {
        "apply" => "apply",
        "bundle" => "planned from a support bundle: nothing is changed, nothing can be",
        _ => "dry run: nothing is changed",
    };
    let _ = writeln!(out, "{}", format!("prefect-doctor fix ({mode})").bold());
    if !verbose {
        for t in &report.report.targets {
            let _ = writeln!(
                out,
                "  {:<9} {}  {}",
                t.kind,
                t.address,
                format!("({})", t.source).dimmed()
            );
        }
        for n in &report.report.notices {
            let _ = writeln!(out, "{}", format!("‼ {n}").yellow().bold());
        }
    }
    let s = &report.report.summary;
    let _ = writeln!(
        out,
        "checks: {} pass, {} warn, {} fail, {} error, {} skip",
        s.pass, s.warn, s.fail, s.error, s.skip
    );
    if report.plan.is_empty() {
        let _ = writeln!(out, "\n{}", "Nothing to fix.".green().bold());
        return out;
    }
    let _ = writeln!(out, "\n{}", "Plan".bold());
    for e in &report.plan {
        entry(&mut out, e);
    }
    let automatic: Vec<&Entry> = report
        .plan
        .iter()
        .filter(|e| e.action == Action::Automatic)
        .collect();
    let count = |a: Action| report.plan.iter().filter(|e| e.action == a).count();
    let mut tail = vec![format!(
        "{} {} for {} {}",
        report.changes(),
        plural(report.changes(), "change", "changes"),
        automatic.len(),
        plural(automatic.len(), "check", "checks"),
    )];
    if count(Action::Blocked) > 0 {
        tail.push(format!("{} blocked", count(Action::Blocked)));
    }
    if count(Action::Manual) > 0 {
        tail.push(format!("{} not automatic", count(Action::Manual)));
    }
    let _ = write!(out, "\n{}", tail.join("; "));
    if report.mode == "bundle" && !automatic.is_empty() {
        out.push_str("; `fix --apply` run against the install itself makes the changes");
    } else if report.mode != "apply" && !automatic.is_empty() {
        out.push_str("; `fix --apply` makes the changes");
    }
    out.push('\n');
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn entry(out: &mut String, e: &Entry) {
    let _ = writeln!(
        out,
        "  {} {}  {}",
        styled(marker(e.status), e.status),
        e.check.bold(),
        e.message
    );
    let whom = |c: Conn| match c {
        Conn::Api => "through the Prefect API".to_string(),
        c => format!("as {}", c.describe()),
    };
    match e.action {
        Action::Automatic => {
            let _ = writeln!(
                out,
                "      {} {}{}:",
                "automatic,".green(),
                whom(e.connection.unwrap_or(Conn::App)),
                e.connection_why
                    .as_ref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            );
            steps(out, e);
        }
        Action::Blocked => {
            let _ = writeln!(
                out,
                "      {} {}",
                "blocked:".yellow().bold(),
                e.blocked.as_deref().unwrap_or("")
            );
            steps(out, e);
            if let Some(f) = &e.fix {
                let _ = writeln!(out, "      fix:\n{}", indent(f, 8));
            }
        }
        Action::Manual => match &e.fix {
            Some(f) => {
                let _ = writeln!(out, "      not automatic:\n{}", indent(f, 8));
            }
            None if e.status == Status::Error => {
                let _ = writeln!(
                    out,
                    "      not automatic: the check could not judge (`prefect-doctor explain {}` \
                     says what it needs)",
                    e.check
                );
            }
            None => {
                let _ = writeln!(out, "      not automatic (the check's report: -v)");
            }
        },
    }
}

fn steps(out: &mut String, e: &Entry) {
    for s in &e.steps {
        let _ = writeln!(out, "        {}", s.statement);
        if let Some(v) = &s.variables {
            let _ = writeln!(out, "          {}", format!("variables: {v}").dimmed());
        }
        if let Some(r) = &s.replaces {
            let _ = writeln!(out, "          {}", format!("-- replaces {r}").dimmed());
        }
    }
}

/// The whole report: the plan (unless the person was just shown it) and what was applied.
pub fn text(report: &FixReport, verbose: bool, plan_shown: bool) -> String {
    let mut out = if plan_shown {
        String::new()
    } else {
        plan_text(report, verbose)
    };
    let Some(applied) = &report.applied else {
        return out;
    };
    if applied.is_empty() {
        if report.changes() > 0 {
            let _ = writeln!(out, "\n{}", "Nothing was applied.".yellow().bold());
        }
        return out;
    }
    let _ = writeln!(out, "\n{}", "Applied".bold());
    for o in applied {
        let status = match o.result.as_str() {
            "fixed" => Status::Pass,
            "fixed elsewhere" => Status::Warn,
            _ => Status::Fail,
        };
        let what = match &o.applied {
            Applied::Committed => format!("{} as {}", o.result, o.user),
            Applied::RolledBack { error, .. } => {
                format!("{}: {error} (rolled back: nothing was changed)", o.result)
            }
            Applied::NotRun { error } => format!("{}: {error}", o.result),
            Applied::Unknown { error } => format!("{}: {error}", o.result),
        };
        let _ = writeln!(
            out,
            "  {} {}  {}",
            styled(marker(status), status),
            o.check.bold(),
            what
        );
        if let Some(m) = &o.message {
            let _ = writeln!(out, "      now: {m}");
        }
        if let Some(h) = &o.hint {
            let _ = writeln!(out, "      {} {h}", "hint:".bold());
        }
    }
    let fixed = applied.iter().filter(|o| o.result == "fixed").count();
    let _ = writeln!(
        out,
        "\n{fixed} of {} {} fixed",
        applied.len(),
        plural(applied.len(), "check", "checks")
    );
    out
}
