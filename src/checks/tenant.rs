//! Tenant checks: the README's "The UI loads but the dashboard is blank".
//!
//! The API is asked first (Hasura's `tenant` root field, through Apollo), as the UI and agents see
//! it. The database is read at the same time and used only when the API gives no answer, so a dead
//! API costs no more than its one timeout.

use std::sync::Arc;

use serde_json::Value;
use tokio_postgres::error::SqlState;

use super::{
    Absent, Cx, Outcome, Reach, db_session,
    web::{self, GraphqlFailure, TENANT},
};
use crate::probes::http::Request;

/// The message Prefect's client raises when the server has no tenant.
const NO_TENANTS: &str = "has no tenants";

enum Answer {
    Tenants { count: i64, first: Option<String> },
    NoTenantError(String),
}

pub async fn tenant_exists(cx: Arc<Cx>) -> Outcome {
    // A JoinSet aborts its tasks when dropped: the database read stops if the API answers first.
    let mut sql = tokio::task::JoinSet::new();
    {
        let cx = cx.clone();
        sql.spawn(async move { from_sql(&cx).await });
    }
    let api = from_api(&cx).await;
    let (api_url, api_error) = match api {
        Ok((url, Answer::Tenants { count, first })) => {
            return judge(count, first, "api", &format!("from the API at {url}"));
        }
        Ok((url, Answer::NoTenantError(message))) => {
            return Outcome::finding(format!(
                "the API at {url} says there is no tenant: {message:?}"
            ))
            .with("path", "api")
            .with("tenants", 0);
        }
        Err((url, e)) => (url, e),
    };
    let sql = match sql.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Outcome::error(format!("the database read stopped: {e}"))),
        None => Err(Outcome::error("the database read was not started")),
    };
    let api_note = match &api_url {
        Some(u) => Some(format!("the API at {u} gave no answer: {api_error}")),
        None if cx.api.is_ready() => Some(api_error.clone()),
        None => None,
    };
    match (sql, api_note) {
        (Ok((count, first, database)), note) => {
            let whence = match note {
                Some(n) => format!("from database {database:?}; {n}"),
                None => format!("from database {database:?}"),
            };
            let o = judge(count, first, "sql", &whence);
            if cx.api.is_ready() {
                o.with("api_error", api_error)
            } else {
                o
            }
        }
        (Err(_), None) if !cx.pg.is_ready() => match &cx.pg {
            Reach::Absent(Absent::Unreached(why)) => {
                Outcome::skip(format!("no API or database: {why}"))
            }
            _ => Outcome::skip(
                "no API or database given: pass --api-url, --ui-url or --database-url",
            ),
        },
        (Err(o), None) => Outcome::skip(format!("the database cannot be read: {}", o.message)),
        (Err(_), Some(note)) if !cx.pg.is_ready() => Outcome::skip(note),
        (Err(o), Some(note)) => Outcome::skip(format!(
            "cannot tell: {note}; and the database cannot be read either: {}",
            o.message
        ))
        .with("api_error", api_error),
    }
}

fn judge(count: i64, first: Option<String>, path: &str, whence: &str) -> Outcome {
    let first_shown = first.clone().unwrap_or_default();
    let o = if count == 0 {
        Outcome::finding(format!("no tenant ({whence})"))
    } else if path == "api" {
        // The API is asked for one tenant only.
        Outcome::pass(format!(
            "a tenant exists (first: {first_shown:?}), read {whence}"
        ))
    } else {
        Outcome::pass(format!(
            "{count} tenant{} (first: {first_shown:?}), read {whence}",
            if count == 1 { "" } else { "s" }
        ))
    };
    o.with("path", path)
        .with("tenants", count)
        .with("first_slug", first)
}

type ApiResult = Result<(String, Answer), (Option<String>, String)>;

async fn from_api(cx: &Cx) -> ApiResult {
    let (url, _) = web::api_url(cx).await.map_err(|o| (None, o.message))?;
    let (_, data) = web::graphql(cx, &Request::graphql(&url, TENANT)).await;
    let shown = url.to_string();
    match data {
        Ok(d) => match d.get("tenant") {
            Some(Value::Array(list)) => Ok((
                shown,
                Answer::Tenants {
                    count: i64::try_from(list.len()).unwrap_or(i64::MAX),
                    first: list
                        .first()
                        .and_then(|t| t.get("slug"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
            )),
            _ => Err((
                Some(shown),
                format!("its answer has no tenant list: {}", Value::Object(d)),
            )),
        },
        Err(GraphqlFailure::Answer(p))
            if p.first_error().is_some_and(|m| m.contains(NO_TENANTS)) =>
        {
            Ok((
                shown,
                Answer::NoTenantError(p.first_error().unwrap_or_default().to_string()),
            ))
        }
        Err(f) => Err((Some(shown), f.to_string())),
    }
}

async fn from_sql(cx: &Cx) -> Result<(i64, Option<String>, String), Outcome> {
    let s = db_session(cx).await?;
    let rows = s
        .query(
            "SELECT (SELECT count(*) FROM public.tenant), \
                    (SELECT slug::text FROM public.tenant ORDER BY created LIMIT 1)",
            &[],
        )
        .await
        .map_err(|e| {
            if e.code.as_deref() == Some(SqlState::UNDEFINED_TABLE.code()) {
                Outcome::skip("it has no public.tenant table (see db.schema)")
            } else {
                Outcome::error(format!("could not read public.tenant: {e}"))
            }
        })?;
    let (count, slug) = rows
        .first()
        .map(|r| {
            (
                r.try_get::<_, i64>(0).unwrap_or(0),
                r.try_get::<_, Option<String>>(1).ok().flatten(),
            )
        })
        .unwrap_or((0, None));
    Ok((count, slug, s.database.clone()))
}
