//! libpq as the oracle of the database target: libpq 18 through psycopg's `pq` module, Debian's
//! `psql` (libpq 15), and the doctor asked the same; what each connected to, compared.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// What a libpq connection got: the user and database the server says, where it connected
/// (libpq's `PQhost`:`PQport`, the host of the list it kept, or the socket's path) and whether TLS is
/// on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub user: String,
    pub database: String,
    pub address: String,
    pub tls: bool,
}

/// The statement both oracles ask once connected.
const WHO: &str = "SELECT current_user, current_database(), \
                   coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)";

fn connected(user: &str, db: &str, pq_host: &str, port: &str, tls: bool) -> Connected {
    let address = if pq_host.starts_with('/') {
        format!("{}/.s.PGSQL.{port}", pq_host.trim_end_matches('/'))
    } else if pq_host.contains(':') {
        format!("[{pq_host}]:{port}")
    } else {
        format!("{pq_host}:{port}")
    };
    Connected {
        user: user.to_string(),
        database: db.to_string(),
        address,
        tls,
    }
}

/// libpq 15 (Debian's psql) connecting to a target (a string, the environment, `HOME`): what it
/// got, or its refusal.
pub fn psql_connects(
    conninfo: Option<&str>,
    env: &[(&str, String)],
    home: &Path,
) -> Result<Connected, String> {
    let mut cmd = Command::new("psql");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .args(["-X", "-At", "-w", "-F", "|"]);
    if let Some(c) = conninfo {
        cmd.arg(c);
    }
    // psql's HOST and PORT are libpq's PQhost and PQport of the connection it kept.
    cmd.args(["-c", WHO, "-c", r"\echo :HOST|:PORT"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("psql runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout).replace('\n', "|");
    let f: Vec<&str> = text.split('|').collect();
    Ok(connected(f[0], f[1], f[3], f[4], f[2] == "t"))
}

/// The newest libpq: the one psycopg's binary wheel bundles (18 at psycopg 3.3.9), driven through
/// psycopg's low-level `pq` module, which is libpq's own `PQconnectdb`. It knows what libpq 15 does
/// not (`require_auth`, `load_balance_hosts`, `sslrootcert=system`).
const LIBPQ_PY: &str = r#"
import json, sys
from psycopg import pq
c = pq.PGconn.connect(sys.argv[1].encode() if len(sys.argv) > 1 else b"")
if c.status != pq.ConnStatus.OK:
    print(json.dumps({"error": c.error_message.decode("utf-8", "replace").strip()}))
    sys.exit(0)
r = c.exec_(sys.stdin.read().encode())
v = [r.get_value(0, i).decode() for i in range(3)]
print(json.dumps({"row": v, "host": (c.host or b"").decode(), "port": (c.port or b"").decode(),
                  "libpq": pq.version()}))
"#;

/// The pinned psycopg whose wheel brings the newest libpq.
pub const PSYCOPG: &str = "psycopg[binary]==3.3.9";

/// The Python with psycopg's libpq: `PREFECT_DOCTOR_LIBPQ_VENV` (which `.ci/run` prepares), else a
/// virtualenv made under the test's target directory. `None` (said on stderr) where it cannot be
/// installed, unless `PREFECT_DOCTOR_LIBPQ_REQUIRED` is set.
pub fn libpq_python() -> Option<PathBuf> {
    static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let works = |python: &Path| {
                Command::new(python)
                    .args(["-c", "from psycopg import pq; pq.version()"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if let Ok(dir) = std::env::var("PREFECT_DOCTOR_LIBPQ_VENV") {
                let python = Path::new(&dir).join("bin/python");
                if works(&python) {
                    return Some(python);
                }
            }
            // (The sandbox example shares this file; it has no test target directory.)
            let dir = option_env!("CARGO_TARGET_TMPDIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join("libpq-oracle-venv");
            let python = dir.join("bin/python");
            if !works(&python) {
                let made = Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&dir)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new("timeout")
                        .arg("300")
                        .arg(dir.join("bin/pip"))
                        .args(["install", "--quiet", "--disable-pip-version-check", PSYCOPG])
                        .status()
                        .is_ok_and(|s| s.success());
                if !made || !works(&python) {
                    assert!(
                        std::env::var_os("PREFECT_DOCTOR_LIBPQ_REQUIRED").is_none(),
                        "{PSYCOPG} could not be installed, and PREFECT_DOCTOR_LIBPQ_REQUIRED is set"
                    );
                    eprintln!(
                        "the newest libpq ({PSYCOPG}) could not be installed: its oracle is skipped"
                    );
                    return None;
                }
            }
            Some(python)
        })
        .clone()
}

/// The newest libpq connecting to a target: what it got, or its refusal.
pub fn libpq_connects(
    python: &Path,
    conninfo: Option<&str>,
    env: &[(&str, String)],
    home: &Path,
) -> Result<Connected, String> {
    let mut cmd = Command::new(python);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .args(["-c", LIBPQ_PY]);
    if let Some(c) = conninfo {
        cmd.arg(c);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), WHO.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("libpq oracle: {}", String::from_utf8_lossy(&out.stderr)));
    if let Some(e) = v["error"].as_str() {
        return Err(e.to_string());
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let row = |i: usize| v["row"][i].as_str().unwrap_or("").to_string();
    Ok(connected(
        &row(0),
        &row(1),
        &s("host"),
        &s("port"),
        row(2) == "t",
    ))
}

/// What the doctor connects as for a target: the user, database, address and TLS db.reachable
/// reports of the session it opened, once db.password says it logged in.
pub fn doctor_connects(
    conninfo: Option<&str>,
    env: &[(&str, String)],
    home: &std::path::Path,
) -> Result<Connected, String> {
    let mut cmd = super::doctor();
    cmd.env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "check",
        "-o",
        "json",
        "--only",
        "db.reachable",
        "--only",
        "db.password",
        "--timeout",
        "5s",
    ]);
    if let Some(c) = conninfo {
        cmd.args(["--database-url", c]);
    }
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| stderr.clone())?;
    let password = super::result_in(&json, "db.password");
    let reachable = super::result_in(&json, "db.reachable");
    if password["status"] != "pass" {
        let m = |r: &serde_json::Value| r["message"].as_str().unwrap_or("").to_string();
        return Err(format!("{} / {}", m(reachable), m(password)));
    }
    let e = &reachable["evidence"];
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    Ok(Connected {
        user: s("user"),
        database: s("database"),
        address: s("connected"),
        tls: e["tls"] == true,
    })
}

/// A target for the libpq oracle: its name, connection string, variables and home directory.
pub type OracleCase<'a> = (
    &'a str,
    Option<String>,
    Vec<(&'static str, String)>,
    &'a Path,
);

/// Each target connected by the doctor and by libpq (the newest; Debian's psql too unless the case
/// is in `since_16`): where they differ, said. Same means both connected as the same user, to the
/// same database, host and port, with the same TLS, or both refused. No doctor answer may hold
/// `canary`.
pub fn libpq_differences(cases: &[OracleCase], since_16: &[&str], canary: &str) -> Vec<String> {
    let python = libpq_python();
    let mut differ = Vec::new();
    for (name, conninfo, env, home) in cases {
        let doctor = doctor_connects(conninfo.as_deref(), env, home);
        let psql = psql_connects(conninfo.as_deref(), env, home);
        let newest = python
            .as_deref()
            .map(|py| libpq_connects(py, conninfo.as_deref(), env, home));
        eprintln!("{name}\n  libpq 18 {newest:?}\n  libpq 15 {psql:?}\n  doctor   {doctor:?}");
        let same = |libpq: &Result<Connected, String>| match (libpq, &doctor) {
            (Ok(l), Ok(d)) => l == d,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if let Some(newest) = &newest
            && !same(newest)
        {
            differ.push(format!(
                "{name}: libpq 18 {newest:?}, the doctor {doctor:?}"
            ));
        }
        if !since_16.contains(name) && !same(&psql) {
            differ.push(format!("{name}: libpq 15 {psql:?}, the doctor {doctor:?}"));
        }
        assert!(!format!("{doctor:?}").contains(canary), "{name}");
    }
    differ
}
