//! `check`'s input: what a run of a running install is asked to look at. `fix`, `bundle` and `serve`
//! take the same flags; [`super::run`] is the run they all go through.

use std::time::Duration;

use super::Common;

/// What `check` is asked to look at: its flags, documented where they are used.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CheckInput {
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
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = crate::probes::http::parse_resolve)]
    pub resolve: Vec<(String, std::net::SocketAddr)>,
    /// The kubeconfig file [default: KUBECONFIG, else ~/.kube/config, else the in-cluster service
    /// account]. Without direct URLs, a found kube config is used to find the Helm release.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context [default: its current context]; repeat it to diagnose the releases
    /// of several clusters in one run.
    #[arg(long, value_name = "NAME")]
    pub context: Vec<String>,
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

    /// Re-analyse a support bundle (`prefect-doctor bundle`) instead of looking at anything: the
    /// same checks on what the bundle recorded, with no network at all.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "database_url", "api_url", "ui_url", "insecure", "resolve", "kubeconfig", "context",
        "namespace", "all_namespaces", "release", "hasura_user", "wait",
    ])]
    pub from: Option<std::path::PathBuf>,

    /// Re-run the failing checks (backing off from 1s to 5s) until all pass or DUR has passed, e.g. 5m;
    /// the report and exit code are those of the final state.
    #[arg(long, value_name = "DUR", value_parser = crate::bounded::parse_wait)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub common: Common,
}
