//! Hasura's catalog: `hasura.schema-owner` and `hasura.function-owner`.

use super::{Conn, Planned, Step, read_failed, session};
use crate::checks::Cx;

/// `ALTER SCHEMA hdb_catalog OWNER TO` Hasura's user. PostgreSQL lets the schema's owner (or a member
/// of it) do that when it is also a member of the new owner and has CREATE on the database.
pub(super) async fn schema_owner(cx: &Cx) -> Result<Planned, String> {
    let s = session(cx).await?;
    let user = cx.hasura_user.as_str();
    let rows = s
        .query(
            "SELECT pg_catalog.pg_get_userbyid(n.nspowner)::text, \
                    pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(n.nspowner)::text), \
                    pg_catalog.quote_ident($1::text), h.oid IS NOT NULL, \
                    r.rolsuper OR (pg_catalog.pg_has_role(current_user, n.nspowner, 'MEMBER') \
                        AND h.oid IS NOT NULL AND pg_catalog.pg_has_role(current_user, h.oid, 'MEMBER') \
                        AND pg_catalog.has_database_privilege(current_database(), 'CREATE')) \
             FROM pg_catalog.pg_namespace n \
             CROSS JOIN pg_catalog.pg_roles r \
             LEFT JOIN pg_catalog.pg_roles h ON h.rolname = $1::text \
             WHERE n.nspname = 'hdb_catalog' AND r.rolname = current_user",
            &[&user],
        )
        .await
        .map_err(read_failed("look up schema hdb_catalog"))?;
    let Some(row) = rows.first() else {
        return Err(
            "schema hdb_catalog does not exist yet: whether to grant CREATE or create the schema \
             for Hasura is yours to choose (the printed fix)"
                .to_string(),
        );
    };
    let owner: String = row.try_get(0).unwrap_or_default();
    let owner_quoted: String = row.try_get(1).unwrap_or_default();
    let quoted: String = row.try_get(2).unwrap_or_default();
    let exists: bool = row.try_get(3).unwrap_or(false);
    let app: bool = row.try_get(4).unwrap_or(false);
    if !exists {
        return Err(format!(
            "Hasura's user {user:?} does not exist on this server: pass the user Hasura connects \
             as with --hasura-user"
        ));
    }
    if owner == user {
        return Err(format!(
            "schema hdb_catalog is owned by {user:?} now: nothing to change"
        ));
    }
    let steps = vec![Step {
        undo: Some(format!("ALTER SCHEMA hdb_catalog OWNER TO {owner_quoted};")),
        ..Step::sql(
            format!("ALTER SCHEMA hdb_catalog OWNER TO {quoted};"),
            Some(format!("owner {owner}")),
        )
    }];
    Ok(if app {
        Planned {
            conn: Conn::App,
            why: format!(
                "{:?} may hand over the schema (a member of {owner:?} and of {user:?})",
                s.current_user
            ),
            steps,
        }
    } else {
        Planned {
            conn: Conn::Admin,
            why: format!(
                "handing over a schema needs its owner ({owner:?}) or a superuser, a member of \
                 {user:?} with CREATE on the database; {:?} is not",
                s.current_user
            ),
            steps,
        }
    })
}

/// The most functions one plan hands over (Hasura 1.3 has five, 2.x a few dozen).
const MAX_FUNCTIONS: i64 = 10_000;

/// One `ALTER FUNCTION hdb_catalog.<signature> OWNER TO` Hasura's user per function it neither owns
/// nor inherits, named by its identity arguments so every overload is meant exactly.
pub(super) async fn function_owner(cx: &Cx) -> Result<Planned, String> {
    let s = session(cx).await?;
    let user = cx.hasura_user.as_str();
    let rows = s
        .query(
            "SELECT pg_catalog.quote_ident(p.proname::text), \
                    pg_catalog.pg_get_function_identity_arguments(p.oid), \
                    pg_catalog.pg_get_userbyid(p.proowner)::text, \
                    pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(p.proowner)::text), \
                    pg_catalog.quote_ident(h.rolname::text), \
                    r.rolsuper OR (pg_catalog.pg_has_role(current_user, p.proowner, 'MEMBER') \
                        AND pg_catalog.pg_has_role(current_user, h.oid, 'MEMBER') \
                        AND pg_catalog.has_schema_privilege('hdb_catalog', 'CREATE')) \
             FROM pg_catalog.pg_proc p \
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             JOIN pg_catalog.pg_roles h ON h.rolname = $1::text \
             CROSS JOIN pg_catalog.pg_roles r \
             WHERE n.nspname = 'hdb_catalog' AND r.rolname = current_user \
               AND p.proowner <> h.oid AND NOT h.rolsuper \
               AND NOT pg_catalog.pg_has_role(h.oid, p.proowner, 'USAGE') \
             ORDER BY 1, 2 LIMIT $2",
            &[&user, &(MAX_FUNCTIONS + 1)],
        )
        .await
        .map_err(read_failed("list the functions in hdb_catalog"))?;
    if rows.len() as i64 > MAX_FUNCTIONS {
        return Err(format!(
            "more than {MAX_FUNCTIONS} functions in hdb_catalog are not Hasura's: that is not a \
             Hasura catalog to change automatically"
        ));
    }
    if rows.is_empty() {
        return Err(format!(
            "every function in hdb_catalog is owned by {user:?} (or one whose privileges it \
             inherits) now, or {user:?} does not exist: nothing to change"
        ));
    }
    let mut steps = Vec::new();
    let mut app = true;
    let mut owners: Vec<String> = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0).unwrap_or_default();
        let args: String = r.try_get(1).unwrap_or_default();
        let owner: String = r.try_get(2).unwrap_or_default();
        let owner_quoted: String = r.try_get(3).unwrap_or_default();
        let quoted: String = r.try_get(4).unwrap_or_default();
        app &= r.try_get::<_, bool>(5).unwrap_or(false);
        if !owners.contains(&owner) {
            owners.push(owner.clone());
        }
        let function = format!("hdb_catalog.{name}({args})");
        steps.push(Step {
            undo: Some(format!(
                "ALTER FUNCTION {function} OWNER TO {owner_quoted};"
            )),
            ..Step::sql(
                format!("ALTER FUNCTION {function} OWNER TO {quoted};"),
                Some(format!("owner {owner}")),
            )
        });
    }
    let owners = owners
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(if app {
        Planned {
            conn: Conn::App,
            why: format!(
                "{:?} may hand them over (a member of {owners} and of {user:?})",
                s.current_user
            ),
            steps,
        }
    } else {
        Planned {
            conn: Conn::Admin,
            why: format!(
                "handing over a function needs its owner ({owners}) or a superuser, a member of \
                 {user:?} with CREATE on schema hdb_catalog; {:?} is not",
                s.current_user
            ),
            steps,
        }
    })
}
