//! The database target read from strings, variables and files (pg_target.rs).

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn prefect_default_when_nothing_given() {
    let t = DbTarget::resolve(None, &env(&[("HOME", "/nonexistent")])).unwrap();
    assert_eq!((t.host.as_str(), t.port), ("localhost", 5432));
    assert_eq!(
        (t.user.as_str(), t.dbname.as_str()),
        ("prefect", "prefect_server")
    );
    assert_eq!(
        t.password.as_ref().map(Secret::expose),
        Some("test-password")
    );
    assert_eq!(t.source, TargetSource::PrefectDefault);
    assert_eq!(
        t.masked_url(),
        "postgres://prefect:****@localhost:5432/prefect_server"
    );
}

#[test]
fn url_with_everything() {
    let t = DbTarget::resolve(
        Some("postgresql://pre%40fect:p%40ss:w@db.example.com:6543/my%20db?sslmode=verify-full&sslrootcert=/ca.pem"),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(t.user, "pre@fect");
    assert_eq!(t.password.as_ref().map(Secret::expose), Some("p@ss:w"));
    assert_eq!(
        (t.host.as_str(), t.port, t.dbname.as_str()),
        ("db.example.com", 6543, "my db")
    );
    assert_eq!(t.sslmode, SslMode::VerifyFull);
    assert_eq!(t.sslrootcert.as_deref(), Some("/ca.pem"));
    assert_eq!(
        t.masked_url(),
        "postgres://pre%40fect:****@db.example.com:6543/my%20db?sslmode=verify-full"
    );
    assert!(!format!("{t:?}").contains("p@ss"));
}

#[test]
fn url_ipv6_and_socket() {
    let t = DbTarget::resolve(Some("postgres://u@[::1]:5433/d"), &env(&[])).unwrap();
    assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
    assert_eq!(t.address(), "[::1]:5433");
    let t = DbTarget::resolve(
        Some("postgres:///d?host=/var/run/postgresql&user=u"),
        &env(&[]),
    )
    .unwrap();
    assert!(t.is_unix_socket());
    assert_eq!(t.address(), "/var/run/postgresql/.s.PGSQL.5432");
}

#[test]
fn keyvalue_with_quotes() {
    let t = DbTarget::resolve(
        Some(r"host=db port = 5433 user=prefect password='it\'s secret' dbname=prefect"),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(t.password.as_ref().map(Secret::expose), Some("it's secret"));
    assert_eq!((t.host.as_str(), t.port), ("db", 5433));
}

#[test]
fn env_fills_gaps_and_replaces_default() {
    let e = env(&[
        ("PGHOST", "h"),
        ("PGUSER", "alice"),
        ("PGPASSWORD", "pw"),
        ("HOME", "/x"),
    ]);
    let t = DbTarget::resolve(None, &e).unwrap();
    assert_eq!(t.source, TargetSource::Environment);
    assert_eq!(
        (t.host.as_str(), t.user.as_str(), t.dbname.as_str()),
        ("h", "alice", "alice")
    );
    assert_eq!(t.password_source.as_deref(), Some("PGPASSWORD"));
    // A connection string wins over the environment.
    let t = DbTarget::resolve(Some("postgres://bob@other/db"), &e).unwrap();
    assert_eq!((t.host.as_str(), t.user.as_str()), ("other", "bob"));
    assert_eq!(t.password.as_ref().map(Secret::expose), Some("pw"));
}

#[test]
fn bad_input_is_a_clear_error_without_the_password() {
    let e = env(&[]);
    for (ci, expect) in [
        ("postgres://u:hunter2@h:99999/d", "invalid port"),
        ("postgres://u:hunter2@h/d?sslmode=bogus", "invalid sslmode"),
        ("host=h password='hunter2", "unterminated quoted value"),
        ("host=h hunter2", "missing \"=\""),
        ("mysql://u:hunter2@h/d", "must start with postgres://"),
        (
            "postgres://u:hunter2@h/d?sslmdoe=1",
            "unknown connection parameter \"sslmdoe\" (did you mean \"sslmode\"?)",
        ),
        (
            "host=h password=hunter2 x=1",
            "unknown connection parameter (its name is not shown",
        ),
        (
            "postgres://u:p@h/d?hunter2=1",
            "unknown connection parameter (its name is not shown",
        ),
        (
            "host=h1,h2,h3 port=1,2 password=hunter2",
            "could not match 2 port numbers to 3 hosts",
        ),
        (
            "postgres://u:hunter2@h/d?target_session_attrs=master",
            "invalid target_session_attrs",
        ),
        (
            "postgres://u:hunter2@h/d?require_auth=md5,!password",
            "cannot be mixed",
        ),
    ] {
        let err = DbTarget::resolve(Some(ci), &e).unwrap_err().to_string();
        assert!(err.contains(expect), "{ci}: {err}");
        assert!(!err.contains("hunter2"), "{ci}: {err}");
    }
}

#[test]
fn host_lists_as_libpq_reads_them() {
    let e = env(&[("HOME", "/nonexistent")]);
    let t = DbTarget::resolve(
        Some("postgres://u:pw@a:1,[::1]:2,c/d?target_session_attrs=read-write"),
        &e,
    )
    .unwrap();
    let all: Vec<(String, u16)> = t
        .candidates()
        .iter()
        .map(|c| (c.host.clone(), c.port))
        .collect();
    assert_eq!(
        all,
        [("a".into(), 1), ("::1".into(), 2), ("c".into(), 5432)]
    );
    assert!(t.candidates().iter().all(|c| c.fallbacks.is_empty()));
    assert_eq!(t.address(), "a:1, [::1]:2, c:5432");
    assert_eq!(
        t.masked_url(),
        "postgres://u:****@a:1,[::1]:2,c:5432/d?target_session_attrs=read-write"
    );
    let t = DbTarget::resolve(Some("host=a,b port=7 user=u dbname=d"), &e).unwrap();
    assert_eq!((t.port, t.fallbacks[0].port), (7, 7));
}

#[test]
fn pgpass_is_used_when_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".pgpass");
    std::fs::write(
        &path,
        "# comment\nother:*:*:*:no\ndb:5432:*:prefect:from\\:pgpass\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home = dir.path().to_str().unwrap();
    let t = DbTarget::resolve(
        Some("postgres://prefect@db/prefect"),
        &env(&[("HOME", home)]),
    )
    .unwrap();
    assert_eq!(t.password.as_ref().map(Secret::expose), Some("from:pgpass"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let t = DbTarget::resolve(
        Some("postgres://prefect@db/prefect"),
        &env(&[("HOME", home)]),
    )
    .unwrap();
    assert!(
        t.password.is_none(),
        "a world-readable pgpass is ignored, as libpq does"
    );
}
