//! User checks (`src/user_checks/` loads them): the probe's answer bound to CEL variables, `expect`
//! judged, `message` for the finding's words.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Cx, Outcome, db_session, web};
use crate::{
    probes::http::Request,
    user_checks::{HttpTarget, Probe, UserCheck},
};

pub use crate::user_checks::sql::MAX_ROWS;
/// Rows kept in the result's evidence.
const EVIDENCE_ROWS: usize = 20;

pub async fn run(check: &'static UserCheck, cx: Arc<Cx>) -> Outcome {
    let (vars, evidence, capped) = match &check.probe {
        Probe::Sql(query) => {
            // The run's session first (its failure is said the usual way), then the user checks'
            // own session: a user query never shares the built-in checks' session.
            if let Err(o) = db_session(&cx).await {
                return o;
            }
            let s = match cx.pg() {
                Ok(pg) => match pg.isolated().await {
                    Ok(s) => s,
                    Err(e) => return Outcome::skip(format!("no database session: {e}")),
                },
                Err(o) => return o,
            };
            let text = match s.read_only_rows(query, cx.timeout, MAX_ROWS).await {
                Ok(t) => t,
                Err(e) => {
                    let read_only = e.code.as_deref() == Some("25006");
                    return Outcome::error(if read_only {
                        format!("user checks may only read, and PostgreSQL refused: {e}")
                    } else {
                        format!("the query failed: {e}")
                    })
                    .with("sqlstate", e.code.unwrap_or_default());
                }
            };
            let mut rows: Vec<Value> = match serde_json::from_str(&text) {
                Ok(Value::Array(rows)) => rows,
                _ => return Outcome::error("the query's rows did not come back as JSON"),
            };
            let capped = rows.len() > MAX_ROWS;
            rows.truncate(MAX_ROWS);
            let count = rows.len();
            let evidence = json!({
                "rows": rows.iter().take(EVIDENCE_ROWS).cloned().collect::<Vec<_>>(),
                "row_count": count,
            });
            (
                vec![("rows", Value::Array(rows)), ("row_count", json!(count))],
                evidence,
                capped,
            )
        }
        Probe::Graphql(query) => {
            let (url, _) = match web::api_url(&cx).await {
                Ok(u) => u,
                Err(o) => return o,
            };
            let resp = match cx.http.fetch(&Request::graphql(&url, query)).await {
                Ok(r) => r,
                Err(f) => return Outcome::error(format!("cannot reach the API at {url}: {f}")),
            };
            let body: Value = match serde_json::from_slice(&resp.body) {
                Ok(v) => v,
                Err(_) => {
                    return Outcome::error(format!(
                        "the API at {url} answered {} without JSON",
                        resp.status_text()
                    ));
                }
            };
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            let errors = body.get("errors").cloned().unwrap_or(json!([]));
            (
                vec![("data", data), ("errors", errors.clone())],
                json!({"errors": errors}),
                false,
            )
        }
        Probe::Http { target, path } => {
            let base = match target {
                HttpTarget::Api => match web::api_url(&cx).await {
                    Ok((u, _)) => u,
                    Err(o) => return o,
                },
                HttpTarget::Ui => match cx.ui.or_skip("UI", "no UI given: pass --ui-url") {
                    Ok(u) => u.url.clone(),
                    Err(o) => return o,
                },
            };
            let url = match base.join(path) {
                Ok(u) => u,
                Err(e) => return Outcome::error(format!("{path:?} relative to {base}: {e}")),
            };
            let resp = match cx.http.fetch(&Request::get(&url)).await {
                Ok(r) => r,
                Err(f) => return Outcome::error(format!("cannot GET {url}: {f}")),
            };
            let headers: serde_json::Map<String, Value> = resp
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        json!(String::from_utf8_lossy(v.as_bytes())),
                    )
                })
                .collect();
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            let parsed = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
            (
                vec![
                    ("status", json!(resp.status)),
                    ("headers", Value::Object(headers)),
                    ("body", json!(body)),
                    ("json", parsed),
                ],
                json!({"url": url.as_str(), "status": resp.status}),
                false,
            )
        }
        Probe::Kube {
            resource,
            name,
            selector,
        } => {
            let (k, f) = match super::cluster_cx::release(&cx) {
                Ok(x) => x,
                Err(o) => return o,
            };
            let ns = &f.release.namespace;
            // The release's own objects: its instance label is always part of the selector.
            let release_label = format!("app.kubernetes.io/instance={}", f.release.name);
            let selector = match selector {
                Some(s) if !s.trim().is_empty() => format!("{s},{release_label}"),
                _ => release_label,
            };
            let objects = match k
                .probe
                .read_any(ns, resource, name.as_deref(), &selector)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    return super::kube_failed(&format!("read {resource} in namespace {ns}"), &e);
                }
            };
            let count = objects.len();
            (
                vec![("objects", Value::Array(objects))],
                json!({"objects": count, "namespace": ns}),
                false,
            )
        }
        Probe::Values => {
            let v = match cx.values.or_skip(
                "values",
                "no values to judge (a [values] check runs in preflight)",
            ) {
                Ok(v) => v,
                Err(o) => return o,
            };
            (vec![("values", v.values.clone())], json!({}), false)
        }
    };
    let o = judge(check, vars, capped, cx.timeout).await;
    match evidence {
        Value::Object(m) if !m.is_empty() => m.into_iter().fold(o, |o, (k, v)| o.with(&k, v)),
        _ => o,
    }
}

/// `expect` on `vars` within the CEL budget (`src/user_checks/cel_budget.rs`): the answer given
/// to CEL is bounded, and the evaluation runs in a child process with a memory limit that is
/// killed at the check's deadline. true → pass, false → the finding (with `message`), an error →
/// `error`.
async fn judge(
    check: &'static UserCheck,
    vars: Vec<(&'static str, Value)>,
    capped: bool,
    deadline: std::time::Duration,
) -> Outcome {
    use crate::user_checks::cel_budget::{Job, MAX_INPUT_BYTES, Verdict, evaluate};
    let size: usize = vars
        .iter()
        .map(|(_, v)| serde_json::to_string(v).map_or(usize::MAX, |t| t.len()))
        .fold(0, usize::saturating_add);
    if size > MAX_INPUT_BYTES {
        return Outcome::error(format!(
            "the answer is {} as JSON, more than the {} a check's CEL is given; select fewer or \
             smaller columns",
            crate::config::human_size(size as u64),
            crate::config::human_size(MAX_INPUT_BYTES as u64)
        ));
    }
    let job = Job {
        expect: check.expect_text.clone(),
        message: check.message_text.clone(),
        vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        capped,
    };
    match evaluate(&job, deadline).await {
        Ok(Verdict::Pass(t)) => Outcome::pass(t),
        Ok(Verdict::Finding(t)) => Outcome::finding(t),
        Ok(Verdict::Error(t)) => Outcome::error(t),
        Err(why) => Outcome::error(format!("expect ({}): {why}", check.expect_text)),
    }
}
