//! The command line: it parses the arguments ([`args`]), hands them to a session (`src/session/`)
//! or the catalog's docs, and writes what comes back ([`output`]). Nothing else.

pub mod args;
pub mod complete;
mod fix;
pub mod output;
pub mod shell;

use clap::{CommandFactory, FromArgMatches};

use crate::{catalog::Catalog, docs, redact, session};

use args::{Cli, ColorWhen, Command, ListFormat, OutputArgs};
pub use output::EXIT_USAGE;
use output::{emit_then, fail_usage};

/// Runs the program with `args` (the first being the program name) and returns its exit code.
pub fn run_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let command_line: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if complete::is_kubectl_complete(args.first().map(std::ffi::OsString::as_os_str)) {
        // `kubectl prefect-doctor <TAB>`: kubectl asks its completion helper.
        return emit_then(&complete::answer(&command_line[1..]), 0);
    }
    let program = shell::set_program(args.first().map(std::ffi::OsString::as_os_str));
    let parsed = Cli::command()
        .bin_name(program)
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
            } else {
                // clap quotes the flag's value: scrub it (a URL's password) and escape it.
                eprint!("{}", redact::for_terminal(&e.render().to_string()));
            }
            return e.exit_code();
        }
    };
    // `list` and `explain` show the user checks a run here would have (./.prefect-doctor.toml's too).
    let with_user = |flags: &[std::path::PathBuf]| {
        crate::config::read(None).and_then(|file| session::assemble(flags, file.as_ref()))
    };
    match cli.command {
        Command::List { output, checks } => {
            let catalog = match with_user(&checks) {
                Ok(c) => c.catalog,
                Err(e) => return fail_usage(&e),
            };
            match output {
                ListFormat::Json => emit_then(&docs::list_json(catalog), 0),
                ListFormat::Text => emit_then(&docs::list_text(catalog), 0),
            }
        }
        Command::LintChecks { paths } => {
            match crate::user_checks::load(&paths, Catalog::builtin()) {
                Ok(loaded) => emit_then(&docs::lint_report(&loaded), 0),
                Err(errors) => fail_usage(&errors.join("\n")),
            }
        }
        Command::Explain { id, checks } => {
            let catalog = match with_user(&checks) {
                Ok(c) => c.catalog,
                Err(e) => return fail_usage(&e),
            };
            match catalog.get(&id) {
                Some(spec) => {
                    output::colour_stdout(cli.color);
                    let text = docs::explain_text(spec);
                    colored::control::set_override(false);
                    emit_then(&text, 0)
                }
                None => {
                    let s = catalog.suggest(&id);
                    let hint = if s.is_empty() {
                        format!("; `{} list` shows every check", shell::program())
                    } else {
                        format!("; did you mean {}?", s.join(", "))
                    };
                    fail_usage(&format!("unknown check id {id:?}{hint}"))
                }
            }
        }
        Command::GenDocs => emit_then(&docs::checks_markdown(Catalog::builtin()), 0),
        Command::CelEval => crate::user_checks::cel_budget::child_main(),
        Command::Completions { shell } => emit_then(&shell::completions(shell), 0),
        Command::GenMan { dir } => match shell::write_man_pages(&dir) {
            Ok(names) => emit_then(
                &format!("wrote {} to {}\n", names.join(", "), dir.display()),
                0,
            ),
            Err(e) => fail_usage(&e),
        },
        Command::Check(cmd) => match session::fleet::plan(&cmd.input) {
            Err(e) => fail_usage(&e),
            Ok(session::fleet::Plan::Single) => {
                report(&cmd.out, cli.color, |p| session::run::check(&cmd.input, p))
            }
            Ok(session::fleet::Plan::Fleet(roster)) => fleet(&cmd, roster, cli.color),
        },
        Command::Preflight(cmd) => report(&cmd.out, cli.color, |p| {
            session::preflight::run(&cmd.input, p)
        }),
        Command::Fix(cmd) => fix::run(&cmd, cli.color),
        Command::Bundle(cmd) => bundle(&cmd, &command_line, cli.color),
        Command::Serve(input) => serve(&input),
    }
}

/// A reporting command: its `--report` files are read first (a bad one is a usage error before
/// anything is looked at), then the session runs and its report is written.
fn report(
    run: &OutputArgs,
    color: ColorWhen,
    session: impl FnOnce(&output::Spinner) -> Result<(crate::report::Report, &'static Catalog), String>,
) -> i32 {
    let mut files = Vec::new();
    for spec in &run.report {
        match args::parse_report_spec(spec) {
            Ok(f) => files.push(f),
            Err(e) => return fail_usage(&format!("--report {spec:?}: {e}")),
        }
    }
    let spinner = output::Spinner::default();
    match session(&spinner) {
        Ok((report, catalog)) => {
            output::emit_report(report, run.output, run.verbose, &files, catalog, color)
        }
        Err(e) => fail_usage(&e),
    }
}

/// `check` on every release found (`-A`, `-n NS` with several, several `--context`).
fn fleet(cmd: &args::CheckCmd, roster: session::fleet::Roster, color: ColorWhen) -> i32 {
    let mut files = Vec::new();
    for spec in &cmd.out.report {
        match args::parse_report_spec(spec) {
            Ok(f) => files.push(f),
            Err(e) => return fail_usage(&format!("--report {spec:?}: {e}")),
        }
    }
    let spinner = output::Spinner::default();
    match session::fleet::run(&cmd.input, &cmd.fleet, roster, &spinner) {
        Ok(f) => output::emit_fleet(f, cmd.out.output, cmd.out.verbose, &files, color),
        Err(e) => fail_usage(&e),
    }
}

/// `serve`: one log line per event on stderr, each with its UTC time; exit 0 on SIGTERM.
fn serve(input: &session::serve::ServeInput) -> i32 {
    let log = std::sync::Arc::new(|line: &str| {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
        eprintln!("{now} {}", redact::for_terminal(line));
    });
    match session::serve::run(input, log) {
        Ok(()) => 0,
        Err(e) => fail_usage(&e),
    }
}

/// `bundle`: records a run, then writes the run's report as `check` does (`-o`, `--report`, `-v`),
/// with where the bundle went, its size and what was cut as a notice at the report's top.
fn bundle(cmd: &args::BundleCmd, command_line: &[String], color: ColorWhen) -> i32 {
    let mut files = Vec::new();
    for spec in &cmd.out.report {
        match args::parse_report_spec(spec) {
            Ok(f) => files.push(f),
            Err(e) => return fail_usage(&format!("--report {spec:?}: {e}")),
        }
    }
    let spinner = output::Spinner::default();
    match session::bundle::run(&cmd.input, command_line, &spinner) {
        Ok((w, catalog)) => {
            let path = w.path.display().to_string();
            let cut = if w.cut > 0 {
                format!(
                    "; {} logs or recorded answers cut to fit --max-size, named in manifest.json",
                    w.cut
                )
            } else {
                String::new()
            };
            let mut report = w.report;
            report.notices.insert(
                0,
                format!(
                    "bundle written: {path} ({} bytes{cut}); re-analyse it with: {} check --from {path}",
                    w.bytes,
                    shell::program()
                ),
            );
            output::emit_report(
                report,
                cmd.out.output,
                cmd.out.verbose,
                &files,
                catalog,
                color,
            )
        }
        Err(e) => fail_usage(&e),
    }
}
