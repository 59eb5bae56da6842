//! The command line as clap reads it, and its translation into what a session takes.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::session::{Common, check::CheckInput, preflight::PreflightInput};

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

/// `--report FORMAT=FILE`.
pub fn parse_report_spec(spec: &str) -> Result<(Format, std::path::PathBuf), String> {
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

impl RunArgs {
    fn common(&self) -> Common {
        Common {
            only: self.only.clone(),
            skip: self.skip.clone(),
            timeout: self.timeout,
            config: self.config.clone(),
            strict: self.strict,
        }
    }
}

impl From<&CheckArgs> for CheckInput {
    fn from(a: &CheckArgs) -> CheckInput {
        CheckInput {
            database_url: a.database_url.clone(),
            api_url: a.api_url.clone(),
            ui_url: a.ui_url.clone(),
            insecure: a.insecure,
            resolve: a.resolve.clone(),
            kubeconfig: a.kubeconfig.clone(),
            context: a.context.clone(),
            namespace: a.namespace.clone(),
            all_namespaces: a.all_namespaces,
            release: a.release.clone(),
            hasura_user: a.hasura_user.clone(),
            wait: a.wait,
            common: a.run.common(),
        }
    }
}

impl From<&PreflightArgs> for PreflightInput {
    fn from(a: &PreflightArgs) -> PreflightInput {
        PreflightInput {
            values: a.values.clone(),
            set: a.set.clone(),
            set_string: a.set_string.clone(),
            chart_version: a.chart_version.clone(),
            namespace: a.namespace.clone(),
            kubeconfig: a.kubeconfig.clone(),
            context: a.context.clone(),
            database_url: a.database_url.clone(),
            hasura_user: a.hasura_user.clone(),
            common: a.run.common(),
        }
    }
}
