//! Everything the command line writes: the colour decision, standard output (scrubbed, write errors
//! handled), the `--report` files, usage errors on stderr, and the progress spinner.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

use crate::{
    catalog::Catalog, engine::rounds::Progress, fleet_report::Fleet, redact, render, report::Report,
};

use super::args::{ColorWhen, Format};

/// Exit code for usage errors and unreadable input.
pub const EXIT_USAGE: i32 = 2;

/// Does the text on standard output get colour? `--color always|never` decide; `auto` colours a
/// terminal, unless `NO_COLOR` is set (to anything but empty) or `CLICOLOR=0`; `CLICOLOR_FORCE` (set,
/// and not `0`) colours even a pipe. `NO_COLOR` wins over `CLICOLOR_FORCE`.
pub fn colour_on(when: ColorWhen, terminal: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto if set("NO_COLOR") => false,
        ColorWhen::Auto if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") => true,
        ColorWhen::Auto if env("CLICOLOR").as_deref() == Some("0") => false,
        ColorWhen::Auto => terminal,
    }
}

/// Sets `colored`'s switch for what is rendered next to standard output.
pub fn colour_stdout(when: ColorWhen) {
    let on = colour_on(when, std::io::stdout().is_terminal(), &|k| {
        std::env::var(k).ok()
    });
    colored::control::set_override(on);
}

/// Writes `text` (scrubbed of secrets) to stdout. A closed pipe (`| head`) is `Err(CLOSED)`: the
/// rest is dropped without a word; any other write error is exit 2 with a message.
pub fn emit(text: &str) -> Result<(), i32> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(redact::scrub(text).as_bytes())
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CLOSED),
        Err(e) => Err(fail_usage(&format!("cannot write to standard output: {e}"))),
    }
}

/// What [`emit`] says when the reader of standard output went away.
pub const CLOSED: i32 = -1;

/// The exit code after writing `text`: `code` (also when the reader went away: a pipeline with
/// `pipefail` still sees what the run found), or 2 when standard output could not be written.
pub fn emit_then(text: &str, code: i32) -> i32 {
    match emit(text) {
        Ok(()) | Err(CLOSED) => code,
        Err(c) => c,
    }
}

/// A usage error on stderr (scrubbed, escaped); returns [`EXIT_USAGE`].
pub fn fail_usage(msg: &str) -> i32 {
    eprintln!("{}: {}", super::shell::program(), redact::for_terminal(msg));
    EXIT_USAGE
}

fn render_as(report: &Report, format: Format, verbose: bool, catalog: &Catalog) -> String {
    match format {
        Format::Text => render::text::render(report, verbose),
        Format::Json => render::json::render(report),
        Format::Junit => render::junit::render(report),
        Format::Sarif => render::sarif::render(report, catalog),
        Format::Prometheus => render::prometheus::render(report),
    }
}

/// Writes the `--report` files (never coloured) and the report on stdout (coloured per `color`, text
/// only); returns the exit code. Renderers see the report only sanitized (outside text escaped and
/// capped).
pub fn emit_report(
    report: Report,
    output: Format,
    verbose: bool,
    files: &[(Format, PathBuf)],
    catalog: &Catalog,
    color: ColorWhen,
) -> i32 {
    let report = &report.sanitized();
    emit_each(
        &|format| render_as(report, format, verbose, catalog),
        output,
        files,
        color,
        report.exit_code,
    )
}

/// Writes `render(format)` to each `--report` file (never coloured), then `render(output)` on stdout
/// (coloured per `color`, text only); returns `exit_code`, or a usage error if a file cannot be
/// written.
fn emit_each(
    render: &dyn Fn(Format) -> String,
    output: Format,
    files: &[(Format, PathBuf)],
    color: ColorWhen,
    exit_code: i32,
) -> i32 {
    colored::control::set_override(false);
    for (format, path) in files {
        let written = crate::bounded::open_for_write(path, false, "--report").and_then(|mut s| {
            s.file
                .write_all(redact::scrub(&render(*format)).as_bytes())
                .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))
        });
        if let Err(e) = written {
            return fail_usage(&e);
        }
    }
    if output == Format::Text {
        colour_stdout(color);
    }
    let text = render(output);
    colored::control::set_override(false);
    emit_then(&text, exit_code)
}

fn render_fleet(fleet: &Fleet, format: Format, verbose: bool) -> String {
    let named = || {
        fleet
            .releases
            .iter()
            .map(|(m, r)| (render::fleet::heading(m), r))
    };
    match format {
        Format::Text => render::fleet::text(fleet, verbose),
        Format::Json => render::fleet::json(fleet),
        Format::Junit => render::junit::render_many(named(), &render::fleet::not_diagnosed(fleet)),
        Format::Sarif => {
            render::sarif::render_many(named(), fleet.catalog, &render::fleet::not_diagnosed(fleet))
        }
        Format::Prometheus => render::fleet::prometheus(fleet),
    }
}

/// As [`emit_report`], for every release of a fleet run; the exit code is the worst release's.
pub fn emit_fleet(
    fleet: Fleet,
    output: Format,
    verbose: bool,
    files: &[(Format, PathBuf)],
    color: ColorWhen,
) -> i32 {
    let fleet = &fleet.sanitized();
    emit_each(
        &|format| render_fleet(fleet, format, verbose),
        output,
        files,
        color,
        fleet.exit_code(),
    )
}

/// A spinner on stderr, only when stderr is a terminal.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Default for Spinner {
    fn default() -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let pb =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} checking… {pos}/{len} {msg}")
        {
            pb.set_style(style);
        }
        Spinner(Some(pb))
    }
}

impl Progress for Spinner {
    fn start(&self, total: usize) {
        if let Some(pb) = &self.0 {
            pb.set_length(total as u64);
            pb.enable_steady_tick(Duration::from_millis(100));
        }
    }
    fn done(&self, id: &str) {
        if let Some(pb) = &self.0 {
            pb.inc(1);
            pb.set_message(id.to_string());
        }
    }
    fn waiting(&self, what: String) {
        if let Some(pb) = &self.0 {
            pb.set_message(what);
        }
    }
    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
