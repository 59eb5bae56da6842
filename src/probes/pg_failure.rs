//! What a PostgreSQL probe answers when it fails: why a connection could not be made
//! ([`ConnectFailure`], in the phase it failed) and why a query did ([`QueryError`]). Kept apart from
//! the probe so the tape that records and replays them need not know the probe.

use std::{fmt, time::Duration};

use tokio_postgres::error::SqlState;

/// Where in the connection sequence something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    Dns,
    Tcp,
    Startup,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Dns => "resolving the host name",
            Phase::Tcp => "opening the TCP connection",
            Phase::Startup => {
                "waiting for the server to answer the TLS/startup handshake (the TCP connection was accepted)"
            }
        }
    }
}

/// Why a connection could not be made. Never holds the password. Says what happened, not where:
/// the caller knows the target's address and names it once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ConnectFailure {
    /// The host name does not resolve.
    Dns { host: String, detail: String },
    /// Connection refused: nothing listens there.
    Refused,
    /// Out of time in some phase.
    Timeout { phase: Phase, after: Duration },
    /// Another network error (unreachable, reset …); `peer` is the resolved address that failed,
    /// when it says more than the target's own address.
    Network {
        peer: Option<String>,
        detail: String,
    },
    /// TLS could not be negotiated or the certificate was rejected.
    Tls { detail: String },
    /// Something answered, but not as PostgreSQL does.
    NotPostgres { detail: String },
    /// The server answered with an error during startup (authentication, no database …).
    Server {
        code: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// The server asked for a password and none was given.
    NoPassword,
    /// Local configuration problem (unreadable CA file …).
    Config { detail: String },
    /// The server asked for an authentication method `require_auth` does not allow; nothing was
    /// sent.
    AuthMethod { detail: String },
    /// Logged in, but the server is not what `target_session_attrs` asks for.
    SessionNotKept { reason: String, attrs: String },
    /// Every host of a list failed, each for its reason.
    Hosts { tried: Vec<Tried> },
}

/// One host of a list and why it failed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tried {
    pub address: String,
    pub message: String,
}

impl ConnectFailure {
    /// Did a PostgreSQL server answer at all?
    pub fn server_answered(&self) -> bool {
        match self {
            ConnectFailure::NoPassword | ConnectFailure::AuthMethod { .. } => true,
            ConnectFailure::Server { code, .. } => {
                // Starting up, shutting down or in recovery: there is a server, but nothing works yet.
                code != SqlState::CANNOT_CONNECT_NOW.code()
            }
            _ => false,
        }
    }

    /// A short category for evidence and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectFailure::Dns { .. } => "dns",
            ConnectFailure::Refused => "refused",
            ConnectFailure::Timeout { .. } => "timeout",
            ConnectFailure::Network { .. } => "network",
            ConnectFailure::Tls { .. } => "tls",
            ConnectFailure::NotPostgres { .. } => "not-postgres",
            ConnectFailure::Server { .. } => "server-error",
            ConnectFailure::NoPassword => "no-password",
            ConnectFailure::Config { .. } => "config",
            ConnectFailure::AuthMethod { .. } => "require-auth",
            ConnectFailure::SessionNotKept { .. } => "target-session-attrs",
            ConnectFailure::Hosts { .. } => "hosts",
        }
    }

    /// Whether the next host of a list is not tried after this (libpq: once a server answered and
    /// refused the login, or the local configuration is wrong).
    pub(super) fn ends_the_attempt(&self) -> bool {
        matches!(self, ConnectFailure::Config { .. }) || self.server_answered()
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Dns { host, detail } => {
                write!(f, "the host name {host:?} does not resolve: {detail}")
            }
            ConnectFailure::Refused => {
                f.write_str("connection refused (nothing is listening there)")
            }
            ConnectFailure::Timeout { phase, after } => {
                write!(
                    f,
                    "timed out after {} {}",
                    crate::untrusted::duration(*after),
                    phase.describe()
                )
            }
            ConnectFailure::Network {
                peer: Some(peer),
                detail,
            } => write!(f, "{peer}: {detail}"),
            ConnectFailure::Network { peer: None, detail } => f.write_str(detail),
            ConnectFailure::Tls { detail } => write!(f, "TLS failed: {detail}"),
            ConnectFailure::NotPostgres { detail } => {
                write!(
                    f,
                    "something answered, but not as a PostgreSQL server does: {detail}"
                )
            }
            ConnectFailure::Server { code, message, .. } => {
                write!(f, "{message} (SQLSTATE {code})")
            }
            ConnectFailure::NoPassword => {
                f.write_str("the server asks for a password and none was given")
            }
            ConnectFailure::Config { detail } | ConnectFailure::AuthMethod { detail } => {
                f.write_str(detail)
            }
            ConnectFailure::SessionNotKept { reason, attrs } => {
                write!(f, "{reason} (target_session_attrs={attrs})")
            }
            ConnectFailure::Hosts { tried } => {
                f.write_str("no host of the list gave a session: ")?;
                for (i, t) in tried.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{}: {}", t.address, t.message)?;
                }
                Ok(())
            }
        }
    }
}

/// A query failed. The message is the server's (never contains parameters we sent).
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct QueryError {
    pub code: Option<String>,
    pub message: String,
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(e: tokio_postgres::Error) -> QueryError {
        match e.as_db_error() {
            Some(db) => QueryError {
                code: Some(db.code().code().to_string()),
                message: format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            },
            None => QueryError {
                code: None,
                message: super::error_text::chain(&e),
            },
        }
    }
}
