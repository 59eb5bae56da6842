//! The PostgreSQL probe: one connection per run, opened once and shared by every database check, so a
//! dead server costs one timeout, not one per check.
//!
//! The connection is made in phases (DNS, TCP, TLS and startup), each under the same overall deadline,
//! so a failure says precisely where it happened. The stream is opened by a [`Dialer`], which lets
//! other transports (a Kubernetes port-forward) stand in for TCP.

use std::{
    fmt, io,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::OnceCell,
    time::timeout_at,
};
use tokio_postgres::{Client, error::SqlState, types::ToSql};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use super::pg_row::Row;
use super::pg_target::{DbTarget, SslMode};
use super::tape::{PgAnswer, PgInfo, TapeMode, params_key};

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
}

impl ConnectFailure {
    /// Did a PostgreSQL server answer at all?
    pub fn server_answered(&self) -> bool {
        match self {
            ConnectFailure::NoPassword => true,
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
        }
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
            ConnectFailure::Config { detail } => f.write_str(detail),
        }
    }
}

/// Opens the byte stream to the server. The default dials TCP (or a Unix socket); a Kubernetes
/// port-forward can stand in.
pub trait Dialer: Send + Sync {
    fn dial<'a>(
        &'a self,
        target: &'a DbTarget,
        deadline: tokio::time::Instant,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>>;
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A dialer shared between the probes of several `--wait` rounds.
impl Dialer for std::sync::Arc<dyn Dialer> {
    fn dial<'a>(
        &'a self,
        target: &'a DbTarget,
        deadline: tokio::time::Instant,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>> {
        self.as_ref().dial(target, deadline)
    }
}

/// The most bytes read from a database server in one session. Every query of the checks returns a
/// few rows; a server that sends a 10 MiB error or an endless message is cut off here, whatever
/// the client library would buffer.
pub const MAX_SESSION_READ: u64 = 32 * 1024 * 1024;

/// Dials TCP (or a Unix socket when the host is a directory).
pub struct NetDialer;

impl Dialer for NetDialer {
    fn dial<'a>(
        &'a self,
        target: &'a DbTarget,
        deadline: tokio::time::Instant,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>> {
        Box::pin(dial_net(target, deadline))
    }
}

async fn dial_net(
    target: &DbTarget,
    deadline: tokio::time::Instant,
) -> Result<Box<dyn Stream>, ConnectFailure> {
    let start = tokio::time::Instant::now();
    let elapsed = || start.elapsed();
    if target.is_unix_socket() {
        let path = target.address();
        return match timeout_at(deadline, tokio::net::UnixStream::connect(&path)).await {
            Err(_) => Err(ConnectFailure::Timeout {
                phase: Phase::Tcp,
                after: elapsed(),
            }),
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                Err(ConnectFailure::Refused)
            }
            Ok(Err(e)) => Err(ConnectFailure::Network {
                peer: None,
                detail: io_detail(&e),
            }),
        };
    }
    let addrs: Vec<std::net::SocketAddr> = match timeout_at(
        deadline,
        tokio::net::lookup_host((target.host.as_str(), target.port)),
    )
    .await
    {
        Err(_) => {
            return Err(ConnectFailure::Timeout {
                phase: Phase::Dns,
                after: elapsed(),
            });
        }
        Ok(Err(e)) => {
            return Err(ConnectFailure::Dns {
                host: target.host.clone(),
                detail: io_detail(&e),
            });
        }
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return Err(ConnectFailure::Dns {
            host: target.host.clone(),
            detail: "no addresses".to_string(),
        });
    }
    let mut last = None;
    for addr in &addrs {
        match timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ConnectFailure::Timeout {
                    phase: Phase::Tcp,
                    after: elapsed(),
                });
            }
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(Box::new(s));
            }
            Ok(Err(e)) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((_, e)) if e.kind() == io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
        Some((addr, e)) => ConnectFailure::Network {
            peer: Some(addr.to_string()),
            detail: io_detail(&e),
        },
        None => ConnectFailure::Network {
            peer: None,
            detail: "no address could be tried".into(),
        },
    })
}

