//! Database checks (`db.*`).

use std::sync::Arc;

use tokio_postgres::error::SqlState;

use super::{Cx, Outcome, db_session, query_failed};
use crate::probes::postgres::ConnectFailure;

pub async fn db_reachable(cx: Arc<Cx>) -> Outcome {
    let pg = match cx.pg() {
        Ok(pg) => pg,
        Err(o) => return o,
    };
    let target = pg.target();
    let address = target.address();
    let base = |o: Outcome| {
        o.with("target", target.masked_url())
            .with("target_source", target.source.describe())
            .with("sslmode", target.sslmode.as_str())
    };
    match pg.session().await {
        Ok(s) => base(Outcome::pass(format!(
            "PostgreSQL {} answered at {} in {} ms (TLS {})",
            s.server_version,
            if s.address.is_empty() {
                &address
            } else {
                &s.address
            },
            s.connect_ms,
            if s.tls { "on" } else { "off" }
        )))
        .with("server_version", s.server_version.clone())
        .with("tls", s.tls)
        .with("connected", s.address.clone())
        .with("user", s.current_user.clone())
        .with("database", s.database.clone()),
        Err(e) if e.server_answered() => base(Outcome::pass(format!(
            "a PostgreSQL server answered at {address} (logging in is checked by db.password)"
        ))),
        Err(e) => {
            let message = match &e {
                ConnectFailure::Server { code, message, .. } => {
                    format!(
                        "the server at {address} is not accepting connections: {message} (SQLSTATE {code})"
                    )
                }
                other => {
                    let said = other.to_string();
                    // Where the connection went, unless the failure says it already.
                    let through = pg
                        .route()
                        .filter(|_| !said.contains("port-forward to"))
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default();
                    format!("cannot connect to {address}{through}: {said}")
                }
            };
            base(Outcome::finding(message)).with("failure", e.kind())
        }
    }
}

pub async fn db_password(cx: Arc<Cx>) -> Outcome {
    let pg = match cx.pg() {
        Ok(pg) => pg,
        Err(o) => return o,
    };
    let t = pg.target();
    let who = format!("user {:?} on database {:?}", t.user, t.dbname);
    let source = t
        .password_source
        .clone()
        .unwrap_or_else(|| "none".to_string());
    let o = match pg.session().await {
        Ok(_) => Outcome::pass(format!("{who} logged in")),
        Err(ConnectFailure::NoPassword) => Outcome::finding(format!(
            "the server asks {who} for a password and none was given"
        ))
        .fix("no_password"),
        Err(ConnectFailure::Server {
            code,
            message,
            detail,
            hint,
        }) => {
            let extra = [detail, hint]
                .into_iter()
                .flatten()
                .map(|s| format!(" {s}"))
                .collect::<String>();
            let o = match code.as_str() {
                c if c == SqlState::INVALID_PASSWORD.code() => {
                    wrong_password(t, &who, &message, &code)
                }
                c if c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code() => {
                    if message.contains("pg_hba.conf") {
                        Outcome::finding(format!(
                            "the server's pg_hba.conf rejects {who} from this address before checking any password: {message} (SQLSTATE {code})"
                        ))
                        .fix("pg_hba")
                    } else if message.contains("does not exist") {
                        Outcome::finding(format!(
                            "{message} (SQLSTATE {code}): user {:?} is not on this server",
                            t.user
                        ))
                        .fix("no_role")
                    } else {
                        Outcome::finding(format!(
                            "the server refused {who}: {message} (SQLSTATE {code})"
                        ))
                        .fix("pg_hba")
                    }
                }
                c if c == SqlState::INVALID_CATALOG_NAME.code() => Outcome::finding(format!(
                    "database {:?} does not exist (SQLSTATE {code}); user {:?} was accepted",
                    t.dbname, t.user
                ))
                .fix("no_database"),
                c if c == SqlState::TOO_MANY_CONNECTIONS.code() => Outcome::finding(format!(
                    "the server has no free connection slot: {message} (SQLSTATE {code})"
                ))
                .fix("too_many_connections"),
                _ => Outcome::finding(format!(
                    "the server refused {who}: {message} (SQLSTATE {code}){extra}"
                )),
            };
            o.with("sqlstate", code)
        }
        Err(ConnectFailure::AuthMethod { detail }) => {
            Outcome::finding(format!("no password was sent for {who}: {detail}"))
                .fix("require_auth")
        }
        Err(e @ ConnectFailure::SessionNotKept { .. }) => Outcome::skip(format!(
            "{who} logged in, but the session was not kept: {e}"
        )),
        Err(e) => Outcome::skip(format!("no login attempted: {e}")),
    };
    o.with("user", t.user.clone())
        .with("database", t.dbname.clone())
        .with("password_source", source)
}

