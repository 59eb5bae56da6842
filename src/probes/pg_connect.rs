//! Opening a PostgreSQL connection: the byte stream (a [`Dialer`]), TLS and the startup handshake,
//! each phase under one deadline, and why an attempt failed ([`ConnectFailure`]).

use std::{
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::timeout_at,
};
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_auth::{AuthGuard, AuthRefused, GuardedTls};
pub use super::pg_failure::{ConnectFailure, Phase, Tried};
use super::pg_target::{ChannelBinding, DbTarget, SessionAttrs, SslMode};
use super::tape::PgInfo;

/// Opens the byte stream to the server. The default dials TCP (or a Unix socket); a Kubernetes
/// port-forward can stand in.
pub trait Dialer: Send + Sync {
    fn dial<'a>(
        &'a self,
        target: &'a DbTarget,
        deadline: tokio::time::Instant,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>>;

    /// How its connections go when not straight to the host: "through the port-forward to pod …".
    fn route(&self) -> Option<String> {
        None
    }
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

    fn route(&self) -> Option<String> {
        self.as_ref().route()
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
        tokio::net::lookup_host((
            target.hostaddr.as_deref().unwrap_or(&target.host),
            target.port,
        )),
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

/// A connection just opened: the client, the flag its stream sets when it passes the read cap, and
/// what was learned while opening it.
pub struct Opened {
    pub client: Client,
    pub over_cap: Arc<std::sync::atomic::AtomicBool>,
    pub info: PgInfo,
}

/// Connects to `target` within `timeout`, through `dialer`: to each host of its list in turn, as
/// libpq does, until one gives a session `target_session_attrs` keeps. A host that cannot be reached
/// (or whose session is not kept) passes to the next; a server that answers and refuses the login
/// ends the attempt. `connect_timeout` bounds each host, `timeout` them all.
pub async fn connect(
    target: &DbTarget,
    dialer: &dyn Dialer,
    timeout: Duration,
) -> Result<Opened, ConnectFailure> {
    let deadline = crate::bounded::deadline_in(timeout);
    // The roots and client identity are the target's, whichever host: read once.
    let tls =
        super::pg_tls::tls_connector(target).map_err(|detail| ConnectFailure::Config { detail })?;
    let hosts = target.candidates();
    let mut tried = Vec::new();
    // prefer-standby: a first pass keeps only a standby, a second any server.
    let passes = match target.session_attrs {
        SessionAttrs::PreferStandby => vec![SessionAttrs::PreferStandby, SessionAttrs::Any],
        one => vec![one],
    };
    for attrs in passes {
        for host in &hosts {
            // The connection string's connect_timeout, per host as libpq's, when it is the sooner.
            let by = target
                .connect_timeout
                .map_or(deadline, |c| deadline.min(crate::bounded::deadline_in(c)));
            match connect_one(host, dialer, by, attrs, tls.clone()).await {
                Ok(session) => return Ok(session),
                Err(e) if e.ends_the_attempt() => return Err(e),
                Err(e) => tried.push((host.address(), e)),
            }
        }
    }
    if tried.len() == 1 {
        return Err(tried.remove(0).1);
    }
    Err(ConnectFailure::Hosts {
        tried: tried
            .into_iter()
            .map(|(address, e)| Tried {
                address,
                message: e.to_string(),
            })
            .collect(),
    })
}

/// One host's connection: dial, TLS, startup, then what the server is.
async fn connect_one(
    target: &DbTarget,
    dialer: &dyn Dialer,
    deadline: tokio::time::Instant,
    attrs: SessionAttrs,
    tls: MakeRustlsConnect,
) -> Result<Opened, ConnectFailure> {
    let started = Instant::now();
    let policy = target.require_auth.clone().map(Arc::new);
    let capped =
        crate::bounded::Capped::new(dialer.dial(target, deadline).await?, MAX_SESSION_READ);
    let over_cap = capped.tripped();
    let stream: Box<dyn Stream> = Box::new(AuthGuard::new(capped, policy.clone()));

    let mut config = tokio_postgres::Config::new();
    config
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(
            target
                .application_name
                .as_deref()
                .unwrap_or("prefect-doctor"),
        )
        .channel_binding(match target.channel_binding {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
        })
        .ssl_mode(match target.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
    if let Some(o) = &target.options {
        config.options(o);
    }
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
            detail: super::error_text::chain(&e),
        })?
    };
    let tls = GuardedTls { inner: tls, policy };
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
             coalesce((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()), false), \
             current_setting('transaction_read_only') = 'on', pg_catalog.pg_is_in_recovery()",
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
    let (read_only, standby): (bool, bool) = (
        row.try_get(5).unwrap_or_default(),
        row.try_get(6).unwrap_or_default(),
    );
    if let Some(reason) = attrs.refuses(read_only, standby) {
        return Err(ConnectFailure::SessionNotKept {
            reason: reason.to_string(),
            attrs: target.session_attrs.as_str().to_string(),
        });
    }
    let info = PgInfo {
        server_version_num: row.try_get(0).unwrap_or_default(),
        server_version: row.try_get(1).unwrap_or_default(),
        current_user: row.try_get(2).unwrap_or_default(),
        database: row.try_get(3).unwrap_or_default(),
        tls: row.try_get(4).unwrap_or_default(),
        connect_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        address: target.address(),
    };
    Ok(Opened {
        client,
        over_cap,
        info,
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
    let text = super::error_text::chain(e);
    // A refusal inside the session: a direct connection's is told by the dialer, so this is a
    // forwarded one the pod's port did not take (probes/forward_stream.rs).
    let mut forward_refused = false;
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && let Some(refused) = io.get_ref().and_then(|i| i.downcast_ref::<AuthRefused>())
        {
            return ConnectFailure::AuthMethod {
                detail: refused.0.clone(),
            };
        }
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
