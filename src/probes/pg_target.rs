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

pub use super::pg_hosts::SessionAttrs;

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
    /// libpq's `hostaddr`: the address the connection is opened to, `host` still the name TLS
    /// verifies and the password file matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostaddr: Option<String>,
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
    /// The hosts after the first (libpq's host lists), tried in order when the one before cannot
    /// be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
    /// `target_session_attrs`: which server a host must be for its session to be kept.
    #[serde(default)]
    pub session_attrs: SessionAttrs,
    /// `application_name` (`PGAPPNAME`); the doctor's own name when none is given, as libpq's
    /// `fallback_application_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// `options` (`PGOPTIONS`): command-line options the server applies to the session. Not kept in a
    /// bundle (it may name anything).
    #[serde(skip)]
    pub options: Option<String>,
    /// `require_auth` (`PGREQUIREAUTH`): the authentication methods the server may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_auth: Option<super::pg_auth::RequireAuth>,
    /// `channel_binding` (`PGCHANNELBINDING`): whether SCRAM must bind to the TLS channel.
    #[serde(default)]
    pub channel_binding: ChannelBinding,
}

/// A host after the first of a list, with the password found for it (pgpass lines name hosts).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fallback {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostaddr: Option<String>,
    pub port: u16,
    #[serde(skip)]
    pub password: Option<Secret>,
    pub password_source: Option<String>,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelBinding {
    Disable,
    #[default]
    Prefer,
    Require,
}

impl ChannelBinding {
    fn parse(value: &str) -> Result<ChannelBinding, TargetError> {
        Ok(match value {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            other => {
                return Err(TargetError(format!(
                    "invalid channel_binding value: {:?}",
                    crate::untrusted::cap(other, 40)
                )));
            }
        })
    }
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
    IGNORED_PARAMS, KNOWN_PARAMS, USERINFO, describe_key, parse_conninfo, pgpass_find, pgpass_read,
};

pub const PREFECT_DEFAULT_URL: &str =
    "postgres://prefect:test-password@localhost:5432/prefect_server";

