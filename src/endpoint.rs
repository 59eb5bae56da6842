//! The HTTP endpoint `serve` answers on: `GET /metrics` (the last run in the Prometheus text
//! format), `GET /report.json` (the last report) and `GET /healthz`. Bounded: at most
//! [`MAX_CONNECTIONS`] at once, a request's head read within [`HEAD_TIMEOUT`], bodies never read;
//! on shutdown it stops accepting and gives open connections [`DRAIN`] to finish.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};

pub const MAX_CONNECTIONS: usize = 64;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
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

/// Serves `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    latest: Shared,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Over the cap: the connection is closed at once.
                let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                let latest = latest.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let r = answer(&latest, req.method(), req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
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
