//! The context a check runs in.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    probes::{http::HttpProbe, postgres::PgProbe, prefect_config::PrefectConfig},
    targets::{ApiTarget, UiTarget},
};

use super::{Outcome, cluster_cx::KubeCx};

/// What a check sees: the shared probes, the targets and the names discovered so far. Each part of
/// the install is [`Reach`]: ready, or absent with the reason its checks skip with.
pub struct Cx {
    /// The database (see [`crate::targets`]).
    pub pg: Reach<PgProbe>,
    pub http: HttpProbe,
    pub api: Reach<ApiTarget>,
    pub ui: Reach<UiTarget>,
    /// The local prefect CLI's configuration (absent when a bundle is replayed: it is not collected).
    pub prefect: Reach<std::sync::Arc<PrefectConfig>>,
    /// The database user Hasura connects as (the chart's Hasura uses the Prefect user).
    pub hasura_user: String,
    /// Values for the catalog's `{placeholders}`.
    pub vars: BTreeMap<String, String>,
    /// The cluster and the Helm release, when `check` looks at Kubernetes.
    pub kube: Reach<Arc<KubeCx>>,
    /// The cluster a preflight looks at (no release yet).
    pub cluster: Reach<crate::probes::kube::KubeProbe>,
    /// The values a preflight judges.
    pub values: Reach<Arc<crate::chart::values::Loaded>>,
    /// Bytes of Prefect's largest tables past which `db.size` warns (`.prefect-doctor.toml`).
    pub db_size_warning: u64,
    /// Each check's deadline (`--timeout`): a user check's statement_timeout.
    pub timeout: std::time::Duration,
}

/// Why a part of the install is not there to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Absent {
    /// Nothing named it (no flag, no configuration, not this command's business).
    NotGiven,
    /// It was named but could not be reached (through the cluster, a secret …): the reason.
    Unreached(String),
}

/// A part of the install a run may look at.
#[derive(Debug, Clone)]
pub enum Reach<T> {
    Ready(T),
    Absent(Absent),
}

impl<T> Reach<T> {
    /// `Ready` for `Some`, else not given.
    pub fn given(v: Option<T>) -> Reach<T> {
        match v {
            Some(v) => Reach::Ready(v),
            None => Reach::Absent(Absent::NotGiven),
        }
    }
    /// `Ready` for `Some`; else unreached for `why`, else not given.
    pub fn of(v: Option<T>, why: Option<String>) -> Reach<T> {
        match (v, why) {
            (Some(v), _) => Reach::Ready(v),
            (None, Some(why)) => Reach::unreached(why),
            (None, None) => Reach::Absent(Absent::NotGiven),
        }
    }
    pub fn unreached(why: impl Into<String>) -> Reach<T> {
        Reach::Absent(Absent::Unreached(why.into()))
    }
    pub fn get(&self) -> Option<&T> {
        match self {
            Reach::Ready(v) => Some(v),
            Reach::Absent(_) => None,
        }
    }
    pub fn is_ready(&self) -> bool {
        matches!(self, Reach::Ready(_))
    }
    /// The part, or the `skip` its checks report: `no {what}: {why}` when it could not be reached,
    /// `not_given` when nothing named it.
    #[expect(
        clippy::result_large_err,
        reason = "an Outcome is what a check returns; made at most once per check"
    )]
    pub fn or_skip(&self, what: &str, not_given: &str) -> Result<&T, Outcome> {
        match self {
            Reach::Ready(v) => Ok(v),
            Reach::Absent(Absent::Unreached(why)) => {
                Err(Outcome::skip(format!("no {what}: {why}")))
            }
            Reach::Absent(Absent::NotGiven) => Err(Outcome::skip(not_given)),
        }
    }
}

impl Cx {
    /// The database probe, or a `skip` saying how to give a database.
    #[expect(
        clippy::result_large_err,
        reason = "an Outcome is what a check returns; made at most once per check"
    )]
    pub(super) fn pg(&self) -> Result<&PgProbe, Outcome> {
        self.pg.or_skip(
            "database",
            "no database given: pass --database-url or set the PG* variables (the `prefect server \
             start` default is used only when no target is given on the command line)",
        )
    }
}

/// The open database session, or the outcome to report when there is none (a prerequisite normally
/// catches that first).
pub(super) async fn db_session(
    cx: &Cx,
) -> Result<Arc<crate::probes::postgres::PgSession>, Outcome> {
    cx.pg()?.session().await.map_err(|e| {
        Outcome::skip(format!("no database session: {e}")).with("connect_error", e.kind())
    })
}

/// A query failure as an `error` outcome.
pub(super) fn query_failed(what: &str, e: crate::probes::postgres::QueryError) -> Outcome {
    let code = e.code.clone().unwrap_or_default();
    // A missing table or a schema the user may not read is another check's finding, with its
    // cause and fix: this one says it could not look, and where the cause is judged.
    let behind = match code.as_str() {
        // undefined_table, undefined_column, undefined_function
        "42P01" | "42703" | "42883" => Some("db.schema judges Prefect's schema"),
        // insufficient_privilege on Hasura's catalog
        "42501" if e.message.contains("hdb_catalog") => {
            Some("hasura.schema-owner judges who owns Hasura's catalog")
        }
        _ => None,
    };
    match behind {
        Some(why) => Outcome::skip(format!("could not {what}: {e}; {why}")),
        None => Outcome::error(format!("could not {what}: {e}")),
    }
    .with("sqlstate", code)
}
