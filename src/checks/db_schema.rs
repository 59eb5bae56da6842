//! `db.schema`: Prefect's tables and migrations in the database, as the services expect them.

use std::sync::Arc;

use super::{Cx, Outcome, db_session, query_failed};

pub async fn db_schema(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rows = match s
        .query(
            "SELECT pg_catalog.to_regclass('public.alembic_version') IS NOT NULL, \
                    pg_catalog.to_regclass('public.tenant') IS NOT NULL",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("look for Prefect's tables", e),
    };
    let (alembic, tenant) = rows
        .first()
        .map(|r| {
            (
                r.try_get::<_, bool>(0).unwrap_or(false),
                r.try_get::<_, bool>(1).unwrap_or(false),
            )
        })
        .unwrap_or((false, false));
    let missing: Vec<&str> = [
        ("public.alembic_version", alembic),
        ("public.tenant", tenant),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(t, _)| t)
    .collect();
    if !missing.is_empty() {
        // Another application's database answers as plainly as an empty one: tell them apart.
        let others = match s
            .query(
                "SELECT n.nspname::text || '.' || c.relname::text, count(*) OVER ()::int4 \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_%' \
                 ORDER BY 1 LIMIT 5",
                &[],
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return query_failed("list the database's tables", e),
        };
        let total = others
            .first()
            .map(|r| r.try_get::<_, i32>(1).unwrap_or(0))
            .unwrap_or(0);
        let names: Vec<String> = others
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect();
        if !alembic && !tenant && total > 0 {
            let mut shown = names.join(", ");
            if i64::from(total) > names.len() as i64 {
                shown.push_str(&format!(
                    " … and {} more",
                    i64::from(total) - names.len() as i64
                ));
            }
            let via = cx
                .pg
                .get()
                .map(|p| p.target().source.describe())
                .unwrap_or("the target given");
            return Outcome::finding(format!(
                "database {:?} answers but is not Prefect Server's: it holds {total} other table{} ({shown}) \
                 and none of Prefect's (target from {via})",
                s.database,
                if total == 1 { "" } else { "s" }
            ))
            .fix("not_prefect")
            .with("missing", missing)
            .with("other_tables", names);
        }
        return Outcome::finding(format!(
            "Prefect Server's migrations have not run in database {:?}: {} missing",
            s.database,
            missing.join(" and ")
        ))
        .with("missing", missing);
    }
    // The tables the run checks read (runs and agents): present in every schema the
    // migrations complete. One gone is this check's finding, not a raw error of the next check.
    let core = match s
        .query(
            "SELECT t FROM unnest(ARRAY['flow_run', 'agent']) AS t \
             WHERE pg_catalog.to_regclass('public.' || t) IS NULL ORDER BY 1",
            &[],
        )
        .await
    {
        Ok(r) => r
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect::<Vec<_>>(),
        Err(e) => return query_failed("look for Prefect's tables", e),
    };
    if !core.is_empty() {
        return Outcome::finding(format!(
            "database {:?} has Prefect's alembic_version and tenant tables but not {}: the \
             migrations stopped part way or the {} dropped; the checks that read {} skip",
            s.database,
            core.iter()
                .map(|t| format!("public.{t}"))
                .collect::<Vec<_>>()
                .join(", "),
            if core.len() == 1 {
                "table was"
            } else {
                "tables were"
            },
            if core.len() == 1 { "it" } else { "them" },
        ))
        .with("missing", core);
    }
    let revision = match s
        .query("SELECT version_num::text FROM public.alembic_version", &[])
        .await
    {
        Ok(rows) => rows.first().and_then(|r| r.try_get::<_, String>(0).ok()),
        Err(e) => return query_failed("read public.alembic_version", e),
    };
    match revision {
        Some(rev) => super::alembic::judge(&cx, &rev).await,
        None => Outcome::finding(
            "public.alembic_version is empty: Prefect Server's migrations started but never completed",
        ),
    }
}