fn io_detail(e: &io::Error) -> String {
    // Drop the "(os error N)" suffix: it helps nobody reading a report.
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// An open, authenticated session and what we learned while opening it.
pub struct PgSession {
    /// The connection (`None` when the session is replayed from a bundle).
    client: Option<Client>,
    /// Where its answers are kept, or come from.
    tape: TapeMode,
    pub server_version_num: i32,
    pub server_version: String,
    pub current_user: String,
    pub database: String,
    pub tls: bool,
    pub connect_ms: u64,
    /// Each statement's answer, asked once per session: two checks asking the same (the Hasura
    /// checks' schema owner and role) share one round trip. A session is one round of checks.
    answers: std::sync::Mutex<std::collections::HashMap<MemoKey, Arc<OnceCell<Answer>>>>,
    /// One user query at a time on a session ([`PgProbe::isolated`]): its transaction is ended
    /// before the next begins.
    turn: tokio::sync::Mutex<()>,
    /// Set when the session's read cap closed the connection.
    over_cap: Arc<std::sync::atomic::AtomicBool>,
}

type MemoKey = (String, Vec<String>);
type Answer = Result<Vec<Row>, QueryError>;
/// Statements whose answers a session keeps; past this, each is asked as it comes.
const MAX_KEPT: usize = 128;

impl PgSession {
    /// The connection, for `fix`'s statements (none when replayed).
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    fn info(&self) -> PgInfo {
        PgInfo {
            server_version_num: self.server_version_num,
            server_version: self.server_version.clone(),
            current_user: self.current_user.clone(),
            database: self.database.clone(),
            tls: self.tls,
            connect_ms: self.connect_ms,
        }
    }

    fn replayed(info: PgInfo, tape: TapeMode) -> PgSession {
        PgSession {
            turn: tokio::sync::Mutex::new(()),
            over_cap: Arc::default(),
            client: None,
            tape,
            server_version_num: info.server_version_num,
            server_version: info.server_version,
            current_user: info.current_user,
            database: info.database,
            tls: info.tls,
            connect_ms: info.connect_ms,
            answers: Default::default(),
        }
    }

    fn no_client() -> QueryError {
        QueryError {
            code: None,
            message: "no connection".to_string(),
        }
    }

    /// Runs a user check's query (one SELECT, as its parse re-wrote it) so that it can only read:
    /// in one message (no other query of the run comes between its statements), in a transaction
    /// that PostgreSQL itself keeps read-only, under `statement_timeout`. Returns the rows as one
    /// JSON array text, at most `cap + 1` rows (one more says the cap was hit).
    pub async fn read_only_rows(
        &self,
        query: &str,
        timeout: std::time::Duration,
        cap: usize,
    ) -> Result<String, QueryError> {
        let key = vec![format!("cap {cap}")];
        if let TapeMode::Replay(tape) = &self.tape {
            return match tape.pg(query, &key) {
                PgAnswer::Json(j) => Ok(j),
                PgAnswer::Error(e) => Err(e),
                PgAnswer::Rows(_) => Err(QueryError {
                    code: None,
                    message: "the bundle holds rows where JSON was expected".to_string(),
                }),
            };
        }
        let ms = timeout.as_millis().clamp(1, 600_000);
        // A transaction of its own, always rolled back: whatever the query changed in the session
        // (a set_config, say) is undone before the next user check; on an error, the ROLLBACK the
        // batch did not reach is sent at once, under the same turn.
        let batch = format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}; \
             SELECT coalesce(json_agg(capped), '[]'::json)::text \
             FROM (SELECT * FROM ({query}) AS user_rows LIMIT {}) AS capped; ROLLBACK",
            cap.saturating_add(1)
        );
        let client = self.client.as_ref().ok_or_else(Self::no_client)?;
        let turn = self.turn.lock().await;
        let sent = client.simple_query(&batch).await;
        if sent.is_err() {
            let _ = client.simple_query("ROLLBACK").await;
        }
        drop(turn);
        let result = sent
            .map_err(|e| {
                if self.over_cap.load(std::sync::atomic::Ordering::Relaxed) {
                    QueryError {
                        code: None,
                        message: format!(
                            "the answer passed the {} MiB a database session reads, so the \
                             connection was closed; select fewer or smaller values",
                            MAX_SESSION_READ / (1024 * 1024)
                        ),
                    }
                } else {
                    QueryError::from(e)
                }
            })
            .map(|messages| {
                messages
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    })
                    .unwrap_or_else(|| "[]".to_string())
            });
        self.record(query, key, &result, |j| PgAnswer::Json(j.clone()));
        result
    }

    /// Keeps an answer when recording.
    fn record<T>(
        &self,
        sql: &str,
        key: Vec<String>,
        result: &Result<T, QueryError>,
        kept: impl FnOnce(&T) -> PgAnswer,
    ) {
        if let TapeMode::Record(rec) = &self.tape {
            let answer = match result {
                Ok(v) => kept(v),
                Err(e) => PgAnswer::Error(e.clone()),
            };
            rec.pg(sql, key, answer);
        }
    }

    /// Runs a read-only query.
    pub fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> futures::future::BoxFuture<'a, Result<Vec<Row>, QueryError>> {
        Box::pin(async move {
            if let TapeMode::Replay(tape) = &self.tape {
                return match tape.pg(sql, &params_key(params)) {
                    PgAnswer::Rows(r) => Ok(r),
                    PgAnswer::Error(e) => Err(e),
                    PgAnswer::Json(_) => Err(QueryError {
                        code: None,
                        message: "the bundle holds JSON where rows were expected".to_string(),
                    }),
                };
            }
            let key = (sql.to_string(), params_key(params));
            let cell = self.answers.lock().ok().and_then(|mut kept| {
                if let Some(c) = kept.get(&key) {
                    return Some(c.clone());
                }
                (kept.len() < MAX_KEPT).then(|| kept.entry(key.clone()).or_default().clone())
            });
            match cell {
                Some(c) => c.get_or_init(|| self.ask(sql, params, key)).await.clone(),
                None => self.ask(sql, params, key).await,
            }
        })
    }

    /// Asks the server (and records the answer when recording).
    async fn ask(&self, sql: &str, params: &[&(dyn ToSql + Sync)], (_, key): MemoKey) -> Answer {
        let client = self.client.as_ref().ok_or_else(Self::no_client)?;
        // Without parameters, in one round trip (parse, bind and execute sent together) instead
        // of three (prepare, execute, close a prepared statement).
        let rows = if params.is_empty() {
            client.query_typed(sql, &[]).await
        } else {
            client.query(sql, params).await
        };
        let result = rows
            .map(|rows| rows.iter().map(Row::from_pg).collect::<Vec<_>>())
            .map_err(QueryError::from);
        self.record(sql, key, &result, |r| PgAnswer::Rows(r.clone()));
        result
    }

    pub fn evidence(&self) -> Value {
        json!({
            "server_version": self.server_version,
            "server_version_num": self.server_version_num,
            "user": self.current_user,
            "database": self.database,
            "tls": self.tls,
        })
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
                message: error_chain(&e),
            },
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// Connects to `target` within `timeout`, through `dialer`.
pub async fn connect(
    target: &DbTarget,
    dialer: &dyn Dialer,
    timeout: Duration,
) -> Result<PgSession, ConnectFailure> {
    let started = Instant::now();
    // The connection string's connect_timeout, as libpq honours it, when it is the shorter.
    let timeout = target.connect_timeout.map_or(timeout, |c| c.min(timeout));
    let deadline = crate::bounded::deadline_in(timeout);
    let tls =
        super::pg_tls::tls_connector(target).map_err(|detail| ConnectFailure::Config { detail })?;
    let capped =
        crate::bounded::Capped::new(dialer.dial(target, deadline).await?, MAX_SESSION_READ);
    let over_cap = capped.tripped();
    let stream: Box<dyn Stream> = Box::new(capped);

    let mut config = tokio_postgres::Config::new();
    config
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name("prefect-doctor")
        .ssl_mode(match target.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
    if let Some(p) = &target.password {
        config.password(p.expose());
    }
    let server_name = if target.is_unix_socket() {
        "localhost".to_string()
    } else {
        target.host.clone()
    };
    let tls = {
        use tokio_postgres::tls::MakeTlsConnect;
        let mut make = tls;
        <MakeRustlsConnect as MakeTlsConnect<Box<dyn Stream>>>::make_tls_connect(
            &mut make,
            &server_name,
        )
        .map_err(|e| ConnectFailure::Tls {
            detail: error_chain(&e),
        })?
    };
    let (client, connection) = match timeout_at(deadline, startup(&config, stream, tls)).await {
        Err(_) => {
            return Err(ConnectFailure::Timeout {
                phase: Phase::Startup,
                after: started.elapsed(),
            });
        }
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        // The connection's own errors surface through the client's queries.
        let _ = connection.await;
    });
    let info = timeout_at(
        deadline,
        client.query_typed(
            "SELECT current_setting('server_version_num')::int4, current_setting('server_version'), \
             current_user::text, current_database()::text, \
             coalesce((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()), false)",
            &[],
        ),
    )
    .await;
    let row = match info {
        Err(_) => {
            return Err(ConnectFailure::Timeout {
                phase: Phase::Startup,
                after: started.elapsed(),
            });
        }
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(rows)) => match rows.into_iter().next() {
            Some(row) => row,
            None => {
                return Err(ConnectFailure::NotPostgres {
                    detail: "no row for `SELECT current_setting('server_version_num')`".to_string(),
                });
            }
        },
    };
    Ok(PgSession {
        turn: tokio::sync::Mutex::new(()),
        over_cap,
        tape: TapeMode::Live,
        server_version_num: row.try_get(0).unwrap_or_default(),
        server_version: row.try_get(1).unwrap_or_default(),
        current_user: row.try_get(2).unwrap_or_default(),
        database: row.try_get(3).unwrap_or_default(),
        tls: row.try_get(4).unwrap_or_default(),
        client: Some(client),
        connect_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        answers: Default::default(),
    })
}

