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

#[test]
fn list_and_explain() {
    let text = stdout_of_success(&["list"]);
    for id in [
        "db.reachable",
        "db.password",
        "hasura.function-owner",
        "tenant.exists",
    ] {
        assert!(text.contains(id), "{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of_success(&["list", "--output", "json"])).unwrap();
    assert_eq!(
        json.as_array().map(Vec::len),
        Some(prefect_doctor::checks::REGISTRY.len())
    );
    assert!(json[0]["severity"].as_str().is_some());

    let text = stdout_of_success(&["explain", "db.password", "--color", "never"]);
    for part in [
        "Symptom",
        "Cause",
        "persisted",
        "existingSecret",
        "Fix when the cause is pg_hba",
        "#the-database-deploys-correctly",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    let a = doctor().args(["explain", "db.pasword"]).assert().code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("did you mean db.password?"), "{err}");
}

#[test]
fn usage_errors_exit_2_without_leaking() {
    for args in [
        vec![
            "check",
            "--database-url",
            "postgres://u:canary-Leak99@h:notaport/d",
        ],
        vec![
            "check",
            "--database-url",
            "host=h password=canary-Leak99 oops",
        ],
        vec![
            "check",
            "--database-url",
            "postgres://u:canary-Leak99@h/d?sslmode=sometimes",
        ],
        vec!["check", "--only", "db.pasword"],
        vec!["check", "--timeout", "0s"],
        vec!["check", "--timeout", "soon"],
        vec!["check", "--output", "yaml"],
        vec!["frobnicate"],
    ] {
        let a = doctor().args(&args).assert().code(2);
        let out = a.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("canary-Leak99"), "{args:?} leaked: {all}");
        assert!(!all.trim().is_empty(), "{args:?} printed no reason");
    }
    let a = doctor()
        .args(["check", "--only", "db.pasword"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("did you mean db.password"));
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn refused_port_fails_reachable_and_skips_the_rest() {
    let port = closed_port();
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect");
    let run = check(&["--database-url", &url], &[CANARY]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("db.reachable"), "fail");
    assert!(
        run.message("db.reachable").contains("connection refused"),
        "{}",
        run.message("db.reachable")
    );
    assert_eq!(run.result("db.reachable")["evidence"]["failure"], "refused");
    // Everything else is skipped: the database's dependents, the API and UI checks (no target given
    // for them, since --database-url was), and the CLI check (no prefect CLI on this machine).
    assert_eq!(run.json["summary"]["skip"], 30);
    assert!(
        run.message("prefect.cli-config")
            .starts_with("no prefect CLI on this machine"),
        "{}",
        run.message("prefect.cli-config")
    );
    assert!(run.message("api.reachable").starts_with("no API given"));
    assert!(
        run.fix("db.reachable")
            .contains("pg_isready -h 127.0.0.1 -p")
    );
}

#[test]
fn black_holed_port_costs_one_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(16).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect");
    let run = check(&["--database-url", &url, "--timeout", "1s"], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    let msg = run.message("db.reachable");
    assert!(
        msg.contains("timed out") && msg.contains("TCP connection was accepted"),
        "{msg}"
    );
    // A hang guard, not a benchmark: the whole run ends within the timeout plus one second.
    assert!(
        run.elapsed < Duration::from_secs(2),
        "run took {:?}",
        run.elapsed
    );
}

#[test]
fn something_that_is_not_postgres() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().take(16).flatten() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("postgres://prefect:{CANARY}@127.0.0.1:{port}/prefect?sslmode=disable");
    let run = check(&["--database-url", &url], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    assert_eq!(
        run.result("db.reachable")["evidence"]["failure"],
        "not-postgres",
        "{}",
        run.message("db.reachable")
    );
}

#[test]
fn unresolvable_host() {
    let url = format!("postgres://prefect:{CANARY}@db.does-not-exist.invalid:5432/prefect");
    let run = check(&["--database-url", &url, "--timeout", "2s"], &[CANARY]);
    assert_eq!(run.status("db.reachable"), "fail");
    let msg = run.message("db.reachable");
    // With no resolver reachable, the lookup may time out rather than fail: both say where it stopped.
    assert!(
        msg.contains("does not resolve") || msg.contains("resolving the host name"),
        "{msg}"
    );
}

#[test]
fn pg_environment_variables_are_used() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let out = doctor()
        .args(["check", "--output", "json", "--only", "db.password"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", APP_USER)
        .env("PGPASSWORD", CANARY)
        .env("PGDATABASE", "prefect")
        .env("PGSSLMODE", "disable")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(CANARY));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["targets"][0]["source"], "PG* environment variables");
    assert_eq!(
        json["results"][0]["evidence"]["password_source"],
        "PGPASSWORD"
    );
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

/// Every catalog fix `explain` prints is the catalog's text as written (indented): the secret
/// scrubber leaves our own words alone (`--set postgresql.postgresqlPassword=$POSTGRESQL_PASSWORD`).
#[test]
fn explain_prints_every_fix_as_written() {
    let catalog = prefect_doctor::catalog::Catalog::builtin();
    for spec in catalog.entries() {
        let text = stdout_of_success(&["explain", &spec.id, "--color", "never"]);
        let mut fixes = vec![&spec.fix];
        fixes.extend(spec.fixes.values());
        for fix in fixes {
            let indented: String = fix
                .trim_end()
                .lines()
                .map(|l| {
                    if l.is_empty() {
                        "\n".to_string()
                    } else {
                        format!("  {l}\n")
                    }
                })
                .collect();
            assert!(
                text.contains(&indented),
                "{}: the fix is not as written:\n{text}",
                spec.id
            );
        }
    }
    let text = stdout_of_success(&["explain", "db.password", "--color", "never"]);
    assert!(
        text.contains(
            "`helm upgrade ... --set postgresql.postgresqlPassword=$POSTGRESQL_PASSWORD`."
        ),
        "{text}"
    );
}

/// A kube flag with no kube config anywhere says where it looked and what to pass.
#[test]
fn a_kube_flag_without_a_kube_config_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let a = doctor()
        .env("HOME", home.path())
        .args(["check", "-n", "prefect", "--release", "prefect"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    for needle in [
        "KUBECONFIG (not set)",
        &format!("{}/.kube/config (no such file)", home.path().display()),
        "in-cluster service account (not in a pod",
        "--kubeconfig FILE",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
    assert!(!err.contains("incluster environment variable"), "{err}");
}

/// Help says what every option is, and the formats each takes.
#[test]
fn help_describes_every_option() {
    let list = stdout_of_success(&["list", "-h"]);
    let o = list
        .lines()
        .find(|l| l.trim_start().starts_with("-o, --output"))
        .unwrap();
    assert!(
        o.split_once(">").is_some_and(|(_, d)| !d.trim().is_empty()),
        "{list}"
    );
    let check = stdout_of_success(&["check", "--help"]);
    let report = check.split("--report").nth(1).unwrap_or("");
    assert!(
        report[..report.len().min(300)].contains("prometheus"),
        "{check}"
    );
    // bundle's -o is the report's format, as everywhere else.
    let bundle = stdout_of_success(&["bundle", "--help"]);
    assert!(
        bundle.contains("junit") && bundle.contains("sarif"),
        "{bundle}"
    );
}

/// Each flag a subcommand takes either changes what it does or is refused (exit 2, nothing
/// contacted): `fix --from` once planned live against the local defaults. The table names every
/// flag of every subcommand; a new flag must be placed in it.
#[test]
fn every_accepted_flag_is_used_or_refused() {
    use clap::CommandFactory as _;
    // (subcommand, argv that must be refused). Every other flag is used by its subcommand.
    let refused: &[(&str, &[&str])] = &[
        ("fix", &["fix", "--from", "B", "--apply", "--yes"]),
        (
            "fix",
            &[
                "fix",
                "--from",
                "B",
                "--admin-url",
                "postgres://a@127.0.0.1:9/x",
            ],
        ),
        (
            "fix",
            &[
                "fix",
                "--from",
                "B",
                "--database-url",
                "postgres://a@127.0.0.1:9/x",
            ],
        ),
        ("fix", &["fix", "--from", "B", "--wait", "5s"]),
        ("bundle", &["bundle", "--from", "B"]),
        ("serve", &["serve", "--from", "B"]),
        ("serve", &["serve", "--from", "B", "--parallel", "3"]),
        ("check", &["check", "--from", "B", "--parallel", "3"]),
        ("check", &["check", "--from", "B", "--kubeconfig", "K"]),
    ];
    // A listener that counts every connection: nothing refused may reach anything.
    let listener = TcpListener::bind("127.0.0.1:9").ok();
    let bundle = tempfile::NamedTempFile::new().unwrap();
    for (_, argv) in refused {
        let argv: Vec<&str> = argv
            .iter()
            .map(|a| {
                if *a == "B" {
                    bundle.path().to_str().unwrap()
                } else {
                    a
                }
            })
            .collect();
        let a = doctor().args(&argv).assert().code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(!err.trim().is_empty(), "{argv:?}: no reason given");
    }
    if let Some(l) = listener {
        l.set_nonblocking(true).unwrap();
        assert!(
            l.accept().is_err(),
            "a refused command connected to something"
        );
    }
    // The table of flags, per subcommand: every flag clap accepts is here. What a live run looks
    // at and how it selects checks (check's own flags, which fix, bundle and serve take too):
    const RUN: &[&str] = &[
        "database-url",
        "api-url",
        "ui-url",
        "insecure",
        "resolve",
        "kubeconfig",
        "context",
        "namespace",
        "all-namespaces",
        "release",
        "hasura-user",
        "from",
        "wait",
        "only",
        "skip",
        "timeout",
        "config",
        "strict",
        "checks",
    ];
    let used: &[(&str, &[&str])] = &[
        ("check", &["parallel", "output", "report", "verbose"]),
        (
            "fix",
            &["apply", "yes", "admin-url", "journal", "output", "verbose"],
        ),
        (
            "bundle",
            &[
                "output-file",
                "max-size",
                "redact",
                "output",
                "report",
                "verbose",
            ],
        ),
        ("serve", &["parallel", "listen", "interval"]),
    ];
    let cli = prefect_doctor::cli::args::Cli::command();
    for (sub, flags) in used {
        let cmd = cli.find_subcommand(sub).unwrap();
        let mut have: Vec<&str> = cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && !a.is_global_set())
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .collect();
        have.sort_unstable();
        let mut listed = [RUN, flags].concat();
        listed.sort_unstable();
        assert_eq!(
            have, listed,
            "{sub}: a flag is missing from the table, or gone"
        );
    }
}

/// `| head`: the reader went away. The rest is dropped without a word, and the exit code is still
/// the run's (a CI step with pipefail sees the failure).
#[test]
fn a_closed_pipe_keeps_the_runs_exit_code() {
    use std::process::Stdio;
    let port = closed_port();
    let url = format!("postgres://u:p@127.0.0.1:{port}/x");
    let mut child = support::doctor_process()
        .args(["check", "--database-url", &url, "--timeout", "2s", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing, close the pipe: the doctor's first write meets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
