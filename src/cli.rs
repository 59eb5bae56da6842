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
    probes::kube::KubeOptions,
    probes::{
        http::{HttpOptions, HttpProbe},
        pg_target::ProcessEnv,
        postgres::{NetDialer, PgProbe},
        prefect_config::PrefectConfig,
    },
    redact, render,
    report::{CheckResult, Report, Status, Target},
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
    Junit,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Diagnose a running install.
    Check(Box<CheckArgs>),
    /// Before `helm install`: judge the values, the cluster's prerequisites and an external database.
    Preflight(Box<PreflightArgs>),
    /// List every check.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
        output: ListFormat,
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
    /// The kubeconfig file [default: KUBECONFIG, else ~/.kube/config, else the in-cluster service
    /// account]. Without direct URLs, a found kube config is used to find the Helm release.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context [default: its current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace of the release [default: the context's, else `default`].
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Look for the release in every namespace.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The Helm release to diagnose [default: the only prefect-server release found].
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// The database user Hasura connects as (default: the database user, as the chart's Hasura uses).
    #[arg(long, value_name = "NAME")]
    pub hasura_user: Option<String>,

    /// Re-run the failing checks (backing off from 1s to 5s) until all pass or DUR has passed, e.g. 5m;
    /// the report and exit code are those of the final state.
    #[arg(long, value_name = "DUR", value_parser = crate::bounded::parse_wait)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What every reporting command (`check`, `preflight`) takes.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Report format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Run only the checks whose id matches (repeatable), e.g. --only 'db.*'.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Do not run the checks whose id matches (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Deadline for each check and each connection, e.g. 5s, 500ms, 1m [default: 5s, or the config
    /// file's timeout].
    #[arg(long, value_name = "DUR", value_parser = crate::bounded::parse_timeout)]
    pub timeout: Option<Duration>,
    /// Also write the report to FILE in FORMAT (text, json, junit, sarif); repeatable, e.g.
    /// --report junit=prefect-doctor.xml --report sarif=prefect-doctor.sarif.
    #[arg(long, value_name = "FORMAT=FILE")]
    pub report: Vec<String>,
    /// The config file [default: ./.prefect-doctor.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Show each check's evidence.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct PreflightArgs {
    /// A values file, as `helm install -f` (repeatable; later files win).
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<std::path::PathBuf>,
    /// A value, with Helm's syntax (repeatable), e.g. --set postgresql.auth.password=x,ui.ingress.hosts[0]=h.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A value kept as a string (repeatable), as `helm install --set-string`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// The chart version to be installed, e.g. 2022.09.21 [default: judged by the keys you wrote, else
    /// the newest layout].
    #[arg(long, value_name = "VERSION")]
    pub chart_version: Option<String>,
    /// The namespace to install into [default: the kube context's, else `default`].
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// The kubeconfig file, for the cluster prerequisites.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The external database (with `postgresql.useSubChart=false`), as the chart will reach it [default:
    /// postgresql.externalHostname with the password from the existingSecret, when the cluster is
    /// reachable].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The database user Hasura will connect as (default: the database user, as the chart's Hasura uses).
    #[arg(long, value_name = "NAME")]
    pub hasura_user: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
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

/// Writes `text` (scrubbed of secrets) to stdout, colour stripped unless wanted. A closed pipe
/// (`| head`) is not an error; any other write error is exit 2 with a message.
fn emit(text: &str, color: ColorWhen) -> Result<(), i32> {
    let choice = match color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let written = out
        .write_all(redact::scrub(text).as_bytes())
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(0),
        Err(e) => Err(fail_usage(&format!("cannot write to standard output: {e}"))),
    }
}

/// The exit code after writing `text`: `code`, or the write's own.
fn emit_then(text: &str, color: ColorWhen, code: i32) -> i32 {
    match emit(text, color) {
        Ok(()) => code,
        Err(c) => c,
    }
}

