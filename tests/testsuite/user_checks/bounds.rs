//! User checks that try to write, are refused, or would be expensive: bounded and read-only.

use super::*;

#[test]
fn a_write_attempt_leaves_the_database_as_it_was() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // Writes the parser cannot see: a function that inserts, a sequence.
    pg.sql(
        "prefect",
        "CREATE SEQUENCE public.user_check_seq; \
         CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE sql VOLATILE AS \
         $f$ INSERT INTO public.tenant (name, slug) VALUES ('evil', 'evil') RETURNING 1 $f$; \
         GRANT ALL ON SEQUENCE public.user_check_seq TO prefect;",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sneaky.toml"),
        "id = \"site.sneaky\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT public.sneaky() AS x\"\nexpect = \"true\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("seq.toml"),
        "id = \"site.seq\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT nextval('public.user_check_seq') AS n\"\nexpect = \"true\"\n",
    )
    .unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let checks = dir.path().display().to_string();
    let before = pg.log().len();
    let run = check(
        &[
            "--database-url",
            &url,
            "--checks",
            &checks,
            "--only",
            "site.*",
        ],
        &[CANARY],
    );
    for id in ["site.sneaky", "site.seq"] {
        assert_eq!(run.status(id), "error", "{}", run.text);
        assert!(
            run.message(id).contains("user checks may only read"),
            "{}",
            run.message(id)
        );
    }
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT count(*) FROM public.tenant WHERE slug = 'evil'"
        ),
        "0"
    );
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT is_called::text FROM public.user_check_seq"
        ),
        "false"
    );
    // The server's own log: the statements came inside a read-only transaction and were refused.
    let log = pg.log();
    let ours = &log[before..];
    assert!(
        ours.contains("BEGIN READ ONLY; SET LOCAL statement_timeout"),
        "{ours}"
    );
    // Each ended by a ROLLBACK: nothing a user query did to its session outlives it.
    assert!(ours.contains("ROLLBACK"), "{ours}");
    assert!(
        ours.contains("cannot execute INSERT in a read-only transaction")
            || ours.contains("cannot execute nextval() in a read-only transaction"),
        "{ours}"
    );
}