/// 28P01: what was tried (user, server, where the password came from) and the fix for that source.
/// PostgreSQL answers the same for a user that does not exist (it does not tell a stranger which
/// user names are real), so that is said too.
fn wrong_password(
    t: &crate::probes::pg_target::DbTarget,
    who: &str,
    message: &str,
    code: &str,
) -> Outcome {
    let at = t.address();
    let same = format!(
        "PostgreSQL answers the same (SQLSTATE {code}) when user {:?} does not exist",
        t.user
    );
    let source = t.password_source.as_deref().unwrap_or("");
    if let Some(secret) = source.strip_prefix("secret ") {
        return Outcome::finding(format!(
            "bad password: the server at {at} rejected the password for {who}: {message} (SQLSTATE \
             {code}). The password the services use (secret {secret}) does not match the one stored \
             in the database; {same}"
        ));
    }
    let (from, variant) = match source {
        "connection string" => ("the connection string", "password_url"),
        "PGPASSWORD" => ("PGPASSWORD", "password_env"),
        "" => ("nowhere", "password_url"),
        _ => (source, "password_pgpass"),
    };
    let from = if source.is_empty() {
        "no password was given".to_string()
    } else {
        format!("the password came from {from}")
    };
    Outcome::finding(format!(
        "bad password: the server at {at} rejected the password for {who} ({from}): {message} \
         (SQLSTATE {code}); {same}"
    ))
    .fix(variant)
    .var("password_file", source)
}

pub async fn db_version(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    version_outcome(s.server_version_num, &s.server_version)
}

/// The chart's README recommends PostgreSQL 11+.
fn version_outcome(num: i32, version: &str) -> Outcome {
    let o = if num < 110000 {
        Outcome::finding(format!(
            "PostgreSQL {version} is older than 11, the oldest version the chart recommends"
        ))
    } else {
        Outcome::pass(format!("PostgreSQL {version}"))
    };
    o.with("server_version", version)
        .with("server_version_num", num)
}

const EXTENSIONS: [&str; 2] = ["pgcrypto", "pg_trgm"];

