//! The HTTP endpoint `serve` answers on: `GET /metrics` (the last run in the Prometheus text
//! format), `GET /report.json` (the last report) and `GET /healthz`.
//!
//! Anyone who reaches the port may be hostile, and the liveness probe asks `/healthz` here: a
//! well-behaved client must be answered whatever the others do. So, as hardened HTTP servers do:
//! a connection budget ([`MAX_CONNECTIONS`]) far above what scrapes need, and at the budget the
//! *oldest* connection is closed to make room (a new connection is never refused because slow
//! ones exist); the whole request head within [`HEAD_TIMEOUT`]; every connection closed after
//! [`MAX_LIFETIME`] whatever it is doing (idle keep-alive, a client that never reads its
//! answers, a write that cannot progress); [`MAX_BUF`] of buffer per connection; bodies never
//! read. On shutdown it stops accepting and gives open connections [`DRAIN`] to finish.

use std::{
    collections::VecDeque,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};

/// Connections held at once; past it the oldest is closed.
pub const MAX_CONNECTIONS: usize = 512;
/// The request head, all of it, within this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection's whole life: a scrape takes milliseconds, a keep-alive scraper reconnects.
pub const MAX_LIFETIME: Duration = Duration::from_secs(20);
/// Read and write buffer of one connection (hyper's floor is 8 KiB).
pub const MAX_BUF: usize = 16 * 1024;
pub const DRAIN: Duration = Duration::from_secs(5);

/// What the endpoint serves: the last run's outputs, already redacted and rendered.
#[derive(Default)]
pub struct Latest {
    /// How many runs have ended.
    pub runs: u64,
    pub report_json: Option<String>,
    pub metrics: Option<String>,
}

pub type Shared = Arc<Mutex<Latest>>;

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// The answer to one request.
pub fn answer(latest: &Shared, method: &Method, path: &str) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let known = matches!(path, "/metrics" | "/report.json" | "/healthz");
    if !known {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: GET /metrics, /report.json or /healthz\n".into(),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET (and HEAD)\n".into(),
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let (metrics, report) = match latest.lock() {
        Ok(l) => (l.metrics.clone(), l.report_json.clone()),
        Err(_) => (None, None),
    };
    let first_run = || {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "the first run has not ended yet\n".into(),
        )
    };
    match path {
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
        "/metrics" => metrics.map_or_else(first_run, |m| {
            reply(
                StatusCode::OK,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                m,
            )
        }),
        _ => report.map_or_else(first_run, |r| reply(StatusCode::OK, "application/json", r)),
    }
}

/// The open connections, oldest first: at the budget the oldest is closed.
#[derive(Default)]
struct Open {
    next: u64,
    conns: VecDeque<(u64, tokio::task::AbortHandle)>,
}

impl Open {
    fn lock(this: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
        match this.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    latest: Shared,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open: Arc<Mutex<Open>> = Arc::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors or a connection reset before accept: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let latest = latest.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let r = answer(&latest, req.method(), req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_BUF)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                let mut book = Open::lock(&open);
                let id = book.next;
                book.next += 1;
                let forget = open.clone();
                let task = tokio::spawn(async move {
                    let _ = tokio::time::timeout(MAX_LIFETIME, conn).await;
                    Open::lock(&forget).conns.retain(|(c, _)| *c != id);
                });
                book.conns.push_back((id, task.abort_handle()));
                while book.conns.len() > MAX_CONNECTIONS {
                    if let Some((_, oldest)) = book.conns.pop_front() {
                        oldest.abort();
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    for (_, c) in Open::lock(&open).conns.drain(..) {
        c.abort();
    }
}

/// Resolves on SIGTERM or SIGINT (or at once if they cannot be listened for).
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
