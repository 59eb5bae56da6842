//! Check logic. Each check is one small async function named after its catalog id
//! (`db.password` → `db_password`), in the file of its area. Its words (title, fix …) are in
//! `checks/<id>.toml`.

mod api;
mod cluster;
mod db;
mod hasura;
pub mod kube;
mod prefect;
mod tenant;
mod ui;
mod values;
mod web;

use std::{collections::BTreeMap, sync::Arc};

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{
    probes::{http::HttpProbe, postgres::PgProbe, prefect_config::PrefectConfig},
    targets::{ApiTarget, UiTarget},
};

/// What a check sees: the shared probes, the targets and the names discovered so far.
pub struct Cx {
    /// The database, when there is one to look at (see [`crate::targets`]).
    pub pg: Option<PgProbe>,
    pub http: HttpProbe,
    pub api: Option<ApiTarget>,
    pub ui: Option<UiTarget>,
    /// The local prefect CLI's configuration.
    pub prefect: PrefectConfig,
    /// The database user Hasura connects as (the chart's Hasura uses the Prefect user).
    pub hasura_user: String,
    /// Values for the catalog's `{placeholders}`.
    pub vars: BTreeMap<String, String>,
    /// The cluster and the Helm release, when the run looks at Kubernetes.
    pub kube: Option<Arc<kube::KubeCx>>,
    /// The cluster a preflight looks at (no release yet).
    pub cluster: Option<crate::probes::kube::KubeProbe>,
    /// The values a preflight judges.
    pub values: Option<Arc<crate::chart::values::Loaded>>,
    /// Why a target (`database`, `api`, `ui`) could not be reached through the cluster: the checks
    /// that need it skip with this reason.
    pub unreached: BTreeMap<&'static str, String>,
}

/// How a check ended, before the engine applies the catalog's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A degraded state worth a warning whatever the check's severity.
    Warn,
    /// The check found the fault it looks for: `fail`, `warn` or `pass` by the catalog's severity.
    Finding,
    Skip,
    /// The check could not decide (a query failed, a time-out …).
    Error,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub message: String,
    pub evidence: Map<String, Value>,
    /// Which of the catalog's fixes applies (`None`: the default `fix`).
    pub fix_variant: Option<&'static str>,
    /// Extra placeholder values for the fix.
    pub vars: BTreeMap<String, String>,
    /// Where in the user's files the finding is.
    pub location: Option<crate::report::Location>,
}

impl Outcome {
    fn new(verdict: Verdict, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            message: message.into(),
            evidence: Map::new(),
            fix_variant: None,
            vars: BTreeMap::new(),
            location: None,
        }
    }
    pub fn pass(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Pass, m)
    }
    pub fn warn(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Warn, m)
    }
    pub fn finding(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Finding, m)
    }
    pub fn skip(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Skip, m)
    }
    pub fn error(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Error, m)
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Outcome {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
    pub fn fix(mut self, variant: &'static str) -> Outcome {
        self.fix_variant = Some(variant);
        self
    }
    pub fn at(mut self, location: Option<&crate::report::Location>) -> Outcome {
        if let Some(l) = location {
            self.location = Some(l.clone());
        }
        self
    }
    /// A placeholder value for the fix: one line, control characters escaped, capped.
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Outcome {
        let v = crate::untrusted::line(&value.into(), crate::untrusted::MAX_VAR);
        self.vars.insert(key.to_string(), v);
        self
    }
    /// A multi-line placeholder value: each line escaped on its own, so no outside text can add a
    /// line to the fix; at most `max` lines, then "-- … and N more".
    pub fn var_lines(mut self, key: &str, lines: &[String], max: usize) -> Outcome {
        let mut v: Vec<String> = lines
            .iter()
            .take(max)
            .map(|l| crate::untrusted::line(l, crate::untrusted::MAX_VAR))
            .collect();
        if lines.len() > max {
            v.push(format!("-- … and {} more", lines.len() - max));
        }
        self.vars.insert(key.to_string(), v.join("\n"));
        self
    }
}

pub type CheckFn = fn(Arc<Cx>) -> BoxFuture<'static, Outcome>;

/// A check's logic and the checks it needs to have passed first.
pub struct CheckDef {
    pub id: &'static str,
    pub requires: &'static [&'static str],
    pub run: CheckFn,
}

macro_rules! check {
    ($id:literal, $f:path, requires = [$($dep:literal),*]) => {
        CheckDef { id: $id, requires: &[$($dep),*], run: |cx| Box::pin($f(cx)) }
    };
}

