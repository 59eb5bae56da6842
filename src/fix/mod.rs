//! `prefect-doctor fix`: the README's fixes that are a database statement or an API call, planned from
//! a check run and applied on request.
//!
//! Each automatic fix is a planner named after its check (`db.timezone` → [`db::timezone`]), in the
//! file of its area: it reads (never writes) what the statements need (the names, quoted by the
//! server; the current owners and settings, which the journal keeps) and returns the statements and
//! the connection they need. [`apply`] runs them, one transaction per check. The catalog's
//! `automatic` text says in words what each does; a test keeps the two in step.

pub mod apply;
mod db;
mod hasura;
pub mod journal;
pub mod report;
mod tenant;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::{
    checks::Cx,
    probes::postgres::{PgSession, QueryError},
};

/// Whom a fix's statements run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Conn {
    /// The database user the checks connect as (Prefect's).
    App,
    /// The `--admin-url` user: an owner or a superuser.
    Admin,
    /// The Prefect API (Apollo): a GraphQL mutation.
    Api,
}

impl Conn {
    pub fn describe(self) -> &'static str {
        match self {
            Conn::App => "the database user the checks connect as",
            Conn::Admin => "an owner or superuser (--admin-url)",
            Conn::Api => "the Prefect API",
        }
    }
}

/// One statement of a fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// SQL, or a GraphQL mutation for [`Conn::Api`].
    pub statement: String,
    /// The mutation's variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variables: Option<Value>,
    /// What the statement replaces (the previous owner, the previous time zone), so that a change
    /// can be audited and undone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The statement that puts back what this one replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

impl Step {
    fn sql(statement: String, replaces: Option<String>) -> Step {
        Step {
            statement,
            variables: None,
            replaces,
            undo: None,
        }
    }
}

/// A check's fix: its statements, in order, and whom they run as. Every statement is idempotent, so
/// applying a plan twice is safe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub conn: Conn,
    /// Why that connection (e.g. "creating an extension needs a superuser on PostgreSQL 12").
    pub why: String,
    pub steps: Vec<Step>,
}

type Planner = for<'a> fn(&'a Cx) -> BoxFuture<'a, Result<Planned, String>>;

/// The checks with an automatic fix and their planners. `Err` from a planner: why this fix cannot
/// be made automatically here (the printed fix stands).
pub const FIXERS: &[(&str, Planner)] = &[
    ("db.extensions", |cx| Box::pin(db::extensions(cx))),
    ("db.timezone", |cx| Box::pin(db::timezone(cx))),
    ("hasura.schema-owner", |cx| {
        Box::pin(hasura::schema_owner(cx))
    }),
    ("hasura.function-owner", |cx| {
        Box::pin(hasura::function_owner(cx))
    }),
    ("tenant.exists", |cx| Box::pin(tenant::exists(cx))),
];

/// Does check `id` have an automatic fix?
pub fn is_automatic(id: &str) -> bool {
    FIXERS.iter().any(|(f, _)| *f == id)
}

/// Plans the fix of check `id` (which failed) from what the database and the API say now.
pub async fn plan(id: &str, cx: &Cx) -> Option<Result<Planned, String>> {
    let (_, planner) = FIXERS.iter().find(|(f, _)| *f == id)?;
    Some(planner(cx).await)
}

/// The app session a planner reads from, or why there is none.
async fn session(cx: &Cx) -> Result<std::sync::Arc<PgSession>, String> {
    let probe = cx
        .pg
        .get()
        .ok_or_else(|| "no database to change (see the database checks)".to_string())?;
    probe
        .session()
        .await
        .map_err(|e| format!("the database cannot be reached: {e}"))
}

fn read_failed(what: &str) -> impl FnOnce(QueryError) -> String + '_ {
    move |e| format!("could not {what}: {e}")
}