/// The TLS and startup handshake, boxed as `Send` (the unboxed future's borrow of `config` trips the
/// compiler's higher-ranked `Send` inference).
#[allow(clippy::type_complexity)]
fn startup<'a, T>(
    config: &'a tokio_postgres::Config,
    stream: Box<dyn Stream>,
    tls: T,
) -> futures::future::BoxFuture<
    'a,
    Result<
        (
            Client,
            tokio_postgres::Connection<Box<dyn Stream>, T::Stream>,
        ),
        tokio_postgres::Error,
    >,
>
where
    T: tokio_postgres::tls::TlsConnect<Box<dyn Stream>> + Send + 'a,
    T::Stream: Send,
    T::Future: Send,
{
    Box::pin(config.connect_raw(stream, tls))
}

fn classify(e: &tokio_postgres::Error) -> ConnectFailure {
    if let Some(db) = e.as_db_error() {
        return ConnectFailure::Server {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        };
    }
    let text = error_chain(e);
    // A refusal inside the session: a direct connection's is told by the dialer, so this is a
    // forwarded one the pod's port did not take (probes/forward_stream.rs).
    let mut forward_refused = false;
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            forward_refused = true;
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return ConnectFailure::Tls { detail: text };
        }
        if let Some(io) = s.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && inner.downcast_ref::<rustls::Error>().is_some()
        {
            return ConnectFailure::Tls { detail: text };
        }
        src = s.source();
    }
    if text.contains("password missing") {
        ConnectFailure::NoPassword
    } else if text.contains("TLS") {
        ConnectFailure::Tls { detail: text }
    } else if forward_refused {
        ConnectFailure::Network {
            peer: None,
            detail: text,
        }
    } else if [
        "unexpected message",
        "unexpected response",
        "invalid message",
        "bytes remaining",
        "error parsing",
        "unexpected EOF",
        "early eof",
        "connection closed",
    ]
    .iter()
    .any(|sig| text.contains(sig))
    {
        ConnectFailure::NotPostgres { detail: text }
    } else {
        ConnectFailure::Network {
            peer: None,
            detail: text,
        }
    }
}

