//! The command line itself: list and explain, usage errors, help, every flag used or refused, a
//! kube flag without a kube config, a closed pipe.

use super::*;

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
