//! The database target as libpq reads it, with libpq itself (18 and psql's 15) as the oracle.

use super::*;

#[test]
fn unix_socket_and_keyvalue_connection_string() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dsn = format!(
        "host={} port={} user={APP_USER} password='{CANARY}' dbname=prefect",
        pg.socket_dir().display(),
        pg.port
    );
    let run = check(&["--database-url", &dsn, "--only", "db.*"], &[CANARY]);
    assert_eq!(run.status("db.password"), "pass", "{}", run.text);
    assert!(
        run.message("db.reachable").contains(".s.PGSQL."),
        "{}",
        run.message("db.reachable")
    );
}

/// Variables set for one target.
type Env = Vec<(&'static str, String)>;

/// The database target read as libpq reads it, libpq the oracle: for each target (a string, the
/// environment, a service file, a password file) the doctor connects as the user, to the database,
/// host and port and with the TLS libpq does, or both refuse. The oracle is the newest libpq
/// (psycopg's, 18); Debian's psql (libpq 15) must agree too, but for what it does not know yet.
#[test]
fn the_database_target_is_read_as_libpq_reads_it() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // A second server whose sessions are read-only (as a standby's), for host lists and
    // target_session_attrs; and a port nothing listens on.
    let ro = PgServer::start();
    ro.sql(
        "postgres",
        &format!(
            "CREATE ROLE {APP_USER} LOGIN PASSWORD '{CANARY}'; CREATE DATABASE prefect OWNER {APP_USER}; \
             ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();"
        ),
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // libpq's default user is the operating-system user: give it a role here.
    let os_user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    pg.sql(
        "postgres",
        &format!("CREATE ROLE \"{os_user}\" LOGIN PASSWORD '{CANARY}'; GRANT CONNECT ON DATABASE prefect TO \"{os_user}\";"),
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let port = pg.port.to_string();
    let services = dir.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "# the team's services\n[prefect]\nhost=127.0.0.1\nport={port}\nuser={APP_USER}\ndbname=prefect\nsslmode=disable\n\n\
             [other]\nhost=127.0.0.1\nport={port}\ndbname=postgres\nsslmode=disable\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join(".pg_service.conf"),
        format!("[prefect]\nhost=127.0.0.1\nport={port}\nuser={APP_USER}\ndbname=prefect\nsslmode=disable\n"),
    )
    .unwrap();
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, "[prefect]\nthis line has no equals sign\n").unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:*:*:*:{CANARY}\n")).unwrap();
    let mut perms = std::fs::metadata(&pgpass).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&pgpass, perms).unwrap();
    let p = |k: &'static str, v: &str| (k, v.to_string());
    let pw = p("PGPASSWORD", CANARY);
    let file = |f: &std::path::Path| p("PGSERVICEFILE", &f.display().to_string());
    let url = pg.url(APP_USER, CANARY, "prefect");
    let no_user = format!("postgres://127.0.0.1:{port}/prefect?sslmode=disable");
    let ro_port = ro.port.to_string();
    let list = |ports: &[&str], extra: &str| {
        Some(format!(
            "host={} port={} user={APP_USER} password={CANARY} dbname=prefect sslmode=disable {extra}",
            vec!["127.0.0.1"; ports.len()].join(","),
            ports.join(",")
        ))
    };
    let dead = dead.to_string();
    // Targets only libpq 16 and later read (libpq 15 refuses their parameters, or ignores their
    // variables).
    let since_16 = [
        "require_auth: the server's method allowed",
        "require_auth: a cleartext password refused",
        "require_auth: not the server's method",
        "require_auth: none refused",
        "load_balance_hosts=random",
        "PGLOADBALANCEHOSTS",
    ];
    let cases: Vec<(&str, Option<String>, Env)> = vec![
        ("a full URL", Some(url.clone()), vec![]),
        (
            "key=value",
            Some(format!(
                "host=127.0.0.1 port={port} user={APP_USER} password={CANARY} dbname=prefect sslmode=disable"
            )),
            vec![],
        ),
        (
            "no user: the OS user",
            Some(no_user.clone()),
            vec![pw.clone()],
        ),
        (
            "no user, no database: both the OS user's",
            Some(format!("host=127.0.0.1 port={port} sslmode=disable")),
            vec![pw.clone()],
        ),
        (
            "the environment alone",
            None,
            vec![
                p("PGHOST", "127.0.0.1"),
                p("PGPORT", &port),
                p("PGUSER", APP_USER),
                pw.clone(),
                p("PGDATABASE", "prefect"),
                p("PGSSLMODE", "disable"),
            ],
        ),
        (
            "service= with PGSERVICEFILE",
            Some("service=prefect".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "PGSERVICE",
            None,
            vec![p("PGSERVICE", "prefect"), file(&services), pw.clone()],
        ),
        (
            "the string over the service",
            Some("service=prefect dbname=postgres".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "the service over PG* variables",
            Some("service=prefect".into()),
            vec![
                file(&services),
                pw.clone(),
                p("PGDATABASE", "postgres"),
                p("PGUSER", "nobody"),
            ],
        ),
        (
            "a service without a user: the OS user",
            Some("service=other".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "~/.pg_service.conf",
            Some("service=prefect".into()),
            vec![pw.clone()],
        ),
        (
            "an unknown service",
            Some("service=nope".into()),
            vec![file(&services), pw.clone()],
        ),
        (
            "a broken service file",
            Some("service=prefect".into()),
            vec![file(&broken), pw.clone()],
        ),
        (
            "a password file with wildcards",
            Some(format!(
                "postgres://{APP_USER}@127.0.0.1:{port}/prefect?sslmode=disable"
            )),
            vec![p("PGPASSFILE", &pgpass.display().to_string())],
        ),
        (
            "several hosts: the first refuses",
            list(&[&dead, &port], ""),
            vec![],
        ),
        (
            "several hosts in a URL",
            Some(format!(
                "postgres://{APP_USER}:{CANARY}@127.0.0.1:{dead},127.0.0.1:{port}/prefect?sslmode=disable"
            )),
            vec![],
        ),
        (
            "several hosts from PGHOST and PGPORT",
            None,
            vec![
                p("PGHOST", "127.0.0.1,127.0.0.1"),
                p("PGPORT", &format!("{dead},{port}")),
                p("PGUSER", APP_USER),
                pw.clone(),
                p("PGDATABASE", "prefect"),
                p("PGSSLMODE", "disable"),
            ],
        ),
        (
            "several hosts: none answers",
            list(&[&dead, &dead], ""),
            vec![],
        ),
        ("more ports than hosts", list(&[&port], "port=1,2"), vec![]),
        (
            "read-write passes the read-only server",
            list(&[&ro_port, &port], "target_session_attrs=read-write"),
            vec![],
        ),
        (
            "PGTARGETSESSIONATTRS",
            list(&[&ro_port, &port], ""),
            vec![p("PGTARGETSESSIONATTRS", "read-write")],
        ),
        (
            "read-only finds the read-only server",
            list(&[&port, &ro_port], "target_session_attrs=read-only"),
            vec![],
        ),
        (
            "primary: the first (neither is in recovery)",
            list(&[&dead, &ro_port, &port], "target_session_attrs=primary"),
            vec![],
        ),
        (
            "standby: none is",
            list(&[&port, &ro_port], "target_session_attrs=standby"),
            vec![],
        ),
        (
            "prefer-standby: any when none is",
            list(
                &[&dead, &ro_port, &port],
                "target_session_attrs=prefer-standby",
            ),
            vec![],
        ),
        (
            "read-write alone on a read-only server",
            list(&[&ro_port], "target_session_attrs=read-write"),
            vec![],
        ),
        (
            "an unknown target_session_attrs",
            list(&[&port], "target_session_attrs=master"),
            vec![],
        ),
        (
            "options make the session read-only",
            list(
                &[&port],
                "target_session_attrs=read-write options='-c default_transaction_read_only=on'",
            ),
            vec![],
        ),
        (
            "PGOPTIONS with a setting the server does not know",
            list(&[&port], ""),
            vec![p("PGOPTIONS", "-c no_such_setting=1")],
        ),
        (
            "application_name and PGAPPNAME",
            list(&[&port], "application_name=team-dashboard"),
            vec![p("PGAPPNAME", "other")],
        ),
        (
            "require_auth: the server's method allowed",
            list(&[&port], "require_auth=scram-sha-256"),
            vec![],
        ),
        (
            "require_auth: a cleartext password refused",
            list(&[&port], "require_auth=password"),
            vec![],
        ),
        (
            "require_auth: not the server's method",
            list(&[&port], "require_auth=!scram-sha-256"),
            vec![],
        ),
        (
            "require_auth: none refused",
            list(&[&port], ""),
            vec![p("PGREQUIREAUTH", "none")],
        ),
        (
            "channel_binding=require without TLS",
            list(&[&port], "channel_binding=require"),
            vec![],
        ),
        (
            "load_balance_hosts=random",
            list(&[&port, &port], "load_balance_hosts=random"),
            vec![],
        ),
        (
            "PGLOADBALANCEHOSTS",
            list(&[&port], ""),
            vec![p("PGLOADBALANCEHOSTS", "sometimes")],
        ),
    ];
    let cases: Vec<OracleCase> = cases
        .into_iter()
        .map(|(name, conninfo, env)| (name, conninfo, env, home.as_path()))
        .collect();
    let differ = libpq_differences(&cases, &since_16, CANARY);
    assert!(differ.is_empty(), "{differ:#?}");
    // The application name the string gives is the one the doctor's session ran under (the server
    // logs it with every statement); its own name only where none is given.
    let log = pg.log();
    let ran_as = |app: &str| {
        log.lines().any(|l| {
            l.contains(&format!("app={app} "))
                && l.contains("current_setting('server_version_num')")
        })
    };
    assert!(ran_as("team-dashboard"), "{log}");
    assert!(ran_as("prefect-doctor"), "{log}");
}

/// libpq's `connect_timeout` (and `PGCONNECT_TIMEOUT`) against a server that takes the connection
/// and never speaks: libpq gives up after it, and so does the doctor (well within its own longer
/// `--timeout`); a value that is not an integer is refused by both.
#[test]
fn connect_timeout_is_honoured_as_libpq_honours_it() {
    // Accepts and says nothing, as a stuck server or a proxy with nothing behind it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            keep.lock().expect("held").push(c);
        }
    });
    let home = tempfile::tempdir().expect("home");
    let env_timeout: Env = vec![("PGCONNECT_TIMEOUT", "2".to_string())];
    for (conninfo, env) in [
        (
            format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=2"),
            Env::new(),
        ),
        (
            format!("host=127.0.0.1 port={port} user=u dbname=d"),
            env_timeout,
        ),
    ] {
        let started = std::time::Instant::now();
        let libpq = psql_connects(Some(&conninfo), &env, home.path());
        let libpq_took = started.elapsed();
        let e = libpq.expect_err("libpq connects to a silent server");
        assert!(e.contains("timeout expired"), "{e}");
        let mut cmd = support::doctor();
        cmd.env("HOME", home.path());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let out = cmd
            .args([
                "check",
                "-o",
                "json",
                "--only",
                "db.reachable",
                "--timeout",
                "30s",
                "--database-url",
                &conninfo,
            ])
            .output()
            .expect("run");
        let took = started.elapsed();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        let r = support::result_in(&json, "db.reachable");
        assert_eq!(r["status"], "fail", "{r}");
        // It waited the connect timeout (2 s), however late the busy machine let it say so.
        let m = r["message"].as_str().unwrap_or("");
        let waited: f64 = m
            .split("timed out after ")
            .nth(1)
            .and_then(|rest| rest.split('s').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no wait in {r}"));
        assert!((2.0..15.0).contains(&waited), "{r}");
        // Both gave up at the connect timeout, not the doctor's own 30 s.
        assert!(
            libpq_took < std::time::Duration::from_secs(15),
            "{libpq_took:?}"
        );
        assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    }
    // Not an integer: both refuse, the doctor as a usage error naming the option.
    let bad = format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=soon");
    let e = psql_connects(Some(&bad), &[], home.path()).expect_err("libpq refuses");
    assert!(
        e.contains("invalid integer value \"soon\" for connection option \"connect_timeout\""),
        "{e}"
    );
    let out = support::doctor()
        .env("HOME", home.path())
        .args(["check", "--only", "db.reachable", "--database-url", &bad])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid integer value \"soon\" for connection option \"connect_timeout\""),
        "{err}"
    );
}
