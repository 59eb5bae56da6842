//! `fix` on the command line: the terminal's part (the question before applying, `--yes` without a
//! terminal) and the report on standard output.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use super::{
    args::{ColorWhen, FixCmd, ListFormat},
    output::{self, emit_then, fail_usage},
};
use crate::{fix::report::FixReport, render, session};

/// The longest answer read from the terminal.
const MAX_ANSWER: u64 = 1024;

pub fn run(cmd: &FixCmd, color: ColorWhen) -> i32 {
    let input = &cmd.input;
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if input.apply && !input.yes && !terminal {
        return fail_usage(
            "fix --apply asks before changing anything, and there is no terminal to ask on: \
             add --yes to apply without asking (nothing was changed)",
        );
    }
    let text = cmd.output == ListFormat::Text;
    let shown = std::cell::Cell::new(false);
    let approve = |plan: &FixReport| -> bool {
        if input.yes {
            return true;
        }
        // On a terminal: show the plan, then ask.
        let plan = plan.clone().sanitized();
        output::colour_stdout(color);
        let shown_text = render::fix::plan_text(&plan, cmd.verbose);
        colored::control::set_override(false);
        if text {
            if output::emit(&shown_text).is_err() {
                return false;
            }
        } else {
            // Standard output is the JSON report's: the plan goes where the question goes.
            eprint!("{}", crate::redact::scrub(&shown_text));
        }
        shown.set(text);
        let n = plan.changes();
        ask(&format!(
            "Apply {n} {}? [y/N] ",
            if n == 1 { "change" } else { "changes" }
        ))
    };
    let spinner = output::Spinner::default();
    match session::fix::run(input, &approve, &spinner) {
        Ok((report, _)) => {
            let report = report.sanitized();
            let code = report.exit_code;
            let out = if text {
                output::colour_stdout(color);
                let t = render::fix::text(&report, cmd.verbose, shown.get());
                colored::control::set_override(false);
                t
            } else {
                render::fix::json(&report)
            };
            emit_then(&out, code)
        }
        Err(e) => fail_usage(&e),
    }
}

/// Asks on stderr, reads a line from stdin: only `y` or `yes` is a yes.
fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let stdin = std::io::stdin();
    let mut limited = std::io::Read::take(stdin.lock(), MAX_ANSWER);
    let mut reader = std::io::BufReader::new(&mut limited);
    if reader.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