/// The shared, lazily opened database connection of one run.
pub struct PgProbe {
    target: DbTarget,
    dialer: Arc<dyn Dialer>,
    timeout: Duration,
    tape: TapeMode,
    session: std::sync::OnceLock<Opening>,
}

/// A session being opened (or opened), awaited by every check that asks for it.
type Opening = futures::future::Shared<
    futures::future::BoxFuture<'static, Result<Arc<PgSession>, ConnectFailure>>,
>;

impl PgProbe {
    pub fn new(target: DbTarget, dialer: Box<dyn Dialer>, timeout: Duration) -> PgProbe {
        PgProbe {
            target,
            dialer: Arc::from(dialer),
            timeout,
            tape: TapeMode::Live,
            session: std::sync::OnceLock::new(),
        }
    }

    /// Records every answer, or answers from a bundle (see [`crate::probes::tape`]).
    pub fn with_tape(mut self, tape: TapeMode) -> PgProbe {
        self.tape = tape;
        self
    }

    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// Starts opening the session: from the tape on replay, else a connection in its own task.
    /// `main`: the run's session, whose opening a recording keeps (the user checks' own session
    /// records its answers, not its opening).
    fn open(&self, main: bool) -> Opening {
        let tape = self.tape.clone();
        if let TapeMode::Replay(t) = &tape {
            let r = t
                .pg_session()
                .map(|info| Arc::new(PgSession::replayed(info, tape.clone())));
            return super::shared_ready(r);
        }
        let (target, dialer, timeout) = (self.target.clone(), self.dialer.clone(), self.timeout);
        super::shared_task(
            async move {
                let r = connect(&target, dialer.as_ref(), timeout).await;
                match &tape {
                    TapeMode::Record(rec) => {
                        if main {
                            rec.pg_session(match &r {
                                Ok(s) => Ok(s.info()),
                                Err(e) => Err(e.clone()),
                            });
                        }
                        r.map(|mut s| {
                            s.tape = tape.clone();
                            Arc::new(s)
                        })
                    }
                    _ => r.map(Arc::new),
                }
            },
            |e| {
                Err(ConnectFailure::Network {
                    peer: None,
                    detail: format!("the connection attempt stopped: {e}"),
                })
            },
        )
    }

