//! The command line as clap reads it, and its translation into what a session takes.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::session::{
    bundle::BundleInput, check::CheckInput, fix::FixInput, preflight::PreflightInput,
};

#[derive(Parser, Debug)]
#[command(
    name = "prefect-doctor",
    version,
    about = "Finds what is wrong with a self-hosted Prefect Server (Helm chart) and prints the fix.",
    after_help = "Exit codes: 0 = no failure or error (warnings allowed); 1 = a failure or error \
                  (or a warning with --strict); 2 = usage error or unreadable input."
)]
pub struct Cli {
    /// When to colour the text report: `auto` colours a terminal unless NO_COLOR is set or CLICOLOR=0,
    /// and colours anything when CLICOLOR_FORCE is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Sarif,
    /// The Prometheus text exposition format (a file for node_exporter's textfile collector, say).
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Diagnose a running install.
    Check(Box<CheckCmd>),
    /// Before `helm install`: judge the values, the cluster's prerequisites and an external database.
    Preflight(Box<PreflightCmd>),
    /// Plan the README's fixes that are a statement or an API call (a dry run), and with --apply make
    /// them, then check again.
    Fix(Box<FixCmd>),
    /// Run the checks and write what they saw, redacted, into one support bundle that
    /// `check --from FILE` re-analyses anywhere, offline.
    Bundle(Box<BundleCmd>),
    /// Run the checks every --interval and serve the last run's metrics (GET /metrics), report
    /// (GET /report.json) and health (GET /healthz) until SIGTERM.
    Serve(Box<crate::session::serve::ServeInput>),
    /// List every check (the user checks of --checks and ./.prefect-doctor/checks too).
    List {
        /// Output format: a table, or the whole catalog as JSON.
        #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
        output: ListFormat,
        /// User checks: a file or a folder of *.toml (repeatable).
        #[arg(long, value_name = "PATH")]
        checks: Vec<std::path::PathBuf>,
    },
    /// Print one check whole: symptom, cause, fix and docs.
    Explain {
        /// The check id, e.g. db.password.
        id: String,
        /// User checks: a file or a folder of *.toml (repeatable).
        #[arg(long, value_name = "PATH")]
        checks: Vec<std::path::PathBuf>,
    },
    /// Validate user check files (exit 0 when every one loads, 2 otherwise), as a run would before
    /// anything runs.
    LintChecks {
        /// Files or folders of *.toml.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<std::path::PathBuf>,
    },
    /// Print the completion script of a shell (source it from the shell's startup file).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print docs/checks.md, generated from the catalog.
    #[command(hide = true)]
    GenDocs,
    /// Evaluate one user check's CEL (a job on stdin) under a memory limit: how a run evaluates
    /// user checks where a runaway expression can be stopped.
    #[command(hide = true, name = "cel-eval")]
    CelEval,
    /// Write the man pages (docs/man/), generated from these definitions, into DIR.
    #[command(hide = true)]
    GenMan {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

/// `check`: what the session looks at, and how the report is written.
#[derive(Args, Debug)]
pub struct CheckCmd {
    #[command(flatten)]
    pub input: CheckInput,
    #[command(flatten)]
    pub fleet: crate::session::fleet::FleetArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `preflight`: what the session judges, and how the report is written.
#[derive(Args, Debug)]
pub struct PreflightCmd {
    #[command(flatten)]
    pub input: PreflightInput,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `fix`: what the session looks at and may change, and how its report is written.
#[derive(Args, Debug)]
pub struct FixCmd {
    #[command(flatten)]
    pub input: FixInput,
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    /// Show the whole check report before the plan.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `bundle`: what to record and where, and how to say what was written.
#[derive(Args, Debug)]
pub struct BundleCmd {
    #[command(flatten)]
    pub input: BundleInput,
    /// How the run's report is written (as `check`); where the bundle went is its first notice.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// How a reporting command writes its report.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Also write the report to FILE in FORMAT (text, json, junit, sarif, prometheus); repeatable, e.g.
    /// --report junit=prefect-doctor.xml --report sarif=prefect-doctor.sarif.
    #[arg(long, value_name = "FORMAT=FILE")]
    pub report: Vec<String>,
    /// Show each check's evidence.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--report FORMAT=FILE`.
pub fn parse_report_spec(spec: &str) -> Result<(Format, std::path::PathBuf), String> {
    let (format, path) = spec
        .split_once('=')
        .ok_or("expected FORMAT=FILE, e.g. junit=prefect-doctor.xml")?;
    let format = Format::from_str(format, true).map_err(|_| {
        format!("unknown format {format:?} (text, json, junit, sarif or prometheus)")
    })?;
    if path.is_empty() {
        return Err("the file name is empty".to_string());
    }
    Ok((format, std::path::PathBuf::from(path)))
}
