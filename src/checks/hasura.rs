//! Hasura's catalog schema (`hasura.*`): the README's "Upgrading Hasura" section.

use std::sync::Arc;

use super::{Cx, Outcome, db_session, query_failed};

enum Role {
    Superuser,
    Plain,
}

/// What both Hasura checks start from: an existing schema `hdb_catalog`, its owner, and what
/// Hasura's user is on this server.
struct HdbCatalog {
    session: Arc<crate::probes::postgres::PgSession>,
    owner: String,
    role: Role,
}

/// Looks up `hdb_catalog` and Hasura's user. `Err` is the outcome to report as is: a skip when the
/// schema does not exist yet, the finding when Hasura's user does not exist, or a query error.
async fn hdb_catalog(cx: &Cx) -> Result<HdbCatalog, Outcome> {
    let s = db_session(cx).await?;
    let user = cx.hasura_user.as_str();
    let rows = s
        .query(
            "SELECT pg_catalog.pg_get_userbyid(n.nspowner)::text FROM pg_catalog.pg_namespace n \
             WHERE n.nspname = 'hdb_catalog'",
            &[],
        )
        .await
        .map_err(|e| query_failed("look up schema hdb_catalog", e))?;
    let Some(owner) = rows.first().and_then(|r| r.try_get::<_, String>(0).ok()) else {
        return Err(Outcome::skip(format!(
            "schema hdb_catalog does not exist yet in database {:?} (Hasura creates it on its first start)",
            s.database
        ))
        .with("hdb_catalog", "missing"));
    };
    let rows = s
        .query(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&user],
        )
        .await
        .map_err(|e| query_failed("look up Hasura's user", e))?;
    let role = match rows.first() {
        None => {
            return Err(Outcome::finding(format!(
                "Hasura's user {user:?} does not exist on this server (schema hdb_catalog is owned by {owner:?}); \
                 pass the user Hasura connects as with --hasura-user"
            ))
            .fix("no_user")
            .with("owner", owner)
            .with("hasura_user", user));
        }
        Some(r) if r.try_get::<_, bool>(0).unwrap_or(false) => Role::Superuser,
        Some(_) => Role::Plain,
    };
    Ok(HdbCatalog {
        session: s,
        owner,
        role,
    })
}

/// Before Hasura's first start: may its user create schema `hdb_catalog` (CREATE on the database)?
async fn may_create_hdb_catalog(cx: &Cx) -> Result<Outcome, Outcome> {
    let s = db_session(cx).await?;
    let user = cx.hasura_user.as_str();
    let rows = s
        .query(
            "SELECT r.rolsuper OR pg_catalog.has_database_privilege(r.oid, pg_catalog.current_database(), 'CREATE') \
             FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
            &[&user],
        )
        .await
        .map_err(|e| query_failed("check Hasura's user's privileges", e))?;
    let database = s.database.clone();
    Ok(match rows.first().and_then(|r| r.try_get::<_, bool>(0).ok()) {
        None => Outcome::finding(format!(
            "Hasura's user {user:?} does not exist on this server; pass the user Hasura connects as with --hasura-user"
        )),
        Some(true) => Outcome::pass(format!(
            "schema hdb_catalog does not exist yet in database {database:?}; {user:?} may create it (CREATE on the database)"
        )),
        Some(false) => Outcome::finding(format!(
            "schema hdb_catalog does not exist yet in database {database:?} and Hasura's user {user:?} may not \
             create it (no CREATE on the database): Hasura will fail on its first start"
        ))
        .fix("no_create"),
    }
    .with("hasura_user", user))
}

