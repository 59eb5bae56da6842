//! The bundle's files for people (the checks re-analyse from the tape, not from these): the release's
//! values, the pods and recent events of its namespace, the last lines of each component's log, and
//! the database's facts. Each is read with the run's probes (reads only) and bounded; what could not
//! be read is said in the manifest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::{Value, json};

use super::LeftOut;
use crate::{checks::Cx, targets::release::Discovery};

/// Lines of each container's log.
pub const LOG_LINES: i64 = 500;
/// The most recent events kept.
pub const MAX_EVENTS: usize = 200;
/// The most containers whose logs are read.
pub const MAX_LOGS: usize = 40;

/// One file for people.
pub struct File {
    pub name: String,
    pub text: String,
    /// What it holds, for the manifest.
    pub what: String,
    /// A log: cut first when the bundle would pass `--max-size`.
    pub log: bool,
}

/// Collects the files; returns them and what could not be collected.
pub async fn collect(cx: &Cx) -> (Vec<File>, Vec<LeftOut>) {
    let mut files = Vec::new();
    let mut left = Vec::new();
    match database(cx).await {
        Ok(facts) => files.push(File {
            name: "database/facts.json".into(),
            text: pretty(&facts),
            what: "the database's facts: server version, extensions, settings, schema owners, \
                   the largest tables, the alembic revision"
                .into(),
            log: false,
        }),
        Err(why) => left.push(LeftOut {
            what: "the database's facts".into(),
            why,
        }),
    }
    let found = cx.kube.get().and_then(|k| match k.discovery.as_ref() {
        Discovery::Release(f) => Some((k.probe.clone(), f.clone())),
        _ => None,
    });
    let Some((probe, found)) = found else {
        left.push(LeftOut {
            what: "the release's values, pods, events and logs".into(),
            why: "the run found no Helm release in a cluster".into(),
        });
        return (files, left);
    };
    let r = &found.release;
    let masked = |v: &Value| pretty(&mask_secret_values(v.clone()));
    files.push(File {
        name: "release/user-values.json".into(),
        text: masked(&r.user_values),
        what: format!(
            "the values given to release {} (revision {}), password-named ones masked",
            r.name, r.revision
        ),
        log: false,
    });
    files.push(File {
        name: "release/values.json".into(),
        text: masked(&r.values),
        what: "the release's merged values (the chart's defaults and the user's), password-named \
               ones masked"
            .into(),
        log: false,
    });
    let ns = r.namespace.as_str();
    let selector = format!("app.kubernetes.io/instance={}", r.name);
    match probe.list::<Pod>(Some(ns), &selector).await {
        Ok(pods) => {
            let summary: Vec<Value> = pods.iter().map(pod_summary).collect();
            files.push(File {
                name: "cluster/pods.json".into(),
                text: pretty(&Value::Array(summary)),
                what: format!(
                    "the release's {} pods: phase, readiness, node, each container's state and \
                     restarts",
                    pods.len()
                ),
                log: false,
            });
            let mut read = 0;
            for p in &pods {
                let name = p.metadata.name.clone().unwrap_or_default();
                let containers: Vec<String> = p
                    .spec
                    .as_ref()
                    .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default();
                for c in containers {
                    if read >= MAX_LOGS {
                        break;
                    }
                    read += 1;
                    match probe.logs(ns, &name, &c, false, LOG_LINES).await {
                        Ok(text) => files.push(File {
                            name: format!("logs/{}/{}.log", safe(&name), safe(&c)),
                            text,
                            what: format!("the last {LOG_LINES} lines of {name}/{c}'s log"),
                            log: true,
                        }),
                        Err(e) => left.push(LeftOut {
                            what: format!("the log of {name}/{c}"),
                            why: e.to_string(),
                        }),
                    }
                }
            }
        }
        Err(e) => left.push(LeftOut {
            what: format!("the pods and logs of release {}", r.name),
            why: e.to_string(),
        }),
    }
    match probe.list::<Event>(Some(ns), "").await {
        Ok(mut events) => {
            let at = |e: &Event| {
                e.last_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                    .unwrap_or_default()
            };
            events.sort_by_key(|e| std::cmp::Reverse(at(e)));
            let list: Vec<Value> = events
                .iter()
                .take(MAX_EVENTS)
                .map(|e| {
                    json!({
                        "time": at(e),
                        "type": e.type_,
                        "reason": e.reason,
                        "object": format!(
                            "{}/{}",
                            e.involved_object.kind.clone().unwrap_or_default(),
                            e.involved_object.name.clone().unwrap_or_default()
                        ),
                        "count": e.count,
                        "message": e.message,
                    })
                })
                .collect();
            let what = format!(
                "the {} most recent of the namespace's {} events",
                list.len(),
                events.len()
            );
            files.push(File {
                name: "cluster/events.json".into(),
                text: pretty(&Value::Array(list)),
                what,
                log: false,
            });
        }
        Err(e) => left.push(LeftOut {
            what: format!("the events of namespace {ns}"),
            why: e.to_string(),
        }),
    }
    (files, left)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A name as a path part: no separators, no dots at the start.
fn safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    t.trim_start_matches('.').to_string()
}

