//! Why an HTTP request got no usable answer: each failure classified from reqwest's error chain (DNS,
//! refused, time-out by phase, TLS, not HTTP, a bad response head, redirects), and a failure to reach
//! the environment's proxy named as the proxy's.

use std::{fmt, io, time::Duration};

use url::Url;

/// Redirects followed before giving up (browsers allow 20; an API should need none or one).
pub const MAX_REDIRECTS: usize = 5;

/// A redirect that was followed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hop {
    pub status: u16,
    pub from: Url,
    pub to: Url,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → {}", self.status, self.from, self.to)
    }
}

pub(super) fn hops_text(hops: &[Hop]) -> String {
    hops.iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a request ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HttpPhase {
    Connect,
    Response,
    Body,
}

impl HttpPhase {
    fn describe(self) -> &'static str {
        match self {
            HttpPhase::Connect => "connecting",
            HttpPhase::Response => "waiting for the response (the connection was accepted)",
            HttpPhase::Body => "reading the response body",
        }
    }
}

/// Why a request got no usable response. Says what happened; the caller names the URL.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum HttpFailure {
    InvalidUrl {
        detail: String,
    },
    Dns {
        host: String,
        detail: String,
    },
    Refused,
    Timeout {
        phase: HttpPhase,
        after: Duration,
    },
    Tls {
        detail: String,
    },
    /// Something answered, but not in HTTP (a TLS port spoken to in clear text, a database …).
    NotHttp {
        detail: String,
    },
    Network {
        detail: String,
    },
    TooLarge {
        limit: usize,
    },
    TooManyRedirects {
        hops: Vec<Hop>,
    },
    RedirectLoop {
        hops: Vec<Hop>,
    },
    BadRedirect {
        status: u16,
        detail: String,
    },
    /// The response head could not be read: over 100 headers, or a head too long.
    BadHead {
        detail: String,
    },
    /// A local port-forward took the connection, but the forward failed behind it (the pod's port
    /// refused, the API server could not reach the kubelet …): the forward's words.
    Forward {
        detail: String,
    },
    /// The proxy (from the environment) could not be reached; the server itself was not tried.
    Proxy {
        proxy: String,
        var: String,
        cause: Box<HttpFailure>,
    },
}

impl HttpFailure {
    pub fn kind(&self) -> &'static str {
        match self {
            HttpFailure::InvalidUrl { .. } => "invalid-url",
            HttpFailure::Dns { .. } => "dns",
            HttpFailure::Refused => "refused",
            HttpFailure::Timeout { .. } => "timeout",
            HttpFailure::Tls { .. } => "tls",
            HttpFailure::NotHttp { .. } => "not-http",
            HttpFailure::Network { .. } => "network",
            HttpFailure::TooLarge { .. } => "too-large",
            HttpFailure::BadHead { .. } => "bad-response-head",
            HttpFailure::Proxy { .. } => "proxy",
            HttpFailure::Forward { .. } => "port-forward",
            HttpFailure::TooManyRedirects { .. } => "too-many-redirects",
            HttpFailure::RedirectLoop { .. } => "redirect-loop",
            HttpFailure::BadRedirect { .. } => "bad-redirect",
        }
    }
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFailure::InvalidUrl { detail } => write!(f, "invalid URL: {detail}"),
            HttpFailure::Dns { host, detail } => {
                write!(f, "the host name {host:?} does not resolve: {detail}")
            }
            HttpFailure::Refused => {
                f.write_str("connection refused (nothing listens on that port)")
            }
            HttpFailure::Timeout { phase, after } => write!(
                f,
                "no answer within {} while {}",
                crate::untrusted::duration(*after),
                phase.describe()
            ),
            HttpFailure::Tls { detail } => write!(f, "TLS failed: {detail}"),
            HttpFailure::Forward { detail } => f.write_str(detail),
            HttpFailure::NotHttp { detail } => write!(
                f,
                "the server did not answer in HTTP ({detail}); is the scheme (http/https) right?"
            ),
            HttpFailure::Network { detail } => write!(f, "network error: {detail}"),
            HttpFailure::TooLarge { limit } => write!(
                f,
                "the response body is larger than {} KiB; stopped reading (this is not the small JSON answer expected)",
                limit / 1024
            ),
            HttpFailure::TooManyRedirects { hops } => write!(
                f,
                "more than {MAX_REDIRECTS} redirects: {}",
                hops_text(hops)
            ),
            HttpFailure::RedirectLoop { hops } => {
                write!(f, "redirect loop: {}", hops_text(hops))
            }
            HttpFailure::BadRedirect { status, detail } => {
                write!(f, "HTTP {status} redirect with {detail}")
            }
            HttpFailure::BadHead { detail } => write!(
                f,
                "the response head could not be read ({detail}): more than 100 headers or a head \
                 too long; the server or a proxy in front of it is misbehaving"
            ),
            HttpFailure::Proxy { proxy, var, cause } => write!(
                f,
                "the proxy {proxy} (from {var}) could not be reached, so the server was not tried: {cause}"
            ),
        }
    }
}