/// Every check, in report order. A check's prerequisites come before it.
pub static REGISTRY: &[CheckDef] = &[
    check!("values.parse", values::values_parse, requires = []),
    check!(
        "values.unknown-keys",
        values::values_unknown_keys,
        requires = ["values.parse"]
    ),
    check!(
        "values.generation",
        values::values_generation,
        requires = ["values.parse"]
    ),
    check!(
        "values.external-db",
        values::values_external_db,
        requires = ["values.parse"]
    ),
    check!(
        "values.password-ignored",
        values::values_password_ignored,
        requires = ["values.parse"]
    ),
    check!(
        "values.persistent-password",
        values::values_persistent_password,
        requires = ["values.parse"]
    ),
    check!(
        "values.password-keys",
        values::values_password_keys,
        requires = ["values.parse"]
    ),
    check!(
        "values.ingress",
        values::values_ingress,
        requires = ["values.parse"]
    ),
    check!(
        "values.ui-api-url",
        values::values_ui_api_url,
        requires = ["values.parse"]
    ),
    check!(
        "values.tenant-job",
        values::values_tenant_job,
        requires = ["values.parse"]
    ),
    check!(
        "values.versions",
        values::values_versions,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.namespace",
        cluster::cluster_namespace,
        requires = []
    ),
    check!(
        "cluster.db-secret",
        cluster::cluster_db_secret,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.tls-secrets",
        cluster::cluster_tls_secrets,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.ingress-class",
        cluster::cluster_ingress_class,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.storage-class",
        cluster::cluster_storage_class,
        requires = ["values.parse"]
    ),
    check!("kube.release", kube::kube_release, requires = []),
    check!("kube.pods", kube::kube_pods, requires = ["kube.release"]),
    check!(
        "kube.db-secret",
        kube::kube_db_secret,
        requires = ["kube.release"]
    ),
    check!(
        "kube.chart-env",
        kube::kube_chart_env,
        requires = ["kube.release"]
    ),
    check!(
        "kube.images",
        kube::kube_images,
        requires = ["kube.release"]
    ),
    check!(
        "kube.tenant-job",
        kube::kube_tenant_job,
        requires = ["kube.release"]
    ),
    check!("db.reachable", db::db_reachable, requires = []),
    check!("db.password", db::db_password, requires = ["db.reachable"]),
    check!("db.version", db::db_version, requires = ["db.password"]),
    check!(
        "db.extensions",
        db::db_extensions,
        requires = ["db.password"]
    ),
    check!("db.timezone", db::db_timezone, requires = ["db.password"]),
    check!("db.schema", db::db_schema, requires = ["db.password"]),
    check!(
        "hasura.schema-owner",
        hasura::hasura_schema_owner,
        requires = ["db.password"]
    ),
    check!(
        "hasura.function-owner",
        hasura::hasura_function_owner,
        requires = ["db.password"]
    ),
    check!("api.reachable", api::api_reachable, requires = []),
    check!(
        "api.version",
        api::api_version,
        requires = ["api.reachable"]
    ),
    check!("ui.settings-json", ui::ui_settings_json, requires = []),
    check!(
        "ui.server-url",
        ui::ui_server_url,
        requires = ["ui.settings-json"]
    ),
    check!("tenant.exists", tenant::tenant_exists, requires = []),
    check!(
        "agent.tenant-errors",
        kube::agent_tenant_errors,
        requires = ["kube.release"]
    ),
    check!(
        "prefect.cli-config",
        prefect::prefect_cli_config,
        requires = []
    ),
];

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef")
            .field("id", &self.id)
            .field("requires", &self.requires)
            .finish()
    }
}

/// Quotes a PostgreSQL identifier the way `quote_ident()` does, for SQL shown in fixes.
pub fn quote_ident(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED.contains(&name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl Cx {
    /// The database probe, or a `skip` saying how to give a database.
    #[expect(
        clippy::result_large_err,
        reason = "an Outcome is what a check returns; made at most once per check"
    )]
    fn pg(&self) -> Result<&PgProbe, Outcome> {
        self.pg.as_ref().ok_or_else(|| {
            if let Some(why) = self.unreached.get("database") {
                return Outcome::skip(format!("no database: {why}"));
            }
            Outcome::skip(
                "no database given: pass --database-url or set the PG* variables (the `prefect server \
                 start` default is used only when no target is given on the command line)",
            )
        })
    }
}

/// The open database session, or the outcome to report when there is none (a prerequisite normally
/// catches that first).
async fn db_session(cx: &Cx) -> Result<Arc<crate::probes::postgres::PgSession>, Outcome> {
    cx.pg()?.session().await.map_err(|e| {
        Outcome::skip(format!("no database session: {e}")).with("connect_error", e.kind())
    })
}

/// A query failure as an `error` outcome.
fn query_failed(what: &str, e: crate::probes::postgres::QueryError) -> Outcome {
    Outcome::error(format!("could not {what}: {e}")).with("sqlstate", e.code.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_ident_matches_postgres() {
        assert_eq!(quote_ident("prefect"), "prefect");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("Prefect"), "\"Prefect\"");
        assert_eq!(quote_ident("prefect@server"), "\"prefect@server\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn prerequisites_come_first_and_exist() {
        for (i, c) in REGISTRY.iter().enumerate() {
            for dep in c.requires {
                let j = REGISTRY.iter().position(|d| d.id == *dep);
                assert!(
                    j.is_some_and(|j| j < i),
                    "{} requires {dep}, which must be listed before it",
                    c.id
                );
            }
        }
    }
}