pub use super::pg_env::{Env, ProcessEnv};

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
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
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
        let mut hosts = super::pg_hosts::host_list(
            params.get("host").map(String::as_str),
            params.get("hostaddr").map(String::as_str),
            params.get("port").map(String::as_str),
        )?;
        super::pg_hosts::load_balance(
            params.get("load_balance_hosts").map(String::as_str),
            &mut hosts,
        )?;
        let mut hosts = hosts.into_iter();
        let first = hosts.next().unwrap_or(super::pg_hosts::HostEntry {
            host: "localhost".to_string(),
            addr: None,
            port: 5432,
        });
        let (host, hostaddr, port) = (first.host, first.addr, first.port);
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
        // libpq 16: the system's roots make verify-full the default, and refuse a weaker mode.
        let sslmode = match (
            params.get("sslmode"),
            params.get("sslrootcert").map(String::as_str),
        ) {
            (None, Some("system")) => SslMode::VerifyFull,
            (Some(m), Some("system")) => match SslMode::parse(m)? {
                SslMode::VerifyFull => SslMode::VerifyFull,
                weak => {
                    return Err(TargetError(format!(
                        "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                        weak.as_str()
                    )));
                }
            },
            (Some(m), _) => SslMode::parse(m)?,
            (None, _) => SslMode::Prefer,
        };
        let password = params.get("password").map(|p| Secret::new(p.clone()));
        let passfile = params
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")));
        // As libpq: a password not given is looked up in the password file (read once) for each
        // host.
        let pgpass = match (&password, &passfile) {
            (None, Some(path)) => pgpass_read(path).map(|text| (path, text)),
            _ => None,
        };
        let lookup = |host: &str, port: u16| -> (Option<Secret>, Option<String>) {
            if password.is_some() {
                return (password.clone(), password_source.clone());
            }
            match &pgpass {
                Some((path, text)) => match pgpass_find(text, host, port, &dbname, &user) {
                    Some(p) => (Some(Secret::new(p)), Some(path.display().to_string())),
                    None => (None, None),
                },
                None => (None, None),
            }
        };
        let fallbacks = hosts
            .map(|h| {
                let (password, password_source) = lookup(&h.host, h.port);
                Fallback {
                    host: h.host,
                    hostaddr: h.addr,
                    port: h.port,
                    password,
                    password_source,
                }
            })
            .collect();
        let (password, password_source) = lookup(&host, port);
        let text = |k: &str| params.get(k).map(String::as_str);
        Ok(DbTarget {
            host,
            hostaddr,
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
            fallbacks,
            session_attrs: text("target_session_attrs")
                .map(SessionAttrs::parse)
                .transpose()?
                .unwrap_or_default(),
            application_name: params.get("application_name").cloned(),
            options: params.get("options").cloned(),
            require_auth: text("require_auth")
                .map(super::pg_auth::RequireAuth::parse)
                .transpose()?,
            channel_binding: text("channel_binding")
                .map(ChannelBinding::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The target once per host of its list, in the order they are tried.
    pub fn candidates(&self) -> Vec<DbTarget> {
        let first = DbTarget {
            fallbacks: Vec::new(),
            ..self.clone()
        };
        let rest = self.fallbacks.iter().map(|f| DbTarget {
            host: f.host.clone(),
            hostaddr: f.hostaddr.clone(),
            port: f.port,
            password: f.password.clone(),
            password_source: f.password_source.clone(),
            ..first.clone()
        });
        std::iter::once(first.clone()).chain(rest).collect()
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
            hostaddr: None,
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
            fallbacks: Vec::new(),
            session_attrs: SessionAttrs::Any,
            application_name: None,
            options: None,
            require_auth: None,
            channel_binding: ChannelBinding::Prefer,
        }
    }

    pub fn is_unix_socket(&self) -> bool {
        self.hostaddr.is_none() && self.host.starts_with('/')
    }

    /// `host:port`, or the socket path; every host of a list, in order.
    pub fn address(&self) -> String {
        std::iter::once((self.host.as_str(), self.port))
            .chain(self.fallbacks.iter().map(|f| (f.host.as_str(), f.port)))
            .map(|(host, port)| one_address(host, port))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The target as a URL with the password masked: safe to print.
    pub fn masked_url(&self) -> String {
        let user = utf8_percent_encode(&self.user, USERINFO);
        let auth = if self.password.is_some() {
            format!("{user}:****@")
        } else {
            format!("{user}@")
        };
        let hosts = std::iter::once((self.host.as_str(), self.port))
            .chain(self.fallbacks.iter().map(|f| (f.host.as_str(), f.port)))
            .map(|(host, port)| {
                let host = if host.starts_with('/') {
                    utf8_percent_encode(host, USERINFO).to_string()
                } else if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                format!("{host}:{port}")
            })
            .collect::<Vec<_>>()
            .join(",");
        let db = utf8_percent_encode(&self.dbname, USERINFO);
        let mut query = Vec::new();
        if self.sslmode != SslMode::Prefer {
            query.push(format!("sslmode={}", self.sslmode.as_str()));
        }
        if self.session_attrs != SessionAttrs::Any {
            query.push(format!(
                "target_session_attrs={}",
                self.session_attrs.as_str()
            ));
        }
        if let Some(r) = &self.require_auth {
            query.push(format!(
                "require_auth={}",
                utf8_percent_encode(&r.text, USERINFO)
            ));
        }
        if self.channel_binding != ChannelBinding::Prefer {
            query.push(format!(
                "channel_binding={}",
                match self.channel_binding {
                    ChannelBinding::Disable => "disable",
                    ChannelBinding::Prefer => "prefer",
                    ChannelBinding::Require => "require",
                }
            ));
        }
        let mut url = format!("postgres://{auth}{hosts}/{db}");
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
}

/// One host's address: `host:port`, `[v6]:port`, or a Unix socket's path.
fn one_address(host: &str, port: u16) -> String {
    if host.starts_with('/') {
        format!("{}/.s.PGSQL.{port}", host.trim_end_matches('/'))
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
#[path = "pg_target_tests.rs"]
mod tests;