pub async fn hasura_schema_owner(cx: Arc<Cx>) -> Outcome {
    let HdbCatalog {
        session: s,
        owner,
        role,
    } = match hdb_catalog(&cx).await {
        Ok(c) => c,
        Err(o)
            if o.evidence
                .get("hdb_catalog")
                .is_some_and(|v| v == "missing") =>
        {
            return may_create_hdb_catalog(&cx).await.unwrap_or_else(|o| o);
        }
        Err(o) => return o,
    };
    let user = cx.hasura_user.as_str();
    let o = match role {
        _ if owner == user => Outcome::pass(format!("schema hdb_catalog is owned by {user:?}")),
        Role::Superuser => Outcome::pass(format!(
            "schema hdb_catalog is owned by {owner:?}; {user:?} is a superuser"
        )),
        Role::Plain => {
            let member = s
                .query(
                    "SELECT pg_catalog.pg_has_role($1::text::name, $2::text::name, 'USAGE')",
                    &[&user, &owner],
                )
                .await;
            match member.map(|rows| rows.first().and_then(|r| r.try_get::<_, bool>(0).ok())) {
                Ok(Some(true)) => Outcome::pass(format!(
                    "schema hdb_catalog is owned by {owner:?}, whose privileges {user:?} inherits"
                )),
                Ok(_) => Outcome::finding(format!(
                    "schema hdb_catalog is owned by {owner:?}, not by Hasura's user {user:?}"
                )),
                Err(e) => return query_failed("check role membership", e),
            }
        }
    };
    o.with("owner", owner).with("hasura_user", user)
}

pub async fn hasura_function_owner(cx: Arc<Cx>) -> Outcome {
    let HdbCatalog {
        session: s, role, ..
    } = match hdb_catalog(&cx).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let user = cx.hasura_user.as_str();
    // The README's query, with argument types so the fix can name each overload.
    let rows = match s
        .query(
            "SELECT pg_catalog.quote_ident(p.proname::text), \
                    pg_catalog.pg_get_function_identity_arguments(p.oid), \
                    pg_catalog.pg_get_userbyid(p.proowner)::text, \
                    pg_catalog.pg_has_role($1::text::name, p.proowner, 'USAGE') \
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'hdb_catalog' ORDER BY 1, 2 LIMIT 100000",
            &[&user],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("list the functions in hdb_catalog", e),
    };
    let superuser = matches!(role, Role::Superuser);
    let mut offenders = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0).unwrap_or_default();
        let args: String = r.try_get(1).unwrap_or_default();
        let owner: String = r.try_get(2).unwrap_or_default();
        let inherits: bool = r.try_get(3).unwrap_or(false);
        if owner != user && !inherits && !superuser {
            offenders.push((name, args, owner));
        }
    }
    if offenders.is_empty() {
        return Outcome::pass(format!(
            "all {} functions in hdb_catalog are owned by {user:?}{}",
            rows.len(),
            if superuser { " (a superuser)" } else { "" }
        ))
        .with("functions", rows.len());
    }
    let list: Vec<String> = offenders
        .iter()
        .map(|(n, a, o)| format!("{n}({a}) owned by {o}"))
        .collect();
    let owner = super::quote_ident(user);
    let alter: Vec<String> = if offenders.len() <= MAX_ALTER_LINES {
        offenders
            .iter()
            .map(|(n, a, _)| format!("    ALTER FUNCTION hdb_catalog.{n}({a}) OWNER TO {owner};"))
            .collect()
    } else {
        // Too many to list: one statement that writes the ALTERs (run its output with \gexec).
        vec![
            format!(
                "    -- {} functions: this query writes one ALTER FUNCTION each; in psql, end it with \\gexec",
                offenders.len()
            ),
            "    SELECT format('ALTER FUNCTION %s OWNER TO %I;', p.oid::regprocedure, ".to_string()
                + &quote_literal(user)
                + ")",
            "      FROM pg_proc p WHERE p.pronamespace = 'hdb_catalog'::regnamespace".to_string(),
            "       AND NOT pg_has_role(".to_string()
                + &quote_literal(user)
                + ", p.proowner, 'USAGE');",
        ]
    };
    Outcome::finding(format!(
        "{} of {} functions in hdb_catalog are not owned by Hasura's user {user:?}: {}",
        offenders.len(),
        rows.len(),
        crate::untrusted::list(&list, 10)
    ))
    .with("offenders", list)
    .with("hasura_user", user)
    .var_lines("alter_functions", &alter, MAX_ALTER_LINES + 1)
}

/// Up to this many mis-owned functions, the fix lists one ALTER each; beyond, a query writes them.
const MAX_ALTER_LINES: usize = 20;

/// `s` as an SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
