//! The command line (clap derive) and what each command does.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    catalog::{self, Catalog, Mode},
    checks::{Cx, quote_ident},
    engine::{self, RunOptions, Selection},
    probes::{
        http::{HttpOptions, HttpProbe},
        pg_target::ProcessEnv,
        postgres::{NetDialer, PgProbe},
        prefect_config::PrefectConfig,
    },
    redact, render,
    report::{Report, Target},
    targets::{self, ApiUrl, Given},
};

/// Exit code for usage errors and unreadable input.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "prefect-doctor",
    version,
    about = "Finds what is wrong with a self-hosted Prefect Server (Helm chart) and prints the fix.",
    after_help = "Exit codes: 0 = no failure or error (warnings allowed); 1 = a failure or error \
                  (or a warning with --strict); 2 = usage error or unreadable input."
)]
pub struct Cli {
    /// When to colour the output (NO_COLOR and CLICOLOR_FORCE are honoured with `auto`).
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
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Diagnose a running install.
    Check(CheckArgs),
    /// List every check.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Print one check whole: symptom, cause, fix and docs.
    Explain {
        /// The check id, e.g. db.password.
        id: String,
    },
    /// Print docs/checks.md, generated from the catalog.
    #[command(hide = true)]
    GenDocs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The Prefect database: a postgres:// URL or a libpq key=value string. Default: the PG*
    /// environment variables, else `prefect server start`'s
    /// postgres://prefect:test-password@localhost:5432/prefect_server.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The Prefect API (Apollo) as this machine reaches it, e.g. http://host:4200/graphql. Default: the
    /// prefect CLI's [server] endpoint (~/.prefect/config.toml, PREFECT__SERVER__* variables), else
    /// the server_url of the UI given with --ui-url, else http://localhost:4200.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// The Prefect UI as the user's browser reaches it, e.g. http://host:8080. Default: the prefect
    /// CLI's [server.ui] endpoint, else http://localhost:8080.
    #[arg(long, value_name = "URL")]
    pub ui_url: Option<String>,
    /// Do not verify HTTPS certificates (the report says so).
    #[arg(long)]
    pub insecure: bool,
    /// Reach HOST at ADDR instead of asking DNS, as curl's --resolve (repeatable), e.g.
    /// prefect.example.com:443:203.0.113.7 to check an ingress before its DNS record exists.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, std::net::SocketAddr)>,
    /// The database user Hasura connects as (default: the database user, as the chart's Hasura uses).
    #[arg(long, value_name = "NAME")]
    pub hasura_user: Option<String>,
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Run only the checks whose id matches (repeatable), e.g. --only 'db.*'.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Do not run the checks whose id matches (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Deadline for each check and each connection, e.g. 5s, 500ms, 1m.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Show each check's evidence.
    #[arg(long, short)]
    pub verbose: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("{e} (try 5s, 500ms or 1m)"))?,
    };
    if d.is_zero() {
        return Err("the timeout must be more than zero".to_string());
    }
    Ok(d)
}

fn parse_resolve(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let mut parts = s.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(
            "expected HOST:PORT:ADDR, e.g. prefect.example.com:443:203.0.113.7".to_string(),
        );
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let ip: std::net::IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    Ok((
        host.to_ascii_lowercase(),
        std::net::SocketAddr::new(ip, port),
    ))
}

/// Writes `text` (scrubbed of secrets) to stdout, colour stripped unless wanted.
fn emit(text: &str, color: ColorWhen) {
    let choice = match color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let _ = out.write_all(redact::scrub(text).as_bytes());
    let _ = out.flush();
}

fn fail_usage(msg: &str) -> i32 {
    eprintln!("prefect-doctor: {}", redact::scrub(msg));
    EXIT_USAGE
}

/// Runs the program with `args` (the first being the program name) and returns its exit code.
pub fn run_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let catalog = Catalog::builtin();
    match cli.command {
        Command::List { output } => {
            emit(&list(catalog, output), cli.color);
            0
        }
        Command::Explain { id } => match catalog.get(&id) {
            Some(spec) => {
                emit(&explain(spec), cli.color);
                0
            }
            None => {
                let s = catalog.suggest(&id);
                let hint = if s.is_empty() {
                    "; `prefect-doctor list` shows every check".to_string()
                } else {
                    format!("; did you mean {}?", s.join(", "))
                };
                fail_usage(&format!("unknown check id {id:?}{hint}"))
            }
        },
        Command::GenDocs => {
            emit(&crate::docs::checks_markdown(catalog), ColorWhen::Never);
            0
        }
        Command::Check(args) => check(catalog, args, cli.color),
    }
}

fn list(catalog: &Catalog, output: Format) -> String {
    match output {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(catalog.entries()).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text => {
            let width = catalog
                .entries()
                .iter()
                .map(|e| e.id.len())
                .max()
                .unwrap_or(0);
            let mut out = String::new();
            for (area, title) in catalog::AREAS {
                let entries: Vec<_> = catalog
                    .entries()
                    .iter()
                    .filter(|e| e.area == *area)
                    .collect();
                if entries.is_empty() {
                    continue;
                }
                out.push_str(&format!("{title}\n"));
                for e in entries {
                    out.push_str(&format!(
                        "  {:<width$}  {:<7}  {}\n",
                        e.id,
                        e.severity.to_string(),
                        e.title
                    ));
                }
            }
            out
        }
    }
}

