//! End-to-end tests of the built binary: usage errors, network failure modes, colour, and snapshots
//! of the text and JSON reports.

use crate::support;

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::Duration,
};

use prefect_doctor::cli::{args::ColorWhen, output::colour_on};
use support::{
    check, doctor,
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    stdout_of_success,
};

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn colour_follows_flags_and_environment() {
    let port = closed_port().to_string();
    let url = format!("postgres://p:q@127.0.0.1:{port}/d");
    let esc = |args: &[&str], env: &[(&str, &str)]| -> bool {
        let mut cmd = doctor();
        cmd.args(["check", "--database-url", &url]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().stdout.contains(&0x1b)
    };
    assert!(!esc(&[], &[]), "no colour when piped");
    assert!(esc(&["--color", "always"], &[]));
    assert!(esc(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!esc(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
    assert!(!esc(&[], &[("NO_COLOR", "1")]));
    assert!(
        !esc(&["--output", "json", "--color", "always"], &[]),
        "JSON is never coloured"
    );
    assert!(!esc(&[], &[("CLICOLOR", "0")]));
    assert!(!esc(&[], &[("CLICOLOR_FORCE", "0")]));
    assert!(
        !esc(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    assert!(
        esc(&["--color", "always"], &[("NO_COLOR", "1")]),
        "the flag wins"
    );
    for format in ["junit", "sarif"] {
        assert!(!esc(&["-o", format, "--color", "always"], &[]), "{format}");
    }
    // Report files are never coloured, whatever stdout gets.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.txt");
    let spec = format!("text={}", file.display());
    assert!(esc(&["--color", "always", "--report", &spec], &[]));
    assert!(!std::fs::read(&file).unwrap().contains(&0x1b));
    // `explain` colours its headings by the same rules.
    let explain = |args: &[&str], env: &[(&str, &str)]| -> bool {
        let mut cmd = doctor();
        cmd.args(["explain", "db.password"]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().stdout.contains(&0x1b)
    };
    assert!(!explain(&[], &[]));
    assert!(explain(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!explain(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
}

#[test]
fn skips_for_one_reason_fold_and_failures_close_the_report() {
    let port = closed_port().to_string();
    let url = format!("postgres://p:q@127.0.0.1:{port}/d");
    let text = support::stdout_of_any(&["check", "--color", "never", "--database-url", &url]);
    // db.reachable failed: the seven database checks that need it share that one reason.
    assert!(
        text.contains("○ 7 checks skipped: requires db.reachable, which failed"),
        "{text}"
    );
    assert!(
        text.contains(
            "db.password, db.version, db.extensions, db.timezone, db.connections, db.size, db.schema"
        ),
        "{text}"
    );
    let tail = text
        .split("What to do, in this order:")
        .nth(1)
        .expect("a What to do list");
    assert!(tail.trim_start().starts_with("1. db.reachable"), "{tail}");
    // -v lists each check on its own line.
    let verbose =
        support::stdout_of_any(&["check", "-v", "--color", "never", "--database-url", &url]);
    assert!(!verbose.contains("checks skipped"), "{verbose}");
    assert!(verbose.contains("○ db.password"), "{verbose}");
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"-p \d+", "-p [port]"),
        (
            r"PostgreSQL \d+\.\d+[^ ,\n\x22]*( \([^)]*\))?",
            "PostgreSQL [version]",
        ),
        (r"in \d+ ms", "in [n] ms"),
        (r"in \d+\.\d+s", "in [t]s"),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
        (
            r#""server_version": "[^"]*""#,
            r#""server_version": "[version]""#,
        ),
        (
            r#""server_version_num": \d+"#,
            r#""server_version_num": "[num]""#,
        ),
        (r#""(pgcrypto|pg_trgm)": "[0-9.]+""#, r#""$1": "[v]""#),
        (r"(pgcrypto|pg_trgm) [0-9.]+", "$1 [v]"),
        // Connections in use depend on what else the test server is doing.
        (r"\d+ of the (\d+) connections", "[n] of the $1 connections"),
        (r"are in use \(\d+%\)", "are in use ([p]%)"),
        (r#""(in_use|role_in_use)": \d+"#, r#""$1": "[n]""#),
        (r#"(?s)"top": \[.*?\]"#, r#""top": "[clients]""#),
        // Table sizes depend on the PostgreSQL version.
        (r"(run and log tables hold )[^\n\x22]*", "$1[sizes]"),
        (r#"(?s)"tables": \[.*?\]"#, r#""tables": "[sizes]""#),
        (r#""total_bytes": \d+"#, r#""total_bytes": "[n]""#),
    ]
}

#[test]
fn report_snapshots() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            db_timezone: Some("Europe/Berlin".into()),
            hdb_function_owner: Some("postgres".into()),
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let run = check(&["--database-url", &url], &[CANARY]);
    assert_eq!(run.code, 1);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("text_report", run.text);
        insta::assert_snapshot!("json_report", serde_json::to_string_pretty(&run.json).unwrap());
    });
}

/// The colour decision itself, including the terminal cases a piped binary cannot show.
#[test]
fn colour_rules_as_a_function_of_flag_terminal_and_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let none = env(&[]);
    assert!(colour_on(ColorWhen::Auto, true, &none));
    assert!(
        !colour_on(ColorWhen::Auto, false, &none),
        "a pipe is not coloured"
    );
    assert!(colour_on(
        ColorWhen::Always,
        false,
        &env(&[("NO_COLOR", "1")])
    ));
    assert!(!colour_on(
        ColorWhen::Never,
        true,
        &env(&[("CLICOLOR_FORCE", "1")])
    ));
    assert!(!colour_on(
        ColorWhen::Auto,
        true,
        &env(&[("NO_COLOR", "1")])
    ));
    assert!(
        colour_on(ColorWhen::Auto, true, &env(&[("NO_COLOR", "")])),
        "empty NO_COLOR is unset"
    );
    assert!(!colour_on(
        ColorWhen::Auto,
        true,
        &env(&[("CLICOLOR", "0")])
    ));
    assert!(colour_on(
        ColorWhen::Auto,
        false,
        &env(&[("CLICOLOR_FORCE", "1")])
    ));
    assert!(!colour_on(
        ColorWhen::Auto,
        false,
        &env(&[("CLICOLOR_FORCE", "0")])
    ));
    assert!(!colour_on(
        ColorWhen::Auto,
        true,
        &env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
    ));
}

mod database;
mod usage;
