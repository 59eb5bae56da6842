//! The database's fixes: `db.extensions` and `db.timezone`.

use super::{Conn, Planned, Step, read_failed, session};
use crate::checks::Cx;

/// The extensions Prefect Server's migrations create, as the README writes their names.
const EXTENSIONS: [(&str, &str); 2] = [("pgcrypto", "pgcrypto"), ("pg_trgm", "\"pg_trgm\"")];

/// `CREATE EXTENSION IF NOT EXISTS` for each missing extension: as the app user when it may (a
/// superuser, or on PostgreSQL 13+ a trusted extension and CREATE on the database), else as an
/// owner or superuser.
pub(super) async fn extensions(cx: &Cx) -> Result<Planned, String> {
    let s = session(cx).await?;
    // No trusted extensions before PostgreSQL 13.
    let trusted = if s.server_version_num >= 130000 {
        "coalesce((SELECT bool_or(v.trusted) FROM pg_catalog.pg_available_extension_versions v \
                   WHERE v.name = e.name), false)"
    } else {
        "false"
    };
    let names: Vec<String> = EXTENSIONS.iter().map(|(n, _)| n.to_string()).collect();
    let rows = s
        .query(
            &format!(
                "SELECT e.name, \
                        EXISTS (SELECT 1 FROM pg_catalog.pg_extension x WHERE x.extname = e.name), \
                        EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a WHERE a.name = e.name), \
                        {trusted}, \
                        (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), \
                        pg_catalog.has_database_privilege(current_database(), 'CREATE') \
                 FROM unnest($1::text[]) WITH ORDINALITY AS e(name, i) ORDER BY e.i"
            ),
            &[&names],
        )
        .await
        .map_err(read_failed("read the extension catalogs"))?;
    let mut steps = Vec::new();
    let mut app_may = true;
    let mut why = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0).unwrap_or_default();
        let installed: bool = r.try_get(1).unwrap_or(false);
        let available: bool = r.try_get(2).unwrap_or(false);
        let trusted: bool = r.try_get(3).unwrap_or(false);
        let superuser: bool = r
            .try_get::<_, Option<bool>>(4)
            .ok()
            .flatten()
            .unwrap_or(false);
        let create: bool = r.try_get(5).unwrap_or(false);
        if installed {
            continue;
        }
        if !available {
            return Err(format!(
                "{name} is not available on this server: its contrib package is not installed, \
                 and no statement can create it until it is"
            ));
        }
        let quoted = EXTENSIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, q)| *q)
            .unwrap_or("");
        if !(superuser || (trusted && create)) {
            app_may = false;
            why.push(if s.server_version_num < 130000 {
                format!(
                    "creating {name} needs a superuser on PostgreSQL {}",
                    s.server_version
                )
            } else if !trusted {
                format!("{name} is not a trusted extension here")
            } else {
                format!(
                    "{:?} lacks CREATE on database {:?}",
                    s.current_user, s.database
                )
            });
        }
        steps.push(Step {
            undo: Some(format!("DROP EXTENSION IF EXISTS {quoted};")),
            ..Step::sql(format!("CREATE EXTENSION IF NOT EXISTS {quoted};"), None)
        });
    }
    if steps.is_empty() {
        return Err("both extensions are installed now: nothing to change".to_string());
    }
    Ok(if app_may {
        Planned {
            conn: Conn::App,
            why: format!("{:?} may create them", s.current_user),
            steps,
        }
    } else {
        Planned {
            conn: Conn::Admin,
            why: why.join("; "),
            steps,
        }
    })
}

/// Makes UTC the time zone new connections get, where the current one is set: on the database
/// (`ALTER DATABASE`, as its owner or a superuser), or on the app user itself (`ALTER ROLE`, which
/// the user may do for itself).
pub(super) async fn timezone(cx: &Cx) -> Result<Planned, String> {
    let s = session(cx).await?;
    let rows = s
        .query(
            "SELECT t.setting, t.source, pg_catalog.quote_literal(t.setting), \
                    pg_catalog.quote_ident(current_database()), pg_catalog.quote_ident(current_user), \
                    r.rolsuper OR pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER') \
             FROM pg_catalog.pg_settings t, pg_catalog.pg_database d, pg_catalog.pg_roles r \
             WHERE t.name = 'TimeZone' AND d.datname = current_database() AND r.rolname = current_user",
            &[],
        )
        .await
        .map_err(read_failed("read the TimeZone setting"))?;
    let row = rows
        .first()
        .ok_or("the server reported no TimeZone setting")?;
    let setting: String = row.try_get(0).unwrap_or_default();
    let source: String = row.try_get(1).unwrap_or_default();
    let literal: String = row.try_get(2).unwrap_or_default();
    let database: String = row.try_get(3).unwrap_or_default();
    let user: String = row.try_get(4).unwrap_or_default();
    let owner: bool = row.try_get(5).unwrap_or(false);
    if crate::checks::is_utc(&setting) {
        return Err(format!(
            "new connections get TimeZone {setting:?} now: nothing to change"
        ));
    }
    let replaces = Some(format!("TimeZone {setting} (source: {source})"));
    let (target, app) = match source.as_str() {
        "user" => (format!("ROLE {user}"), true),
        "database user" => (format!("ROLE {user} IN DATABASE {database}"), true),
        _ => (format!("DATABASE {database}"), owner),
    };
    // Put back what was set at that level, or clear it when the value came from further out.
    let undo = match source.as_str() {
        "user" | "database user" | "database" => {
            format!("ALTER {target} SET timezone TO {literal};")
        }
        _ => format!("ALTER {target} RESET timezone;"),
    };
    let steps = vec![Step {
        undo: Some(undo),
        ..Step::sql(format!("ALTER {target} SET timezone TO 'UTC';"), replaces)
    }];
    Ok(if app {
        Planned {
            conn: Conn::App,
            why: if source.contains("user") {
                format!("{:?} may set its own defaults", s.current_user)
            } else {
                format!("{:?} owns database {:?}", s.current_user, s.database)
            },
            steps,
        }
    } else {
        Planned {
            conn: Conn::Admin,
            why: format!(
                "ALTER DATABASE needs the owner of {:?} or a superuser, and {:?} is neither",
                s.database, s.current_user
            ),
            steps,
        }
    })
}