#[test]
fn bad_check_files_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good =
        "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1 AS one\"\nexpect = \"true\"\n";
    for (text, needle) in [
        ("id = \"site.a\"\ntitle = \"t\"\n[sql\n", ":3:"),
        (
            "id = \"site.a\"\ntitle = \"t\"\ncolour = 1\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            ":3:1: unknown field `colour`",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"rows[0].x ==\"\n",
            ":5:10: expect is not a CEL expression",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"UPDATE tenant SET name = 'x'\"\nexpect = \"true\"\n",
            ":4:9: the query is not a SELECT: user checks may only read",
        ),
        (
            "id = \"Site\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            ":1:6: id \"Site\" is not `area.name`",
        ),
        (
            "id = \"db.password\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "is a built-in check's",
        ),
        (
            "id = \"site.b\"\ntitle = \"t\"\nrequires = [\"site.nope\"]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "requires \"site.nope\", which is no check",
        ),
    ] {
        let bad = write("bad.toml", text);
        for args in [
            vec!["lint-checks", bad.as_str()],
            vec![
                "check",
                "--checks",
                bad.as_str(),
                "--database-url",
                "postgres://u@127.0.0.1:9/x",
            ],
        ] {
            let (code, out, err, _) = run_once(&args);
            assert_eq!(code, 2, "{text:?} {args:?}: {out}{err}");
            assert!(
                err.contains(needle) && err.contains("bad.toml"),
                "{text:?}: {err}"
            );
            assert!(out.is_empty(), "nothing ran: {out}");
        }
    }
    // The same id in two files.
    let a = write("a.toml", good);
    let b = write("b.toml", good);
    let (code, _, err, _) = run_once(&["lint-checks", &a, &b]);
    assert_eq!(code, 2);
    assert!(
        err.contains("b.toml:1:6: id \"site.a\" is already another user check's"),
        "{err}"
    );
    // Every error of every file is said, each at its file:line:col, not only the first.
    let many = write(
        "many.toml",
        "id = \"Site\"\ntitle = \"t\"\nrequires = [\"site.nope\"]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"rows[0].x ==\"\n",
    );
    let other = write(
        "other.toml",
        "id = \"db.password\"\ntitle = \"t\"\n[sql]\nquery = \"DELETE FROM tenant\"\nexpect = \"true\"\n",
    );
    let (code, _, err, _) = run_once(&["lint-checks", &many, &other]);
    assert_eq!(code, 2);
    for needle in [
        "many.toml:1:6: id \"Site\" is not `area.name`",
        "many.toml:3:13: requires \"site.nope\", which is no check",
        "many.toml:6:10: expect is not a CEL expression",
        "other.toml:1:6: id \"db.password\" is a built-in check's",
        "other.toml:4:9: the query is not a SELECT",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    std::fs::remove_file(&many).unwrap();
    std::fs::remove_file(&other).unwrap();
    // A good file lints clean.
    std::fs::remove_file(&b).unwrap();
    std::fs::remove_file(dir.path().join("bad.toml")).unwrap();
    let (code, out, _, _) = run_once(&["lint-checks", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("1 user check is valid"), "{out}");
}

/// CEL and SQL within bounds: what cannot be afforded is refused when the file is loaded, in words
/// at its place; what runs away at run time is stopped at the check's deadline or memory budget and
/// is that check's error; a query's answer past the session's read cap is said as such.
#[test]
fn expensive_or_session_changing_checks_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, query: &str, expect: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "id = \"site.{}\"\ntitle = \"t\"\n[sql]\nquery = \"{query}\"\nexpect = \"{expect}\"\n",
                name.trim_end_matches(".toml")
            ),
        )
        .unwrap();
        p.display().to_string()
    };
    let nine = (0..9).fold("true".to_string(), |inner, i| {
        format!("[0,1,2,3,4,5,6,7,8,9].all(x{i}, {inner})")
    });
    let deep = format!("{}true{}", "(".repeat(300), ")".repeat(300));
    for (file, query, expect, says) in [
        (
            "nine.toml",
            "SELECT 1 AS one",
            nine.as_str(),
            "nine.toml:5:10: expect is refused: it nests 4 comprehensions",
        ),
        (
            "deep.toml",
            "SELECT 1 AS one",
            deep.as_str(),
            "deep.toml:5:10: expect is not a CEL expression: it nests deeper than the parser allows",
        ),
        (
            "setconf.toml",
            "SELECT set_config('statement_timeout', '0', false) AS s",
            "true",
            "setconf.toml:4:9: the query calls set_config()",
        ),
        (
            "lock.toml",
            "SELECT pg_catalog.pg_advisory_lock(1) AS l",
            "true",
            "calls pg_advisory_lock()",
        ),
        (
            "files.toml",
            "SELECT * FROM pg_ls_dir('.') AS f",
            "true",
            "calls pg_ls_dir()",
        ),
        (
            "text.toml",
            "SELECT query_to_xml('select 1', true, true, '') AS x",
            "true",
            "calls query_to_xml()",
        ),
    ] {
        let p = write(file, query, expect);
        let (code, _, err, _) = run_once(&["lint-checks", &p]);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(says), "{file}: {err}");
        assert!(
            !err.contains("OtherError") && !err.contains("ParseError {"),
            "{err}"
        );
        std::fs::remove_file(&p).unwrap();
    }

    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    // Within the load-time budget, yet a million concatenations of 1.8 KB: stopped.
    write(
        "pairs.toml",
        "SELECT repeat('x', 900) AS s FROM generate_series(1, 1000)",
        "rows.map(a, rows.map(b, a.s + b.s)).size() > 0",
    );
    // An answer past the session's read cap.
    write("big.toml", "SELECT repeat('x', 100000000) AS big", "true");
    let started = std::time::Instant::now();
    let d = dir.path().display().to_string();
    let run = check(
        &[
            "--database-url",
            &url,
            "--checks",
            &d,
            "--only",
            "site.*",
            "--only",
            "db.*",
            "--timeout",
            "5s",
        ],
        &[CANARY],
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.status("site.pairs"), "error", "{}", run.text);
    let m = run.message("site.pairs");
    eprintln!("site.pairs: {m}");
    assert!(m.contains("memory budget") || m.contains("deadline"), "{m}");
    assert_eq!(run.status("site.big"), "error", "{}", run.text);
    assert!(
        run.message("site.big")
            .contains("passed the 32 MiB a database session reads"),
        "{}",
        run.message("site.big")
    );
    // The built-in checks' session was not the one cut off.
    assert_eq!(run.status("db.timezone"), "pass", "{}", run.text);
}