pub async fn db_extensions(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let names: Vec<String> = EXTENSIONS.iter().map(|s| s.to_string()).collect();
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&names];
    let (installed, privs) = futures::join!(
        s.query(
            "SELECT extname::text, extversion FROM pg_catalog.pg_extension WHERE extname = ANY($1)",
            &p
        ),
        s.query(
            "SELECT r.rolsuper, pg_catalog.has_database_privilege(current_database(), 'CREATE'), \
                    pg_catalog.to_regclass('public.alembic_version') IS NOT NULL \
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[]
        ),
    );
    let (installed, privs) = match (installed, privs) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return query_failed("read the extension catalogs", e),
    };
    let installed_map: serde_json::Map<String, serde_json::Value> = installed
        .iter()
        .filter_map(|r| {
            Some((
                r.try_get::<_, String>(0).ok()?,
                r.try_get::<_, String>(1).ok()?.into(),
            ))
        })
        .collect();
    let missing: Vec<&str> = EXTENSIONS
        .iter()
        .copied()
        .filter(|e| !installed_map.contains_key(*e))
        .collect();
    // What the server could install is read from its extension directory (every control file, and for
    // the versions view every script's name): asked only when something is missing.
    let (available, trusted) = if missing.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let names: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
        let p: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&names];
        // PostgreSQL 13 has trusted extensions: the versions view says both which are available and
        // which are trusted. Before 13, there is nothing trusted to ask for.
        let rows = if s.server_version_num >= 130000 {
            s.query(
                "SELECT name::text, bool_or(trusted) FROM pg_catalog.pg_available_extension_versions \
                 WHERE name = ANY($1) GROUP BY 1",
                &p,
            )
            .await
        } else {
            s.query(
                "SELECT name::text, false FROM pg_catalog.pg_available_extensions WHERE name = ANY($1)",
                &p,
            )
            .await
        };
        let rows = match rows {
            Ok(r) => r,
            Err(e) => return query_failed("read the extensions this server has", e),
        };
        let mut available = Vec::new();
        let mut trusted = Vec::new();
        for r in &rows {
            let Ok(name) = r.try_get::<_, String>(0) else {
                continue;
            };
            if r.try_get::<_, bool>(1).unwrap_or(false) {
                trusted.push(name.clone());
            }
            available.push(name);
        }
        (available, trusted)
    };
    let (superuser, can_create, migrated) = privs
        .first()
        .map(|r| {
            (
                r.try_get::<_, bool>(0).unwrap_or(false),
                r.try_get::<_, bool>(1).unwrap_or(false),
                r.try_get::<_, bool>(2).unwrap_or(false),
            )
        })
        .unwrap_or((false, false, false));

    let evidence = |o: Outcome| {
        o.with("installed", installed_map.clone())
            .with("missing", missing.clone())
            .with("superuser", superuser)
            .with("create_on_database", can_create)
            .with("server_version_num", s.server_version_num)
            .with("migrated", migrated)
    };
    if missing.is_empty() {
        let list = EXTENSIONS
            .iter()
            .map(|e| {
                format!(
                    "{e} {}",
                    installed_map.get(*e).and_then(|v| v.as_str()).unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return evidence(Outcome::pass(format!(
            "installed in database {:?}: {list}",
            s.database
        )));
    }
    let user = &s.current_user;
    let mut blocked = Vec::new();
    let mut creatable = Vec::new();
    for ext in &missing {
        if !available.iter().any(|a| a == ext) {
            blocked.push(format!(
                "{ext} is not available on this server (its contrib package is not installed)"
            ));
        } else if superuser {
            creatable.push(*ext);
        } else if s.server_version_num < 130000 {
            blocked.push(format!(
                "{ext} needs a superuser to create on PostgreSQL {} and {user:?} is not one",
                s.server_version
            ));
        } else if !trusted.iter().any(|t| t == ext) {
            blocked.push(format!(
                "{ext} is not a trusted extension here and {user:?} is not a superuser"
            ));
        } else if !can_create {
            blocked.push(format!(
                "{ext} is trusted but {user:?} lacks the CREATE privilege on database {:?}",
                s.database
            ));
        } else {
            creatable.push(*ext);
        }
    }
    if migrated {
        // The migrations ran already and will not run again: nothing will create them.
        let why = if blocked.is_empty() {
            String::new()
        } else {
            format!("; {}", blocked.join("; "))
        };
        return evidence(
            Outcome::finding(format!(
                "missing in database {:?}: {}, and Prefect Server's migrations have already run \
                 (alembic_version exists), so they will not create them{why}",
                s.database,
                missing.join(", ")
            ))
            .fix("migrated"),
        );
    }
    if blocked.is_empty() {
        evidence(Outcome::warn(format!(
            "not installed in database {:?}: {}; {user:?} may create them, so Prefect's migrations will",
            s.database,
            creatable.join(", ")
        )))
    } else {
        evidence(Outcome::finding(format!(
            "missing in database {:?}: {}; {}",
            s.database,
            missing.join(", "),
            blocked.join("; ")
        )))
    }
}

/// Time zone names PostgreSQL treats as UTC (zero offset, no daylight saving).
pub(crate) fn is_utc(tz: &str) -> bool {
    let tz = tz.to_ascii_lowercase();
    let tz = tz.strip_prefix("etc/").unwrap_or(&tz);
    matches!(
        tz,
        "utc"
            | "uct"
            | "universal"
            | "zulu"
            | "gmt"
            | "gmt0"
            | "gmt+0"
            | "gmt-0"
            | "greenwich"
            | "z"
    ) || tz == "+00"
        || tz == "00:00"
        || tz == "+00:00"
}

pub async fn db_timezone(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // Our session sends no time zone, so this is what every new connection of this user gets.
    let rows = match s
        .query(
            "SELECT setting, source FROM pg_catalog.pg_settings WHERE name = 'TimeZone'",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("read the TimeZone setting", e),
    };
    let Some(row) = rows.first() else {
        return Outcome::error("the server reported no TimeZone setting");
    };
    let tz: String = row.try_get(0).unwrap_or_default();
    let source: String = row.try_get(1).unwrap_or_default();
    let from = match source.as_str() {
        "database" => format!("set on database {:?}", s.database),
        "user" => format!("set on user {:?}", s.current_user),
        "database user" => format!(
            "set on user {:?} in database {:?}",
            s.current_user, s.database
        ),
        "configuration file" => "from the server's configuration file".to_string(),
        "default" => "the server's built-in default".to_string(),
        other => format!("from {other}"),
    };
    let o = if is_utc(&tz) {
        Outcome::pass(format!("new connections get TimeZone {tz:?} ({from})"))
    } else {
        let o = Outcome::finding(format!(
            "new connections to database {:?} get TimeZone {tz:?} ({from}), not UTC",
            s.database
        ));
        match source.as_str() {
            // A role setting overrides the database's: ALTER DATABASE would not help.
            "user" => o.fix("role"),
            "database user" => o.fix("role_in_database"),
            _ => o,
        }
    };
    o.with("timezone", tz).with("source", source)
}

#[cfg(test)]
mod tests {
    use crate::checks::Verdict;

    #[test]
    fn versions_below_11_are_a_finding() {
        assert_eq!(
            super::version_outcome(100023, "10.23").verdict,
            Verdict::Finding
        );
        assert_eq!(
            super::version_outcome(90624, "9.6.24").verdict,
            Verdict::Finding
        );
        assert_eq!(
            super::version_outcome(110000, "11.0").verdict,
            Verdict::Pass
        );
        assert_eq!(
            super::version_outcome(150018, "15.18").verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn utc_names() {
        for tz in [
            "UTC",
            "Etc/UTC",
            "etc/uct",
            "Zulu",
            "GMT",
            "Etc/GMT+0",
            "Universal",
        ] {
            assert!(super::is_utc(tz), "{tz}");
        }
        for tz in [
            "Europe/Berlin",
            "America/New_York",
            "Etc/GMT+1",
            "GMT-5",
            "localtime",
        ] {
            assert!(!super::is_utc(tz), "{tz}");
        }
    }
}
