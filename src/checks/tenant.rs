//! Tenant checks: the README's "The UI loads but the dashboard is blank".

use std::sync::Arc;

use super::{Cx, Outcome, db_session, query_failed};

pub async fn tenant_exists(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rows = match s
        .query(
            "SELECT (SELECT count(*) FROM public.tenant), \
                    (SELECT slug::text FROM public.tenant ORDER BY created LIMIT 1)",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("read public.tenant", e),
    };
    let (count, slug) = rows
        .first()
        .map(|r| {
            (
                r.try_get::<_, i64>(0).unwrap_or(0),
                r.try_get::<_, Option<String>>(1).ok().flatten(),
            )
        })
        .unwrap_or((0, None));
    let o = if count == 0 {
        Outcome::finding(format!(
            "no tenant in database {:?} (table public.tenant is empty)",
            s.database
        ))
    } else {
        Outcome::pass(format!(
            "{count} tenant{} (first: {:?}), read from the database",
            if count == 1 { "" } else { "s" },
            slug.clone().unwrap_or_default()
        ))
    };
    o.with("path", "sql")
        .with("tenants", count)
        .with("first_slug", slug)
}
