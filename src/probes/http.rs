//! The HTTP probe: every request the API and UI checks make goes through here.
//!
//! - One deadline per request, covering connect, every redirect and the body: a server that accepts
//!   and never answers costs one `--timeout`.
//! - Identical requests made by several checks are sent once per run (the result is shared), so a
//!   dead endpoint costs one timeout, not one per check.
//! - Bodies are capped ([`MAX_BODY`]); redirects are followed by hand, at most [`MAX_REDIRECTS`],
//!   each one recorded so that reports can say where a request really went.
//! - TLS is rustls with the program's one crypto provider and the system's roots; `insecure` turns
//!   certificate verification off (the report says so).
//! - Proxies come from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), as reqwest does.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, header};
use tokio::time::timeout_at;
use url::Url;

use super::tls::{NoVerify, crypto_provider, native_roots};

/// The largest body read; a bigger one is an error (a misrouted download, a log dump …).
pub const MAX_BODY: usize = 1 << 20;
pub use super::http_exchange::{Method, Request, Response};
use super::http_failure::classify;
pub use super::http_failure::{Hop, HttpFailure, HttpPhase, MAX_REDIRECTS, proxy_for};

/// The `User-Agent` of every request.
pub fn user_agent() -> String {
    format!("prefect-doctor/{}", env!("CARGO_PKG_VERSION"))
}

/// A connection closed on a local port-forward says the forward's reason instead, when the forward
/// kept one (its pod's port refused, the API server could not reach the kubelet …).
fn through_forward(failure: HttpFailure, url: &Url) -> HttpFailure {
    if !matches!(
        failure,
        HttpFailure::Network { .. } | HttpFailure::NotHttp { .. }
    ) {
        return failure;
    }
    let local = match (url.host(), url.port_or_known_default()) {
        (Some(url::Host::Ipv4(ip)), Some(port)) if ip.is_loopback() => {
            std::net::SocketAddr::from((ip, port))
        }
        _ => return failure,
    };
    match super::forward::why_closed(local) {
        Some(detail) => HttpFailure::Forward { detail },
        None => failure,
    }
}

/// `--resolve HOST:PORT:ADDR`, as curl's: reach HOST at ADDR instead of asking DNS.
pub fn parse_resolve(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let mut parts = s.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(
            "expected HOST:PORT:ADDR, e.g. prefect.example.com:443:203.0.113.7".to_string(),
        );
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let ip: std::net::IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    Ok((
        host.to_ascii_lowercase(),
        std::net::SocketAddr::new(ip, port),
    ))
}

/// Request settings of a run.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub timeout: Duration,
    pub insecure: bool,
    /// Host names answered from here instead of DNS (`--resolve`, as curl's).
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

/// An exchange under way (or done), awaited by every check that asks for it.
type Fetching = futures::future::Shared<
    futures::future::BoxFuture<'static, Result<Arc<Response>, HttpFailure>>,
>;

/// The HTTP client of one run.
pub struct HttpProbe {
    client: Result<reqwest::Client, String>,
    opts: HttpOptions,
    cache: Mutex<HashMap<Request, Fetching>>,
    tape: super::tape::TapeMode,
}

impl HttpProbe {
    pub fn new(opts: HttpOptions) -> HttpProbe {
        // A proxy's credentials are secrets from the moment the environment is read.
        for var in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            if let Ok(v) = std::env::var(var) {
                crate::redact::register_url_credentials(&v);
            }
        }
        HttpProbe {
            client: build_client(&opts),
            opts,
            cache: Mutex::new(HashMap::new()),
            tape: super::tape::TapeMode::Live,
        }
    }

    /// Records every exchange, or answers from a bundle (see [`crate::probes::tape`]).
    pub fn with_tape(mut self, tape: super::tape::TapeMode) -> HttpProbe {
        self.tape = tape;
        self
    }

    /// Sends `req` (once per run: later callers share the first answer). The exchange runs as a
    /// task of its own, so a caller dropped mid-way (`tenant.exists` stops asking the API when the
    /// database answers first) neither cuts it short nor makes the next caller send it again.
    pub async fn fetch(&self, req: &Request) -> Result<Arc<Response>, HttpFailure> {
        let fetching = {
            let mut cache = match self.cache.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            cache
                .entry(req.clone())
                .or_insert_with(|| self.start(req))
                .clone()
        };
        let result = fetching.await;
        use super::tape::TapeMode;
        // Every check that shares a missing answer is told, not only the first to ask.
        if let (TapeMode::Replay(_), Err(HttpFailure::Network { detail })) = (&self.tape, &result)
            && detail == super::tape::NOT_IN_BUNDLE
        {
            super::tape::missed(format!("{} {}", req.method.as_str(), req.url));
        }
        result
    }

    /// Starts one exchange: from the tape on replay, else a request in its own task.
    fn start(&self, req: &Request) -> Fetching {
        use super::tape::TapeMode;
        let tape = self.tape.clone();
        if let TapeMode::Replay(t) = &tape {
            return super::shared_ready(t.http(req).map(Arc::new));
        }
        let (client, timeout, req) = (self.client.clone(), self.opts.timeout, req.clone());
        super::shared_task(
            async move {
                let r = send(client, timeout, &req).await.map(Arc::new);
                if let TapeMode::Record(rec) = &tape {
                    rec.http(&req, &r);
                }
                r
            },
            |e| {
                Err(HttpFailure::Network {
                    detail: format!("the request stopped: {e}"),
                })
            },
        )
    }
}