    /// The session, connecting on first use. Concurrent callers share one attempt, which runs as a
    /// task of its own: a caller that is dropped mid-way (`tenant.exists` stops its database read
    /// when the API answers first) neither wastes the connection nor makes the next caller open
    /// another.
    pub fn session(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        self.await_opening(self.session.get_or_init(|| self.open(true)).clone())
    }

    /// A session of its own, opened for one user check and closed after it, its query in a
    /// read-only transaction that is rolled back: nothing a user query does to its session (or an
    /// answer that closes it) reaches the built-in checks or another user check.
    pub fn isolated(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        self.await_opening(self.open(false))
    }

    fn await_opening(
        &self,
        opening: Opening,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        Box::pin(async move {
            let result = opening.await;
            // Every check that shares a missing session is told, not only the first.
            if let (TapeMode::Replay(_), Err(ConnectFailure::Config { detail })) =
                (&self.tape, &result)
                && detail == super::tape::NOT_IN_BUNDLE
            {
                super::tape::missed("the database session".to_string());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A dialer that counts its calls and answers, slowly, that nothing listens.
    struct Counting(Arc<AtomicUsize>);

    impl Dialer for Counting {
        fn dial<'a>(
            &'a self,
            _target: &'a DbTarget,
            _deadline: tokio::time::Instant,
        ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(ConnectFailure::Refused)
            })
        }
    }

    #[tokio::test]
    async fn a_caller_dropped_mid_connect_neither_stops_it_nor_makes_another() {
        let dials = Arc::new(AtomicUsize::new(0));
        let target = DbTarget::resolve(
            Some("postgres://prefect@db.invalid:5432/prefect"),
            &std::collections::BTreeMap::new(),
        )
        .expect("target");
        let probe = PgProbe::new(
            target,
            Box::new(Counting(dials.clone())),
            Duration::from_secs(2),
        );
        // The first asker gives up (as tenant.exists does when the API answers first).
        assert!(
            tokio::time::timeout(Duration::from_millis(20), probe.session())
                .await
                .is_err()
        );
        // The next ones get the same attempt's answer.
        let (a, b) = tokio::join!(probe.session(), probe.session());
        assert!(matches!(a, Err(ConnectFailure::Refused)), "{:?}", a.err());
        assert!(matches!(b, Err(ConnectFailure::Refused)));
        assert_eq!(dials.load(Ordering::SeqCst), 1);
    }
}