fn fail_usage(msg: &str) -> i32 {
    eprintln!("prefect-doctor: {}", redact::for_terminal(msg));
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
    let catalog = Catalog::builtin();
    match cli.command {
        Command::List { output } => emit_then(&list(catalog, output), cli.color, 0),
        Command::Explain { id } => match catalog.get(&id) {
            Some(spec) => emit_then(&explain(spec), cli.color, 0),
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
        Command::GenDocs => emit_then(&crate::docs::checks_markdown(catalog), ColorWhen::Never, 0),
        Command::Check(args) => check(catalog, *args, cli.color),
        Command::Preflight(args) => preflight(catalog, *args, cli.color),
    }
}

fn list(catalog: &Catalog, output: ListFormat) -> String {
    match output {
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(catalog.entries()).unwrap_or_default();
            s.push('\n');
            s
        }
        ListFormat::Text => {
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

/// What both reporting commands set up before looking at anything.
struct Setup {
    started: Instant,
    config: crate::config::Loaded,
    timeout: Duration,
    reports: Vec<(Format, std::path::PathBuf)>,
    selected: Vec<&'static crate::checks::CheckDef>,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    /// Reads the config file, the report files and the selection; `Err` is the exit code.
    fn new(catalog: &'static Catalog, run: &RunArgs, mode: Mode) -> Result<Setup, i32> {
        let started = Instant::now();
        let config =
            crate::config::load(run.config.as_deref(), catalog).map_err(|e| fail_usage(&e))?;
        let timeout = run
            .timeout
            .or(config.timeout)
            .unwrap_or(Duration::from_secs(5));
        let mut reports = Vec::new();
        for spec in &run.report {
            reports.push(
                parse_report_spec(spec)
                    .map_err(|e| fail_usage(&format!("--report {spec:?}: {e}")))?,
            );
        }
        let selected = engine::select(
            catalog,
            crate::checks::REGISTRY,
            mode,
            &Selection {
                only: run.only.clone(),
                skip: run
                    .skip
                    .iter()
                    .cloned()
                    .chain(config.skip.keys().cloned())
                    .collect(),
            },
        )
        .map_err(|e| fail_usage(&e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail_usage(&format!("cannot start the async runtime: {e}")))?;
        Ok(Setup {
            started,
            config,
            timeout,
            reports,
            selected,
            runtime,
        })
    }

    /// Runs the selected checks (rounds with `wait`) and adds the config file's skips.
    fn run_checks(
        self,
        catalog: &'static Catalog,
        make_cx: &(dyn Fn() -> Arc<Cx> + Sync),
        wait: Option<Duration>,
    ) -> (Vec<CheckResult>, Finish) {
        let opts = RunOptions {
            timeout: self.timeout,
            severity_overrides: self.config.severity.clone(),
        };
        let results =
            self.runtime
                .block_on(run_rounds(catalog, &self.selected, &opts, make_cx, wait));
        // Do not wait for stuck name lookups or connections: everything needed is in `results`.
        self.runtime.shutdown_background();
        let results = with_config_skips(results, &self.config, catalog);
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        (
            results,
            Finish {
                elapsed,
                reports: self.reports,
            },
        )
    }
}

/// What is left to do once the checks ran.
struct Finish {
    elapsed: u64,
    reports: Vec<(Format, std::path::PathBuf)>,
}

impl Finish {
    /// Writes the `--report` files and the report itself; returns the exit code. Renderers see the
    /// report only sanitized (outside text escaped and capped).
    fn emit(&self, report: Report, run: &RunArgs, catalog: &Catalog, color: ColorWhen) -> i32 {
        let report = &report.sanitized();
        for (format, path) in &self.reports {
            let text = render_as(report, *format, run.verbose, catalog);
            if let Err(e) = std::fs::write(path, redact::scrub(&text)) {
                return fail_usage(&format!(
                    "cannot write the report to {}: {e}",
                    path.display()
                ));
            }
        }
        emit_then(
            &render_as(report, run.output, run.verbose, catalog),
            color,
            report.exit_code,
        )
    }
}

fn check(catalog: &'static Catalog, args: CheckArgs, color: ColorWhen) -> i32 {
    let setup = match Setup::new(catalog, &args.run, Mode::Check) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (config, timeout, runtime) = (&setup.config, setup.timeout, &setup.runtime);
    let prefect = PrefectConfig::load(&ProcessEnv);
    let given = Given {
        database_url: args.database_url.as_deref(),
        api_url: args.api_url.as_deref(),
        ui_url: args.ui_url.as_deref(),
    };
    let kube_opts = KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone().or(config.namespace.clone()),
        all_namespaces: args.all_namespaces,
    };
    let explicit_kube = kube_opts.kubeconfig.is_some()
        || kube_opts.context.is_some()
        || args.namespace.is_some()
        || args.all_namespaces
        || args.release.is_some();
    let direct = given.database_url.is_some() || given.api_url.is_some() || given.ui_url.is_some();
    let want_kube = explicit_kube
        || (!direct && crate::probes::kube::config_available(&kube_opts, &ProcessEnv));
    let release_name = args.release.clone().or(config.release.clone());
    let mut notices = Vec::new();
    let (kube, reached) = if want_kube {
        match runtime.block_on(crate::kube_target::KubeRun::start(
            &kube_opts,
            release_name.as_deref(),
            timeout,
        )) {
            Ok(k) => {
                let reached = runtime.block_on(k.reach(&given, explicit_kube));
                (Some(k), Some(reached))
            }
            Err(e) if explicit_kube => return fail_usage(&e.to_string()),
            Err(e) => {
                notices.push(format!(
                    "not looking at a cluster ({e}); checking the local defaults"
                ));
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    let found = match &reached {
        Some(r) if r.use_release => r.targets(&given, &ProcessEnv),
        _ => targets::resolve(&given, &ProcessEnv, &prefect),
    };
    let found = match found {
        Ok(t) => t,
        Err(e) => return fail_usage(&e),
    };
    if let Some(r) = &reached {
        notices.extend(r.notices.iter().cloned());
    }
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut targets = Vec::new();
    if let Some(k) = &kube {
        targets.push(Target {
            kind: "kubernetes".to_string(),
            address: k.probe.server.clone(),
            source: format!(
                "kube context {}, {}",
                k.probe.context,
                if k.probe.all_namespaces {
                    "all namespaces".to_string()
                } else {
                    format!("namespace {}", k.probe.namespace)
                }
            ),
        });
    }
    let hasura_user = match &found.db {
        Some(target) => add_db_target(
            target,
            found
                .db_via
                .as_ref()
                .map(|v| v.source.clone())
                .unwrap_or_else(|| target.source.describe().to_string()),
            args.hasura_user.as_deref(),
            &mut vars,
            &mut targets,
        ),
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
        targets.push(Target {
            kind: "api".to_string(),
            address,
            source: api.source.clone(),
        });
    }
    if let Some(ui) = &found.ui {
        vars.insert("ui_url".to_string(), ui.url.to_string());
        targets.push(Target {
            kind: "ui".to_string(),
            address: ui.url.to_string(),
            source: ui.source.clone(),
        });
    }
    if args.insecure {
        notices.push(
            "--insecure: HTTPS certificates were NOT verified; a passing API or UI check does not \
             prove the server is who it claims to be"
                .to_string(),
        );
    }
    let found_release = reached.as_ref().and_then(|r| r.release.clone());
    let release_name = found_release
        .as_ref()
        .map(|(r, _)| r.clone())
        .or(release_name);
    let namespace = found_release
        .as_ref()
        .map(|(_, n)| n.clone())
        .or(kube_opts.namespace.clone());
    declare_public(
        found.db.as_ref(),
        release_name
            .iter()
            .chain(namespace.iter())
            .map(String::as_str)
            .chain(args.hasura_user.as_deref()),
    );
    if let Some(r) = &release_name {
        vars.insert("release".to_string(), r.clone());
    }
    if let Some(n) = &namespace {
        vars.insert("namespace".to_string(), n.clone());
    }
    let release = release_name.map(|name| crate::report::Release {
        name,
        namespace: namespace.clone().unwrap_or_else(|| "default".to_string()),
    });
    let db_dialer = found.db_via.as_ref().and_then(|v| v.dialer.clone());
    let unreached = reached
        .as_ref()
        .map(|r| r.unreached.clone())
        .unwrap_or_default();
    let discovery = kube
        .as_ref()
        .map(|k| (k.probe.clone(), k.discovery.clone()));
    // A fresh set of probes for every round (`--wait` re-runs with new connections).
    let make_cx = || {
        Arc::new(Cx {
            pg: found.db.clone().map(|t| match &db_dialer {
                Some(d) => PgProbe::new(t, Box::new(d.clone()), timeout),
                None => PgProbe::new(t, Box::new(NetDialer), timeout),
            }),
            http: HttpProbe::new(HttpOptions {
                timeout,
                insecure: args.insecure,
                resolve: args.resolve.clone(),
            }),
            api: found.api.clone(),
            ui: found.ui.clone(),
            prefect: prefect.clone(),
            hasura_user: hasura_user.clone(),
            vars: vars.clone(),
            kube: discovery.as_ref().map(|(probe, d)| {
                Arc::new(crate::checks::kube::KubeCx::new(
                    probe.fresh(),
                    d.clone(),
                    explicit_kube,
                ))
            }),
            values: None,
            cluster: None,
            unreached: unreached.clone(),
        })
    };

    let (results, finish) = setup.run_checks(catalog, &make_cx, args.wait);
    let mut report = Report::new("check", targets, results, args.run.strict, finish.elapsed)
        .with_notices(notices);
    report.release = release;
    finish.emit(report, &args.run, catalog, color)
}

/// Lists the database among the report's targets and puts its names into the fixes' placeholders;
/// returns the user Hasura connects as (`--hasura-user`, else the database user, as the chart's).
fn add_db_target(
    target: &crate::probes::pg_target::DbTarget,
    source: String,
    hasura_flag: Option<&str>,
    vars: &mut BTreeMap<String, String>,
    targets: &mut Vec<Target>,
) -> String {
    let hasura_user = hasura_flag.unwrap_or(&target.user).to_string();
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
    targets.push(Target {
        kind: "database".to_string(),
        address: target.masked_url(),
        source,
    });
    hasura_user
}

/// Declares the names the report is made of (see [`redact::public`]): the chart's own words, the
/// database's user and name, and `others` (release, namespace …).
fn declare_public<'a>(
    db: Option<&'a crate::probes::pg_target::DbTarget>,
    others: impl IntoIterator<Item = &'a str>,
) {
    for name in ["prefect", "postgres", "prefect-server"]
        .into_iter()
        .chain(
            db.into_iter()
                .flat_map(|t| [t.user.as_str(), t.dbname.as_str()]),
        )
        .chain(others)
    {
        redact::public(name);
    }
}

fn render_as(report: &Report, format: Format, verbose: bool, catalog: &Catalog) -> String {
    match format {
        Format::Text => render::text::render(report, verbose),
        Format::Json => render::json::render(report),
        Format::Junit => render::junit::render(report),
        Format::Sarif => render::sarif::render(report, catalog),
    }
}

fn parse_report_spec(spec: &str) -> Result<(Format, std::path::PathBuf), String> {
    let (format, path) = spec
        .split_once('=')
        .ok_or("expected FORMAT=FILE, e.g. junit=prefect-doctor.xml")?;
    let format = Format::from_str(format, true)
        .map_err(|_| format!("unknown format {format:?} (text, json, junit or sarif)"))?;
    if path.is_empty() {
        return Err("the file name is empty".to_string());
    }
    Ok((format, std::path::PathBuf::from(path)))
}

/// Checks skipped by the config file, reported as `skip` with the file's reason (unless a check that
/// needed one of them ran it and it failed: then that failure is reported, as for --skip).
fn with_config_skips(
    mut results: Vec<CheckResult>,
    config: &crate::config::Loaded,
    catalog: &Catalog,
) -> Vec<CheckResult> {
    let file = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| crate::config::FILE_NAME.to_string());
    for (id, reason) in &config.skip {
        if results.iter().any(|r| &r.id == id) {
            continue;
        }
        let Some(spec) = catalog.get(id) else {
            continue;
        };
        results.push(CheckResult {
            id: spec.id.clone(),
            title: spec.title.clone(),
            area: spec.area.clone(),
            severity: config.severity.get(id).copied().unwrap_or(spec.severity),
            status: Status::Skip,
            message: format!("skipped by {file}: {reason}"),
            evidence: serde_json::Map::new(),
            fix: None,
            docs: spec.docs.clone(),
            duration_ms: 0,
            location: None,
        });
    }
    // Results in catalog (registry) order, the config-file skips among them.
    results.sort_by_key(|r| {
        crate::checks::REGISTRY
            .iter()
            .position(|c| c.id == r.id)
            .unwrap_or(usize::MAX)
    });
    results
}

/// The first backoff of `--wait`; it doubles up to [`WAIT_MAX_BACKOFF`].
pub const WAIT_FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const WAIT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the selected checks; with `wait`, re-runs the failing, erroring and skipped ones (with fresh
/// connections) after a growing pause until all pass or the time is up.
async fn run_rounds(
    catalog: &'static Catalog,
    selected: &[&'static crate::checks::CheckDef],
    opts: &RunOptions,
    make_cx: &(dyn Fn() -> Arc<Cx> + Sync),
    wait: Option<Duration>,
) -> Vec<CheckResult> {
    let deadline = wait.map(crate::bounded::deadline_in);
    let spinner = progress(selected.len());
    let tick = |r: &CheckResult| {
        if let Some(pb) = &spinner {
            pb.inc(1);
            pb.set_message(r.id.clone());
        }
    };
    let mut results = engine::run(
        make_cx(),
        catalog,
        crate::checks::REGISTRY,
        selected,
        opts,
        &tick,
    )
    .await;
    let mut backoff = WAIT_FIRST_BACKOFF;
    let mut round = 1;
    while let Some(deadline) = deadline {
        let redo: Vec<&'static crate::checks::CheckDef> = selected
            .iter()
            .copied()
            .filter(|d| {
                results
                    .iter()
                    .find(|r| r.id == d.id)
                    .is_none_or(|r| !r.status.satisfies_dependents())
            })
            .collect();
        let now = tokio::time::Instant::now();
        if redo.is_empty()
            || !results
                .iter()
                .any(|r| matches!(r.status, Status::Fail | Status::Error))
            || now >= deadline
        {
            break;
        }
        if let Some(pb) = &spinner {
            let left = deadline.saturating_duration_since(now);
            pb.set_message(format!(
                "waiting for {} (round {round}, {} left)",
                redo.iter().map(|d| d.id).collect::<Vec<_>>().join(", "),
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ));
        }
        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(now))).await;
        backoff = (backoff * 2).min(WAIT_MAX_BACKOFF);
        round += 1;
        let again = engine::run(
            make_cx(),
            catalog,
            crate::checks::REGISTRY,
            &redo,
            opts,
            &|_| {},
        )
        .await;
        for r in again {
            match results.iter_mut().find(|x| x.id == r.id) {
                Some(slot) => *slot = r,
                None => results.push(r),
            }
        }
        // Keep only what this round reports: a prerequisite reported earlier for failing may pass now.
        results.retain(|r| {
            selected.iter().any(|d| d.id == r.id)
                || matches!(r.status, Status::Fail | Status::Error)
        });
    }
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    // Rounds append re-run prerequisites at the end; `with_config_skips` restores catalog order.
    results
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

fn preflight(catalog: &'static Catalog, args: PreflightArgs, color: ColorWhen) -> i32 {
    let setup = match Setup::new(catalog, &args.run, Mode::Preflight) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (config, timeout, runtime) = (&setup.config, setup.timeout, &setup.runtime);
    // The values, as Helm reads them: files in order, then --set and --set-string in order.
    let mut input = crate::values::Input {
        chart_version: args.chart_version.clone(),
        ..Default::default()
    };
    for path in &args.values {
        // An unreadable values file is unreadable input (exit 2), not a finding.
        match crate::bounded::read_text(path, crate::values::MAX_FILE_BYTES as u64, "values file") {
            Ok(text) => input.files.push((path.display().to_string(), Ok(text))),
            Err(e) => return fail_usage(&format!("-f: {e}")),
        }
    }
    // clap keeps each flag's own order; Helm applies --set before --set-string.
    input
        .sets
        .extend(args.set.iter().map(|s| (s.clone(), false)));
    input
        .sets
        .extend(args.set_string.iter().map(|s| (s.clone(), true)));
    let loaded = match crate::values::load(&input) {
        Ok(l) => Arc::new(l),
        Err(e) => return fail_usage(&e),
    };
    let mut notices = vec![format!(
        "judged against the chart's {} values: {}",
        loaded.generation.label(),
        loaded.generation_reason
    )];
    let mut unreached: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut targets = vec![Target {
        kind: "values".to_string(),
        address: if loaded.files.is_empty() {
            "the chart's defaults".to_string()
        } else {
            loaded.files.join(", ")
        },
        source: format!("{} --set", args.set.len() + args.set_string.len()),
    }];
    // The cluster, when one is configured.
    let kube_opts = KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone().or(config.namespace.clone()),
        all_namespaces: false,
    };
    let explicit_kube = kube_opts.kubeconfig.is_some() || kube_opts.context.is_some();
    let cluster = if explicit_kube || crate::probes::kube::config_available(&kube_opts, &ProcessEnv)
    {
        match runtime.block_on(crate::probes::kube::KubeProbe::connect(&kube_opts, timeout)) {
            Ok(p) => {
                targets.push(Target {
                    kind: "kubernetes".to_string(),
                    address: p.server.clone(),
                    source: format!("kube context {}, namespace {}", p.context, p.namespace),
                });
                Some(p)
            }
            Err(e) if explicit_kube => return fail_usage(&e.to_string()),
            Err(e) => {
                unreached.insert("cluster", format!("no cluster: {e}"));
                None
            }
        }
    } else {
        unreached.insert(
            "cluster",
            "no cluster configured (no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster account): \
             the cluster prerequisites are not checked"
                .to_string(),
        );
        None
    };
    let namespace = cluster
        .as_ref()
        .map(|c| c.namespace.clone())
        .or(kube_opts.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    // The external database.
    let db = runtime.block_on(preflight_db(
        &loaded,
        cluster.as_ref(),
        &namespace,
        args.database_url.as_deref(),
    ));
    let db = match db {
        Ok(Ok(t)) => Some(t),
        Ok(Err(why)) => {
            unreached.insert("database", why);
            None
        }
        Err(e) => return fail_usage(&e),
    };
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("namespace".to_string(), namespace.clone());
    let hasura_user = match &db {
        Some(t) => add_db_target(
            t,
            t.password_source
                .clone()
                .filter(|_| args.database_url.is_none())
                .map(|s| format!("postgresql.externalHostname, password from {s}"))
                .unwrap_or_else(|| t.source.describe().to_string()),
            args.hasura_user.as_deref(),
            &mut vars,
            &mut targets,
        ),
        None => args.hasura_user.clone().unwrap_or_default(),
    };
    if let Some(u) = crate::probes::helm::lookup_str(&loaded.values, "postgresql.auth.username").or(
        crate::probes::helm::lookup_str(&loaded.values, "postgresql.postgresqlUsername"),
    ) {
        vars.entry("db_user".to_string())
            .or_insert_with(|| quote_ident(u));
    }
    declare_public(db.as_ref(), [namespace.as_str()]);
    if db.is_some() {
        notices.push(
            "an external database was given: the db.* and hasura.* checks look at it read-only"
                .to_string(),
        );
    }
    let make_cx = || {
        Arc::new(Cx {
            pg: db
                .clone()
                .map(|t| PgProbe::new(t, Box::new(NetDialer), timeout)),
            http: HttpProbe::new(HttpOptions {
                timeout,
                insecure: false,
                resolve: Vec::new(),
            }),
            api: None,
            ui: None,
            prefect: PrefectConfig::load(&BTreeMap::new()),
            hasura_user: hasura_user.clone(),
            vars: vars.clone(),
            kube: None,
            values: Some(loaded.clone()),
            cluster: cluster.as_ref().map(|c| c.fresh()),
            unreached: unreached.clone(),
        })
    };
    let (results, finish) = setup.run_checks(catalog, &make_cx, None);
    let report = Report::new(
        "preflight",
        targets,
        results,
        args.run.strict,
        finish.elapsed,
    )
    .with_notices(notices);
    finish.emit(report, &args.run, catalog, color)
}

/// The external database a preflight looks at: `--database-url`, else `externalHostname` with the
/// password from the existingSecret in the cluster. `Ok(Err(why))`: none to look at.
async fn preflight_db(
    v: &crate::values::Loaded,
    cluster: Option<&crate::probes::kube::KubeProbe>,
    namespace: &str,
    url: Option<&str>,
) -> Result<Result<crate::probes::pg_target::DbTarget, String>, String> {
    use crate::probes::{
        helm::{DbValues, lookup_bool},
        pg_target::DbTarget,
    };
    if let Some(u) = url {
        return DbTarget::resolve(Some(u), &ProcessEnv)
            .map(Ok)
            .map_err(|e| format!("--database-url: {e}"));
    }
    if lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true) {
        return Ok(Err(
            "the chart deploys its own database (postgresql.useSubChart is true)".to_string(),
        ));
    }
    let d = DbValues::read(&v.values, v.generation);
    let Some(host) = d.external_hostname.clone() else {
        return Ok(Err(
            "postgresql.externalHostname is not set (see values.external-db)".to_string(),
        ));
    };
    let key = v.generation.password_key();
    let password = match (cluster, &d.existing_secret) {
        (Some(k), Some(secret)) => crate::kube_target::secret_password(k, namespace, secret, key)
            .await
            .ok()
            .map(|p| (p, format!("secret {namespace}/{secret} key {key}"))),
        _ => None,
    };
    let Some((password, source)) = password else {
        return Ok(Err(format!(
            "pass --database-url postgres://{}:<password>@{host}:{}/{} to check the external database \
             (its password could not be read from the cluster)",
            d.username, d.port, d.database
        )));
    };
    Ok(Ok(DbTarget::from_chart(
        host,
        d.port,
        d.username,
        d.database,
        Some(password),
        Some(source),
    )))
}