async fn send(
    client: Result<reqwest::Client, String>,
    timeout: Duration,
    req: &Request,
) -> Result<Response, HttpFailure> {
    let client = client.as_ref().map_err(|e| HttpFailure::Network {
        detail: format!("cannot set up the HTTP client: {e}"),
    })?;
    let started = Instant::now();
    let deadline = crate::bounded::deadline_in(timeout);
    // reqwest's own time-outs (at the deadline) fire first and tell the phase; this is a backstop.
    let backstop = deadline + Duration::from_millis(150);
    let mut method = req.method;
    let mut body = req.body.clone();
    let mut url = req.url.clone();
    let mut hops: Vec<Hop> = Vec::new();
    let mut seen: HashSet<Url> = HashSet::from([url.clone()]);
    loop {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpFailure::InvalidUrl {
                detail: format!("{url} is not an http(s) URL"),
            });
        }
        let mut builder = client.request(method.as_reqwest(), url.clone());
        for (name, value) in &req.headers {
            if method == Method::Get && body.is_none() && *name == "content-type" {
                continue;
            }
            if let Ok(v) = HeaderValue::from_str(value) {
                builder = builder.header(*name, v);
            }
        }
        if let Some(b) = &body {
            builder = builder.body(b.clone());
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let send = builder
            .timeout(remaining + Duration::from_millis(100))
            .send();
        let mut resp = match timeout_at(backstop, send).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(through_forward(classify(&e, &url, timeout), &url)),
            Err(_) => {
                return Err(HttpFailure::Timeout {
                    phase: HttpPhase::Response,
                    after: timeout,
                });
            }
        };
        let status = resp.status().as_u16();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let Some(location) = resp.headers().get(header::LOCATION) else {
                return Err(HttpFailure::BadRedirect {
                    status,
                    detail: "no Location header".to_string(),
                });
            };
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| HttpFailure::BadRedirect {
                    status,
                    detail: "an invalid Location header".to_string(),
                })?;
            hops.push(Hop {
                status,
                from: url.clone(),
                to: next.clone(),
            });
            if !seen.insert(next.clone()) {
                return Err(HttpFailure::RedirectLoop { hops });
            }
            if hops.len() > MAX_REDIRECTS {
                return Err(HttpFailure::TooManyRedirects { hops });
            }
            // As browsers do: 303, and 301/302 after a POST, continue as a GET without body.
            if status == 303 || (matches!(status, 301 | 302) && method == Method::Post) {
                method = Method::Get;
                body = None;
            }
            url = next;
            continue;
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(HttpFailure::TooLarge { limit: MAX_BODY });
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match timeout_at(backstop, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    if buf.len() + chunk.len() > MAX_BODY {
                        return Err(HttpFailure::TooLarge { limit: MAX_BODY });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) if e.is_timeout() => {
                    return Err(HttpFailure::Timeout {
                        phase: HttpPhase::Body,
                        after: timeout,
                    });
                }
                Ok(Err(e)) => return Err(through_forward(classify(&e, &url, timeout), &url)),
                Err(_) => {
                    return Err(HttpFailure::Timeout {
                        phase: HttpPhase::Body,
                        after: timeout,
                    });
                }
            }
        }
        return Ok(Response {
            url,
            status,
            headers: resp.headers().clone(),
            body: Bytes::from(buf),
            redirects: hops,
            elapsed: started.elapsed(),
            at: std::time::SystemTime::now(),
        });
    }
}

fn build_client(opts: &HttpOptions) -> Result<reqwest::Client, String> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut tls = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(native_roots())
            .with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder();
    for (host, addr) in &opts.resolve {
        builder = builder.resolve(host, *addr);
    }
    builder
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent())
        .connect_timeout(opts.timeout)
        .pool_max_idle_per_host(4)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that counts requests and answers each after `delay`.
    async fn counting_server(delay: Duration) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn a_dropped_first_asker_does_not_make_the_next_send_again() {
        let (url, count) = counting_server(Duration::from_millis(300)).await;
        let probe = HttpProbe::new(HttpOptions {
            timeout: Duration::from_secs(5),
            insecure: false,
            resolve: Vec::new(),
        });
        let req = Request::get(&url);
        // The first asker gives up while the answer is on its way.
        let first = tokio::time::timeout(Duration::from_millis(100), probe.fetch(&req)).await;
        assert!(first.is_err(), "the first asker was meant to be dropped");
        let second = probe.fetch(&req).await.expect("the shared answer");
        assert_eq!(second.status, 200);
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the request was sent again"
        );
    }
}
