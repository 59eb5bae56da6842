//! Where the database is and how to log in: a libpq-compatible connection target.
//!
//! Resolution follows libpq: parameters from the connection string (URL or `key=value`), then the
//! standard `PG*` environment variables, then `~/.pgpass` for the password. When neither a connection
//! string nor any `PG*` variable is given, the local `prefect server start` default is used:
//! `postgres://prefect:test-password@localhost:5432/prefect_server`.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use percent_encoding::utf8_percent_encode;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        crate::redact::register(&s);
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, TargetError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(TargetError(format!(
                    "invalid sslmode {other:?}: expected disable, allow, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the target's parameters came from, for the report header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TargetSource {
    Flag,
    Environment,
    PrefectDefault,
    /// The prefect CLI's `server.database.connection_url`, set by the user.
    PrefectConfig,
}

impl TargetSource {
    pub fn describe(self) -> &'static str {
        match self {
            TargetSource::Flag => "--database-url",
            TargetSource::Environment => "PG* environment variables",
            TargetSource::PrefectDefault => "`prefect server start` default",
            TargetSource::PrefectConfig => {
                "the prefect configuration's server.database.connection_url"
            }
        }
    }
}

/// Serialized (into a support bundle) without its password.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DbTarget {
    /// A host name, an IP address, or an absolute Unix-socket directory.
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(skip)]
    pub password: Option<Secret>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub source: TargetSource,
    /// Where the password came from (`connection string`, `PGPASSWORD`, a pgpass file), if any.
    pub password_source: Option<String>,
    /// libpq's `connect_timeout` (`PGCONNECT_TIMEOUT`): the most the connection may take, when
    /// shorter than `--timeout`.
    #[serde(default)]
    pub connect_timeout: Option<std::time::Duration>,
}

/// `connect_timeout` as libpq reads it: whole seconds; zero or less waits as long as it takes (here:
/// `--timeout`); 1 is taken as 2, libpq's least.
fn connect_timeout(value: &str) -> Result<Option<std::time::Duration>, TargetError> {
    let n: i64 = value.trim().parse().map_err(|_| {
        TargetError(format!(
            "invalid integer value {:?} for connection option \"connect_timeout\"",
            crate::untrusted::cap(value, 40)
        ))
    })?;
    Ok(match n {
        i64::MIN..=0 => None,
        1 => Some(std::time::Duration::from_secs(2)),
        n => Some(std::time::Duration::from_secs(n.unsigned_abs())),
    })
}

pub use super::conninfo::TargetError;
use super::conninfo::{
    IGNORED_PARAMS, KNOWN_PARAMS, USERINFO, describe_key, parse_conninfo, pgpass_lookup,
};

pub const PREFECT_DEFAULT_URL: &str =
    "postgres://prefect:test-password@localhost:5432/prefect_server";

/// The environment, as a lookup function so tests need not touch the process environment.
pub trait Env {
    /// A variable, when set to something other than the empty string (libpq's reading).
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable in the environment's order, empty values included (Python's `os.environ`).
    fn vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The home directory of `user`, or of the current user for `None`, from the password database.
    fn home_of(&self, _user: Option<&str>) -> Option<String> {
        None
    }
    /// The operating-system user's name, from the password database: libpq's default database
    /// user (it does not read `USER`).
    fn os_user(&self) -> Option<String> {
        None
    }
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn vars(&self) -> Vec<(String, String)> {
        // Variables that are not UTF-8 are passed over (Prefect's keys and values are text).
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
    fn home_of(&self, user: Option<&str>) -> Option<String> {
        passwd_home(user)
    }
    fn os_user(&self) -> Option<String> {
        passwd_name()
    }
}

/// The name of this process's effective user in the password database, as libpq asks it
/// (`getpwuid(geteuid())`).
fn passwd_name() -> Option<String> {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the buffers given.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

/// A home directory from `/etc/passwd` (bounded like every small file read): `user`'s, or for `None`
/// the one of this process's user id.
fn passwd_home(user: Option<&str>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let text = crate::bounded::read_text(
        Path::new("/etc/passwd"),
        crate::bounded::MAX_CONFIG_FILE,
        "password database",
    )
    .ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let hit = match user {
            Some(u) => f.first() == Some(&u),
            None => f.get(2) == Some(&uid.as_str()),
        };
        (hit && f.len() >= 6).then(|| f[5].to_string())
    })
}

/// A test's environment; its `USER` stands for the operating-system user.
impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn os_user(&self) -> Option<String> {
        self.get("USER").cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

const PG_ENV: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGPASSFILE", "passfile"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
];

impl DbTarget {
    /// Resolves the target from an optional connection string and the environment.
    /// The database the prefect configuration names (`server.database.connection_url`), read as
    /// `--database-url` would be.
    pub fn resolve_configured(url: &str, env: &dyn Env) -> Result<DbTarget, TargetError> {
        let mut t = DbTarget::resolve(Some(url), env)?;
        t.source = TargetSource::PrefectConfig;
        Ok(t)
    }