/// The values of password-named keys as `****` (without recursion).
fn mask_secret_values(v: Value) -> Value {
    let mut root = v;
    let mut stack: Vec<&mut Value> = vec![&mut root];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if crate::redact::is_secret_key(k) && (v.is_string() || v.is_number()) {
                        *v = Value::String(crate::redact::MASK.to_string());
                    } else {
                        stack.push(v);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    root
}

fn pod_summary(p: &Pod) -> Value {
    let status = p.status.as_ref();
    let containers: Vec<Value> = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = c.state.as_ref().map(|s| {
                        if let Some(w) = &s.waiting {
                            json!({"waiting": w.reason, "message": w.message})
                        } else if let Some(t) = &s.terminated {
                            json!({"terminated": t.reason, "exit_code": t.exit_code})
                        } else {
                            json!("running")
                        }
                    });
                    json!({
                        "name": c.name, "image": c.image, "ready": c.ready,
                        "restarts": c.restart_count, "state": state,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": p.metadata.name,
        "phase": status.and_then(|s| s.phase.clone()),
        "ready": crate::targets::release::pod_ready(p),
        "node": p.spec.as_ref().and_then(|s| s.node_name.clone()),
        "containers": containers,
    })
}

/// The database's facts: version, extensions, settings, schema owners, the largest tables, the
/// alembic revision. Each part that cannot be read says why in its place.
async fn database(cx: &Cx) -> Result<Value, String> {
    let probe = cx
        .pg
        .get()
        .ok_or_else(|| "the run had no database".to_string())?;
    let s = probe
        .session()
        .await
        .map_err(|e| format!("the database could not be reached: {e}"))?;
    let mut facts: BTreeMap<&str, Value> = BTreeMap::new();
    facts.insert(
        "server",
        json!({"version": s.server_version, "version_num": s.server_version_num,
               "user": s.current_user, "database": s.database, "tls": s.tls}),
    );
    let queries: [(&str, &str); 5] = [
        (
            "extensions",
            "SELECT extname::text, extversion::text FROM pg_catalog.pg_extension ORDER BY 1",
        ),
        (
            "settings",
            "SELECT name::text, setting::text, source::text FROM pg_catalog.pg_settings \
             WHERE name IN ('TimeZone', 'max_connections', 'shared_buffers', 'statement_timeout', \
             'idle_in_transaction_session_timeout', 'ssl', 'server_encoding') ORDER BY 1",
        ),
        (
            "schemas",
            "SELECT n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text \
             FROM pg_catalog.pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%' \
             AND n.nspname <> 'information_schema' ORDER BY 1",
        ),
        (
            "largest_tables",
            "SELECT n.nspname::text || '.' || c.relname::text, \
                    pg_catalog.pg_total_relation_size(c.oid)::int8 \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 2 DESC LIMIT 20",
        ),
        (
            "alembic_revision",
            "SELECT version_num::text FROM public.alembic_version",
        ),
    ];
    for (name, sql) in queries {
        let v = match s.query(sql, &[]).await {
            Ok(rows) => Value::Array(
                rows.iter()
                    .map(|r| {
                        Value::Array(
                            r.0.iter()
                                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
            Err(e) => json!({"error": e.message}),
        };
        facts.insert(name, v);
    }
    Ok(json!(facts))
}
