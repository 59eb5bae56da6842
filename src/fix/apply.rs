//! Runs a check's planned statements: SQL in one transaction (all or nothing, under the run's
//! deadline per statement), or the API's mutation.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::Step;
use crate::{
    checks::{Cx, GraphqlFailure},
    probes::{http::Request, postgres::PgSession},
};

/// What became of a check's statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Applied {
    /// Every statement ran and was committed.
    Committed,
    /// Statement `failed` (0-based) was refused; the transaction was rolled back, nothing changed.
    RolledBack { failed: usize, error: String },
    /// Nothing was sent (no connection, or the connection is not the right one).
    NotRun { error: String },
    /// The connection was lost or timed out after the statements were sent: whether they took effect
    /// is not known (the re-check says).
    Unknown { error: String },
}

impl Applied {
    /// The journal's word for step `i` of a check that ended so.
    pub fn step_result(&self, i: usize) -> &'static str {
        match self {
            Applied::Committed => "applied",
            Applied::RolledBack { failed, .. } if *failed == i => "failed",
            Applied::RolledBack { failed, .. } if i < *failed => "rolled back",
            Applied::RolledBack { .. } | Applied::NotRun { .. } => "not run",
            Applied::Unknown { .. } => "unknown",
        }
    }
}

/// A deadline on one exchange with the server.
async fn within<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(format!(
            "no answer within {}",
            crate::untrusted::duration(timeout)
        )),
        Ok(Err(e)) => Err(crate::probes::postgres::QueryError::from(e).message),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Runs `steps` in one transaction on `session`. The server's own `statement_timeout` and
/// `lock_timeout` bound each statement (a lock held by a running Hasura is waited for no longer
/// than the deadline), and the client gives up a little later.
pub async fn sql(session: &PgSession, steps: &[Step], timeout: Duration) -> Applied {
    // A lock wait is said as such: its limit comes first, the statement's a little later, the
    // client's last.
    let ms = timeout.as_millis().clamp(1, 600_000);
    let statement_ms = ms + crate::engine::GRACE.as_millis() / 2;
    let client_deadline = timeout + crate::engine::GRACE;
    let Some(c) = session.client() else {
        return Applied::NotRun {
            error: "no connection to the database".to_string(),
        };
    };
    if let Err(error) = within(
        client_deadline,
        c.batch_execute(&format!(
            "BEGIN; SET LOCAL statement_timeout = {statement_ms}; SET LOCAL lock_timeout = {ms}"
        )),
    )
    .await
    {
        return Applied::NotRun {
            error: format!("could not start a transaction: {error}"),
        };
    }
    for (i, step) in steps.iter().enumerate() {
        if let Err(error) = within(client_deadline, c.batch_execute(&step.statement)).await {
            // A refused statement leaves the transaction aborted: roll it back. When even that gets
            // no answer, the session is dropped with the probe and the server rolls back.
            return match within(client_deadline, c.batch_execute("ROLLBACK")).await {
                Ok(()) => Applied::RolledBack { failed: i, error },
                Err(_) if c.is_closed() => Applied::RolledBack { failed: i, error },
                Err(e) => Applied::Unknown {
                    error: format!("{error}; and the rollback got no answer: {e}"),
                },
            };
        }
    }
    match within(client_deadline, c.batch_execute("COMMIT")).await {
        Ok(()) => Applied::Committed,
        Err(error) => Applied::Unknown {
            error: format!("the COMMIT got no answer: {error}"),
        },
    }
}

/// Sends the API's mutation (one step) and reads its answer.
pub async fn api(cx: &Cx, step: &Step) -> Applied {
    let url = match crate::checks::api_url(cx).await {
        Ok((u, _)) => u,
        Err(o) => {
            return Applied::NotRun {
                error: format!("no API to send it to: {}", o.message),
            };
        }
    };
    let req = Request::graphql_with(
        &url,
        &step.statement,
        step.variables.as_ref().unwrap_or(&Value::Null),
    );
    let (_, data) = crate::checks::graphql(cx, &req).await;
    match data {
        Ok(d) if d.get("create_tenant").is_some_and(|t| !t.is_null()) => Applied::Committed,
        Ok(d) => Applied::RolledBack {
            failed: 0,
            error: format!(
                "the API at {url} answered without a tenant: {}",
                crate::untrusted::cap(&Value::Object(d).to_string(), 300)
            ),
        },
        Err(GraphqlFailure::Answer(p)) => Applied::RolledBack {
            failed: 0,
            error: format!("the API at {url} refused it: {p}"),
        },
        // Sent, and no answer: whether the tenant was created is for the re-check to say.
        Err(f) => Applied::Unknown {
            error: format!("the API at {url} gave no answer: {f}"),
        },
    }
}
