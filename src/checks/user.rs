//! User checks (`src/user_checks/` loads them): the probe's answer bound to CEL variables, `expect`
//! judged, `message` for the finding's words.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Cx, Outcome, db_session, web};
use crate::{
    probes::http::Request,
    user_checks::{HttpTarget, Probe, UserCheck},
};

/// Rows a query may return; past this the message says the cap was hit.
pub const MAX_ROWS: usize = 1000;
/// Rows kept in the result's evidence.
const EVIDENCE_ROWS: usize = 20;

pub async fn run(check: &'static UserCheck, cx: Arc<Cx>) -> Outcome {
    let (vars, evidence, capped) = match &check.probe {
        Probe::Sql(query) => {
            let s = match db_session(&cx).await {
                Ok(s) => s,
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
    let o = judge(check, &vars, capped);
    match evidence {
        Value::Object(m) if !m.is_empty() => m.into_iter().fold(o, |o, (k, v)| o.with(&k, v)),
        _ => o,
    }
}

/// `expect` on `vars`: true → pass, false → the finding (with `message`), an error → `error`.
fn judge(check: &UserCheck, vars: &[(&str, Value)], capped: bool) -> Outcome {
    let mut ctx = cel::Context::default();
    for (name, value) in vars {
        match cel::to_value(value) {
            Ok(v) => ctx.add_variable_from_value(*name, v),
            Err(e) => return Outcome::error(format!("{name} cannot be given to CEL: {e}")),
        }
    }
    let cap_note = if capped {
        format!(" (only the first {MAX_ROWS} rows were read)")
    } else {
        String::new()
    };
    match check.expect.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => {
            Outcome::pass(format!("{} holds{cap_note}", check.expect_text))
        }
        Ok(cel::Value::Bool(false)) => {
            let text = match &check.message {
                Some(m) => match m.execute(&ctx) {
                    Ok(cel::Value::String(s)) => s.to_string(),
                    Ok(other) => format!("{other:?}"),
                    Err(e) => format!(
                        "{} does not hold (and message failed: {e})",
                        check.expect_text
                    ),
                },
                None => format!("{} does not hold", check.expect_text),
            };
            Outcome::finding(format!("{text}{cap_note}"))
        }
        Ok(other) => Outcome::error(format!(
            "expect gave {other:?}, not true or false: write a condition ({})",
            check.expect_text
        )),
        Err(e) => Outcome::error(format!(
            "expect could not be evaluated: {e}{} ({})",
            missing_key_hint(&e.to_string(), vars),
            check.expect_text
        )),
    }
}

/// For CEL's `No such key: x`: the names that are there to use, which the writer of `expect`
/// cannot see (a query's columns, an answer's top-level keys).
fn missing_key_hint(error: &str, vars: &[(&str, Value)]) -> String {
    if !error.contains("No such key") {
        return String::new();
    }
    let keys = |v: &Value| -> Vec<String> {
        match v {
            Value::Object(m) => m.keys().take(50).map(|k| format!("{k:?}")).collect(),
            _ => Vec::new(),
        }
    };
    let mut said = Vec::new();
    for (name, value) in vars {
        match (*name, value) {
            ("rows", Value::Array(rows)) => said.push(match rows.first() {
                Some(row) => format!("each row has the columns {}", keys(row).join(", ")),
                None => "the query returned no rows, so rows[0] has no columns".to_string(),
            }),
            (name, v @ Value::Object(_)) => {
                said.push(format!("{name} has the keys {}", keys(v).join(", ")))
            }
            _ => {}
        }
    }
    if said.is_empty() {
        String::new()
    } else {
        format!(" ({})", said.join("; "))
    }
}
