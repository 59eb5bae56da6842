//! The database checks against a real PostgreSQL server (see tests/support/pg.rs), end to end through
//! the built binary. Every run is checked for the canary password in text, verbose and JSON output.

use crate::support;

use support::{
    check,
    libpq::{OracleCase, libpq_differences, psql_connects},
    pg::{PgOptions, PgServer},
    prefect::{APP_USER, CANARY, Seed, seed},
};

fn url(pg: &PgServer, db: &str) -> String {
    pg.url(APP_USER, CANARY, db)
}

/// `prefect-doctor check` on database `db` as the app user, with `extra` flags, in every output
/// format, watching for the canary password.
fn check_db(pg: &PgServer, db: &str, extra: &[&str]) -> support::Run {
    let url = url(pg, db);
    check(
        &[&["--database-url", url.as_str()][..], extra].concat(),
        &[CANARY],
    )
}

mod libpq;
mod readme;
