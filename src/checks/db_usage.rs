//! The database in use: connections against the limits (`db.connections`) and the size of the tables
//! Prefect grows without bound (`db.size`).

use std::sync::Arc;

use super::{Cx, Outcome, db_session, query_failed};

/// Connections in use from which `db.connections` warns, and from which it fails (percent).
const CONNECTIONS_WARN: i64 = 80;
const CONNECTIONS_FAIL: i64 = 95;

pub async fn db_connections(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // pg_stat_activity read once: each view a fresh backend plans costs it catalog reads (the two
    // counts and the top five as three scans of the view cost the server twice this).
    let (limits, top) = futures::join!(
        s.query(
            "SELECT current_setting('max_connections')::int4, \
                    current_setting('superuser_reserved_connections')::int4, \
                    r.rolconnlimit, r.rolsuper \
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[]
        ),
        s.query(
            "SELECT coalesce(usename::text, ''), coalesce(application_name, ''), count(*)::int4, \
                    (sum(count(*)) OVER ())::int4, \
                    coalesce(sum(count(*)) FILTER (WHERE coalesce(usename::text, '') = current_user::text) OVER (), 0)::int4 \
             FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend' \
             GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 5",
            &[]
        ),
    );
    let (limits, top) = match (limits, top) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(e), _) | (_, Err(e)) => return query_failed("count the connections in use", e),
    };
    let Some(l) = limits.first() else {
        return Outcome::error("the connection counts came back empty");
    };
    let get = |i: usize| i64::from(l.try_get::<_, i32>(i).unwrap_or(0));
    let (max, reserved, role_limit) = (get(0), get(1), get(2));
    let superuser: bool = l.try_get(3).unwrap_or(false);
    // Every row carries the totals; no row means no client backend, which cannot be (ours is one).
    let total = |i: usize| {
        top.first()
            .map_or(0, |r| i64::from(r.try_get::<_, i32>(i).unwrap_or(0)))
    };
    let (used, role_used) = (total(3), total(4));
    // What this user may open: superusers also get the reserved slots.
    let server_max = if superuser {
        max
    } else {
        (max - reserved).max(1)
    };
    let server_pct = used * 100 / server_max;
    let role_pct = (role_limit > 0).then(|| role_used * 100 / role_limit);
    let users: Vec<String> = top
        .iter()
        .map(|r| {
            let user: String = r.try_get(0).unwrap_or_default();
            let app: String = r.try_get(1).unwrap_or_default();
            let n: i32 = r.try_get(2).unwrap_or(0);
            if app.is_empty() {
                format!("{user} ({n})")
            } else {
                format!("{user}/{app} ({n})")
            }
        })
        .collect();
    let user = &s.current_user;
    let role_worse = role_pct.is_some_and(|p| p > server_pct);
    let (pct, what) = match role_pct {
        Some(p) if role_worse => (
            p,
            format!("{role_used} of the {role_limit} connections role {user:?} may open"),
        ),
        _ => (
            server_pct,
            format!(
                "{used} of the {server_max} connections the server allows{}",
                if superuser {
                    String::new()
                } else {
                    format!(" ({max} less {reserved} kept for superusers)")
                }
            ),
        ),
    };
    let message = format!(
        "{what} are in use ({pct}%); the most by {}",
        crate::untrusted::list(&users, 5)
    );
    let o = if pct >= CONNECTIONS_FAIL {
        Outcome::finding(message)
    } else if pct >= CONNECTIONS_WARN {
        Outcome::warn(message)
    } else {
        Outcome::pass(format!("{what} are in use ({pct}%)"))
    };
    let o = if role_worse && pct >= CONNECTIONS_WARN {
        o.fix("role_limit")
    } else {
        o
    };
    o.with("max_connections", max)
        .with("superuser_reserved_connections", reserved)
        .with("in_use", used)
        .with("role_connection_limit", role_limit)
        .with("role_in_use", role_used)
        .with("top", users)
}

/// The tables Prefect Server grows without bound.
const GROWING_TABLES: [&str; 5] = [
    "log",
    "flow_run_state",
    "task_run_state",
    "task_run",
    "flow_run",
];

pub async fn db_size(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let names: Vec<String> = GROWING_TABLES.iter().map(|t| t.to_string()).collect();
    let rows = match s
        .query(
            "SELECT c.relname::text, pg_catalog.pg_total_relation_size(c.oid)::int8, \
                    pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size(c.oid)) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1) \
             ORDER BY 2 DESC",
            &[&names],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("measure Prefect's tables", e),
    };
    if rows.is_empty() {
        return Outcome::skip(format!(
            "database {:?} has none of Prefect's run and log tables (see db.schema)",
            s.database
        ));
    }
    let tables: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get(0).unwrap_or_default(),
                r.try_get(1).unwrap_or(0),
                r.try_get(2).unwrap_or_default(),
            )
        })
        .collect();
    let total: i64 = tables.iter().map(|(_, b, _)| *b).sum();
    let limit = cx.db_size_warning;
    let shown = crate::config::human_size;
    let list = tables
        .iter()
        .map(|(t, b, _)| format!("{t} {}", shown(u64::try_from(*b).unwrap_or(0))))
        .collect::<Vec<_>>()
        .join(", ");
    let total_u = u64::try_from(total).unwrap_or(0);
    let o = if total_u > limit {
        Outcome::finding(format!(
            "Prefect's run and log tables hold {} together, past the {} threshold: {list}",
            shown(total_u),
            shown(limit)
        ))
    } else {
        Outcome::pass(format!(
            "Prefect's run and log tables hold {} (threshold {}): {list}",
            shown(total_u),
            shown(limit)
        ))
    };
    o.with("total_bytes", total)
        .with("threshold_bytes", limit)
        .with(
            "tables",
            tables
                .iter()
                .map(|(t, b, _)| serde_json::json!({"table": t, "bytes": b}))
                .collect::<Vec<_>>(),
        )
}