fn explain(spec: &catalog::CheckSpec) -> String {
    let bold = anstyle::Style::new().bold();
    let modes: Vec<&str> = spec
        .modes
        .iter()
        .map(|m| {
            if *m == Mode::Check {
                "check"
            } else {
                "preflight"
            }
        })
        .collect();
    let block = |t: &str| {
        t.trim_end()
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("  {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = format!(
        "{bold}{}{bold:#} — {}\narea: {} · severity: {} · runs in: {}\n\n{bold}Symptom{bold:#}\n{}\n\n{bold}Cause{bold:#}\n{}\n\n{bold}Fix{bold:#}\n{}\n",
        spec.id,
        spec.title,
        spec.area,
        spec.severity,
        modes.join(", "),
        block(&spec.symptom),
        block(&spec.cause),
        block(&spec.fix),
    );
    for (name, fix) in &spec.fixes {
        out.push_str(&format!(
            "\n{bold}Fix when the cause is {name}{bold:#}\n{}\n",
            block(fix)
        ));
    }
    out.push_str(&format!("\n{bold}Docs{bold:#}\n  {}\n", spec.docs));
    out
}

fn check(catalog: &'static Catalog, args: CheckArgs, color: ColorWhen) -> i32 {
    let started = Instant::now();
    let prefect = PrefectConfig::load(&ProcessEnv);
    let given = Given {
        database_url: args.database_url.as_deref(),
        api_url: args.api_url.as_deref(),
        ui_url: args.ui_url.as_deref(),
    };
    let found = match targets::resolve(&given, &ProcessEnv, &prefect) {
        Ok(t) => t,
        Err(e) => return fail_usage(&e),
    };
    let selected = match engine::select(
        catalog,
        crate::checks::REGISTRY,
        Mode::Check,
        &Selection {
            only: args.only.clone(),
            skip: args.skip.clone(),
        },
    ) {
        Ok(s) => s,
        Err(e) => return fail_usage(&e.to_string()),
    };
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut report_targets = Vec::new();
    let hasura_user = match &found.db {
        Some(target) => {
            let hasura_user = args
                .hasura_user
                .clone()
                .unwrap_or_else(|| target.user.clone());
            vars.extend(
                [
                    ("db_user", quote_ident(&target.user)),
                    ("database", quote_ident(&target.dbname)),
                    ("hasura_user", quote_ident(&hasura_user)),
                    ("db_host", target.host.clone()),
                    ("db_port", target.port.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
            );
            report_targets.push(Target {
                kind: "database".to_string(),
                address: target.masked_url(),
                source: target.source.describe().to_string(),
            });
            hasura_user
        }
        None => args.hasura_user.clone().unwrap_or_default(),
    };
    if let Some(api) = &found.api {
        let address = match &api.url {
            ApiUrl::Fixed(u) => {
                vars.insert("api_url".to_string(), u.to_string());
                u.to_string()
            }
            ApiUrl::FromUi => "the UI's server_url".to_string(),
        };
        report_targets.push(Target {
            kind: "api".to_string(),
            address,
            source: api.source.clone(),
        });
    }
    if let Some(ui) = &found.ui {
        vars.insert("ui_url".to_string(), ui.url.to_string());
        report_targets.push(Target {
            kind: "ui".to_string(),
            address: ui.url.to_string(),
            source: ui.source.clone(),
        });
    }
    let mut notices = Vec::new();
    if args.insecure {
        notices.push(
            "--insecure: HTTPS certificates were NOT verified; a passing API or UI check does not \
             prove the server is who it claims to be"
                .to_string(),
        );
    }
    let targets = report_targets;
    let cx = Arc::new(Cx {
        pg: found
            .db
            .map(|t| PgProbe::new(t, Box::new(NetDialer), args.timeout)),
        http: HttpProbe::new(HttpOptions {
            timeout: args.timeout,
            insecure: args.insecure,
            resolve: args.resolve.clone(),
        }),
        api: found.api,
        ui: found.ui,
        prefect,
        hasura_user,
        vars,
    });

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail_usage(&format!("cannot start the async runtime: {e}")),
    };
    let spinner = progress(selected.len());
    let opts = RunOptions {
        timeout: args.timeout,
        severity_overrides: BTreeMap::new(),
    };
    let results = runtime.block_on(engine::run(
        cx,
        catalog,
        crate::checks::REGISTRY,
        &selected,
        &opts,
        &|r| {
            if let Some(pb) = &spinner {
                pb.inc(1);
                pb.set_message(r.id.clone());
            }
        },
    ));
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    // Do not wait for stuck name lookups or connections: everything needed is in `results`.
    runtime.shutdown_background();

    let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let report = Report::new("check", targets, results, args.strict, elapsed).with_notices(notices);
    let text = match args.output {
        Format::Text => render::text::render(&report, args.verbose),
        Format::Json => render::json::render(&report),
    };
    emit(&text, color);
    report.exit_code
}

/// A spinner on stderr, only when stderr is a terminal.
fn progress(total: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} checking… {pos}/{len} {msg}")
    {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}