/// Every error in `e`'s chain, including the errors wrapped inside `io::Error`s (whose `source()`
/// skips them; TLS errors arrive as an `io::Error` inside an `io::Error`).
pub(crate) fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(err) = stack.pop() {
        if out.len() > 32 {
            break;
        }
        out.push(err);
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            stack.push(inner);
        } else if let Some(next) = err.source() {
            stack.push(next);
        }
    }
    out
}

/// Classifies a reqwest error by walking its causes.
pub(super) fn classify(e: &reqwest::Error, url: &Url, after: Duration) -> HttpFailure {
    let failure = classify_direct(e, url, after);
    // A failure to connect through a proxy is the proxy's, not the server's.
    let connecting = matches!(
        failure,
        HttpFailure::Refused
            | HttpFailure::Dns { .. }
            | HttpFailure::Timeout {
                phase: HttpPhase::Connect,
                ..
            }
    ) || e.is_connect();
    match proxy_for(url, &|k| std::env::var(k).ok()) {
        Some((proxy, var)) if connecting => HttpFailure::Proxy {
            proxy,
            var: var.to_string(),
            cause: Box::new(failure),
        },
        _ => failure,
    }
}

/// The proxy the environment names for `url` (as reqwest reads it: `HTTPS_PROXY`/`HTTP_PROXY`, their
/// lower-case forms, `ALL_PROXY`, minus `NO_PROXY`), with the variable's name.
pub fn proxy_for(
    url: &Url,
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, &'static str)> {
    let get = |names: &[&'static str]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()).map(|v| (v, *n)))
    };
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let Some((no, _)) = get(&["NO_PROXY", "no_proxy"]) {
        for entry in no.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            if entry == "*"
                || host.eq_ignore_ascii_case(entry)
                || host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", entry.to_ascii_lowercase()))
            {
                return None;
            }
        }
    }
    let found = match url.scheme() {
        "https" => get(&["HTTPS_PROXY", "https_proxy"]),
        _ => get(&["HTTP_PROXY", "http_proxy"]),
    }
    .or_else(|| get(&["ALL_PROXY", "all_proxy"]))?;
    crate::redact::register_url_credentials(&found.0);
    Some((crate::redact::mask_shapes(&found.0), found.1))
}

fn classify_direct(e: &reqwest::Error, url: &Url, after: Duration) -> HttpFailure {
    let chain = causes(e);
    for err in &chain {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return HttpFailure::Tls {
                detail: t.to_string(),
            };
        }
    }
    if e.is_timeout() {
        let phase = if e.is_connect() {
            HttpPhase::Connect
        } else {
            HttpPhase::Response
        };
        return HttpFailure::Timeout { phase, after };
    }
    let detail = chain
        .iter()
        .skip(1)
        .last()
        .map(|c| c.to_string())
        .unwrap_or_else(|| e.to_string());
    if e.is_dns() {
        return HttpFailure::Dns {
            host: url.host_str().unwrap_or_default().to_string(),
            detail,
        };
    }
    for err in &chain {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return HttpFailure::Refused,
                io::ErrorKind::TimedOut => {
                    return HttpFailure::Timeout {
                        phase: HttpPhase::Connect,
                        after,
                    };
                }
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_parse()
            && h.to_string().contains("too large")
        {
            return HttpFailure::BadHead {
                detail: h.to_string(),
            };
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_parse()
        {
            return HttpFailure::NotHttp {
                detail: h.to_string(),
            };
        }
    }
    HttpFailure::Network { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let u = Url::parse("https://prefect.example.com/graphql").unwrap();
        let e = env(&[("HTTPS_PROXY", "http://u:zq-proxy-pw@proxy:3128")]);
        assert_eq!(
            proxy_for(&u, &e),
            Some(("http://u:****@proxy:3128".to_string(), "HTTPS_PROXY"))
        );
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost,.example.com"),
        ]);
        assert_eq!(proxy_for(&u, &e), None);
        let e = env(&[("HTTP_PROXY", "http://proxy:3128")]);
        assert_eq!(proxy_for(&u, &e), None);
        assert_eq!(crate::redact::scrub("zq-proxy-pw"), "****");
    }
}