    pub fn resolve(conninfo: Option<&str>, env: &dyn Env) -> Result<DbTarget, TargetError> {
        let env_params: BTreeMap<&str, String> = PG_ENV
            .iter()
            .filter_map(|(var, key)| env.var(var).map(|v| (*key, v)))
            .collect();
        let service_env = env.var("PGSERVICE");
        let (mut params, source) = match conninfo {
            Some(ci) => (parse_conninfo(ci)?, TargetSource::Flag),
            None if !env_params.is_empty() || service_env.is_some() => {
                (BTreeMap::new(), TargetSource::Environment)
            }
            None => (
                parse_conninfo(PREFECT_DEFAULT_URL)?,
                TargetSource::PrefectDefault,
            ),
        };
        let mut password_source = params
            .contains_key("password")
            .then(|| "connection string".to_string());
        // As libpq: a service's settings (`service=` or PGSERVICE) fill what the string left out,
        // before the PG* variables do.
        if let Some(service) = params.remove("service").or(service_env) {
            let (found, file) = super::conninfo::service_params(&service, env)?;
            for (key, value) in found {
                if let std::collections::btree_map::Entry::Vacant(slot) = params.entry(key) {
                    if slot.key() == "password" {
                        password_source = Some(format!("service {service:?} in {file}"));
                    }
                    slot.insert(value);
                }
            }
        }
        for (key, value) in env_params {
            if !params.contains_key(key) {
                if key == "password" {
                    password_source = Some("PGPASSWORD".to_string());
                }
                params.insert(key.to_string(), value);
            }
        }
        for key in params.keys() {
            if !KNOWN_PARAMS.contains(&key.as_str()) && !IGNORED_PARAMS.contains(&key.as_str()) {
                return Err(TargetError(format!(
                    "unknown connection parameter {}",
                    describe_key(key)
                )));
            }
        }
        let host = params
            .get("hostaddr")
            .or(params.get("host"))
            .cloned()
            .unwrap_or_else(|| "localhost".to_string());
        if host.contains(',') {
            return Err(TargetError(
                "several hosts in one connection string are not supported; give the primary's"
                    .into(),
            ));
        }
        let port = match params.get("port") {
            None => 5432,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| TargetError(format!("invalid port {p:?}")))?,
        };
        let user = match params.get("user") {
            Some(u) => u.clone(),
            // libpq's default: the operating-system user (not the USER variable).
            None => env.os_user().ok_or_else(|| {
                TargetError(
                    "no database user given, and this process's user has no name in the password \
                     database (set user= or PGUSER)"
                        .into(),
                )
            })?,
        };
        let dbname = params
            .get("dbname")
            .cloned()
            .unwrap_or_else(|| user.clone());
        let sslmode = match params.get("sslmode") {
            Some(m) => SslMode::parse(m)?,
            None => SslMode::Prefer,
        };
        let mut password = params.get("password").map(|p| Secret::new(p.clone()));
        if password.is_none() {
            let passfile = params
                .get("passfile")
                .map(PathBuf::from)
                .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")));
            if let Some(path) = passfile
                && let Some(p) = pgpass_lookup(&path, &host, port, &dbname, &user)
            {
                password = Some(Secret::new(p));
                password_source = Some(path.display().to_string());
            }
        }
        Ok(DbTarget {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert: params.get("sslrootcert").cloned(),
            sslcert: params.get("sslcert").map(PathBuf::from),
            sslkey: params.get("sslkey").map(PathBuf::from),
            source,
            password_source,
            connect_timeout: params
                .get("connect_timeout")
                .map(|v| connect_timeout(v))
                .transpose()?
                .flatten(),
        })
    }

    /// A target read from the chart's settings rather than a connection string: libpq's default
    /// `sslmode=prefer`, no client certificate.
    pub fn from_chart(
        host: String,
        port: u16,
        user: String,
        dbname: String,
        password: Option<Secret>,
        password_source: Option<String>,
    ) -> DbTarget {
        DbTarget {
            host,
            port,
            user,
            password,
            dbname,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            source: TargetSource::Flag,
            password_source,
            connect_timeout: None,
        }
    }

    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// `host:port`, or the socket path.
    pub fn address(&self) -> String {
        if self.is_unix_socket() {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The target as a URL with the password masked: safe to print.
    pub fn masked_url(&self) -> String {
        let user = utf8_percent_encode(&self.user, USERINFO);
        let auth = if self.password.is_some() {
            format!("{user}:****@")
        } else {
            format!("{user}@")
        };
        let host = if self.is_unix_socket() {
            utf8_percent_encode(&self.host, USERINFO).to_string()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let db = utf8_percent_encode(&self.dbname, USERINFO);
        let mut url = format!("postgres://{auth}{host}:{}/{db}", self.port);
        if self.sslmode != SslMode::Prefer {
            url.push_str("?sslmode=");
            url.push_str(self.sslmode.as_str());
        }
        url
    }
}

#[cfg(test)]
mod tests {
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
            ("postgres://u:hunter2@h1,h2/d", "several hosts"),
        ] {
            let err = DbTarget::resolve(Some(ci), &e).unwrap_err().to_string();
            assert!(err.contains(expect), "{ci}: {err}");
            assert!(!err.contains("hunter2"), "{ci}: {err}");
        }
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
}
