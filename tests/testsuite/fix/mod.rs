//! `prefect-doctor fix` against the harness's real PostgreSQL and an in-test Apollo that learns
//! `create_tenant`: the dry run's plan and its statement log (reads only), every automatic fix
//! applied and checked again, the journal and its undo statements, a refusal rolled back, `--yes`
//! without a terminal, and names that need quoting.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{
    http::Apollo,
    pg::{PgServer, SUPERUSER_PASSWORD},
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once_in,
};

/// Runs `fix ARGS` once; asserts no secret in its output; returns exit code, stdout and stderr.
fn fix(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["fix", "--color", "never"];
    a.extend_from_slice(args);
    let (code, out, err, _) = run_once_in(&BTreeMap::new(), &a);
    for secret in [CANARY, SUPERUSER_PASSWORD, ADMIN_PASSWORD] {
        assert!(!out.contains(secret), "{secret} in stdout:\n{out}");
        assert!(!err.contains(secret), "{secret} in stderr:\n{err}");
    }
    (code, out, err)
}

/// `fix -o json ARGS`: the exit code and the parsed report.
fn fix_json(args: &[&str]) -> (i32, Value) {
    let mut a = vec!["-o", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = fix(&a);
    let json: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("fix's JSON does not parse ({e}):\n{out}\nstderr: {err}"));
    assert_eq!(json["exit_code"].as_i64(), Some(i64::from(code)), "{out}");
    (code, json)
}

/// What differs between runs: ports, versions, timings.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (
            r"PostgreSQL \d+\.\d+[^ ,\n\x22]*( \([^)]*\))?",
            "PostgreSQL [version]",
        ),
        (r"in \d+ ms", "in [n] ms"),
        (r"(pgcrypto|pg_trgm) [0-9.]+", "$1 [v]"),
        (r"\d+ of the (\d+) connections", "[n] of the $1 connections"),
        (r"are in use \(\d+%\)", "are in use ([p]%)"),
    ]
}

const ADMIN_PASSWORD: &str = "admin-canary-Zz81-secret";

fn entry<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .find(|e| e["check"] == id)
        .unwrap_or_else(|| panic!("no plan entry for {id}: {json:#}"))
}

fn applied<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .find(|e| e["check"] == id)
        .unwrap_or_else(|| panic!("nothing applied for {id}: {json:#}"))
}

fn statements(e: &Value) -> Vec<String> {
    e["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["statement"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What the doctor's own connections sent, from the server's statement log after `from`.
fn ours(pg: &PgServer, from: usize) -> Vec<String> {
    pg.log()[from..]
        .lines()
        .filter(|l| {
            l.contains("app=prefect-doctor")
                && (l.contains("statement: ") || l.contains("execute "))
        })
        .map(|l| {
            let sql = l.split_once(": ").map(|(_, s)| s).unwrap_or("");
            sql.split_once(": ")
                .map(|(_, s)| s)
                .unwrap_or(sql)
                .trim_start()
                .to_string()
        })
        .collect()
}

/// An install with every fault `fix` can make right: the extensions gone after the migrations ran,
/// a time zone that is not UTC, Hasura's catalog owned by a managed database's admin, no tenant.
fn broken(pg: &PgServer) {
    seed(
        pg,
        &Seed {
            extensions: false,
            db_timezone: Some("Europe/Paris".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            hdb_function_owner: Some("postgres".into()),
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
}

/// The database's state as the fixes change it.
fn state(pg: &PgServer) -> (String, String, String, String) {
    (
        pg.sql_value(
            "prefect",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension \
             WHERE extname IN ('pgcrypto', 'pg_trgm')",
        ),
        pg.sql_value(
            "prefect",
            "SELECT coalesce((SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s \
             JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'prefect' \
             AND s.setrole = 0), '')",
        ),
        pg.sql_value(
            "prefect",
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'hdb_catalog'",
        ),
        pg.sql_value(
            "prefect",
            "SELECT string_agg(proname || '=' || proowner::regrole::text, ',' ORDER BY proname) \
             FROM pg_proc WHERE pronamespace = 'hdb_catalog'::regnamespace",
        ),
    )
}

mod apply;
mod faults;
mod plan;
