//! Record and replay at the probe boundary, for support bundles. In record mode every answer a probe
//! gets (a database session's facts and each query's rows or error; each HTTP exchange) is kept; in
//! replay mode the probes answer from the tape and never touch the network. Checks do not know which
//! mode they run in. An answer the tape lacks is a miss: the probe answers with a failure, and the
//! check that asked is reported as `skip` ("not in the bundle"), through [`MISSED`].

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{
    http_exchange::{Request, Response},
    http_failure::{Hop, HttpFailure},
    pg_failure::{ConnectFailure, QueryError},
    pg_row::Row,
};

tokio::task_local! {
    /// What the running check asked the tape for and did not find (set by the engine around each
    /// check).
    pub static MISSED: Arc<Mutex<Vec<String>>>;
}

/// Notes a miss for the running check.
pub fn missed(what: String) {
    let _ = MISSED.try_with(|m| {
        if let Ok(mut list) = m.lock()
            && list.len() < 10
        {
            list.push(what);
        }
    });
}

/// How the probes of a run meet the world.
#[derive(Clone, Default)]
pub enum TapeMode {
    #[default]
    Live,
    /// Live, and every answer is kept.
    Record(Arc<Recorder>),
    /// No network: every answer comes from the tape.
    Replay(Arc<Tape>),
}

impl std::fmt::Debug for TapeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TapeMode::Live => "Live",
            TapeMode::Record(_) => "Record",
            TapeMode::Replay(_) => "Replay",
        })
    }
}

/// What a database session told us while opening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgInfo {
    pub server_version_num: i32,
    pub server_version: String,
    pub current_user: String,
    pub database: String,
    pub tls: bool,
    pub connect_ms: u64,
    /// Where the session was opened (one host of a list).
    #[serde(default)]
    pub address: String,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PgAnswer {
    Rows(Vec<Row>),
    /// A user check's rows, as the JSON text the server made of them.
    Json(String),
    Error(QueryError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgExchange {
    pub sql: String,
    /// The parameters as the query's `Debug` shows them.
    pub params: Vec<String>,
    pub answer: PgAnswer,
}

/// An HTTP request as recorded (the key of its answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpKey {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl HttpKey {
    pub fn of(req: &Request) -> HttpKey {
        HttpKey {
            method: req.method.as_str().to_string(),
            url: req.url.to_string(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), kept_header(k, v)))
                .collect(),
            body: req.body.clone(),
        }
    }

    /// The key with the times in its body blanked: a query that asks "runs scheduled before now -
    /// 10 minutes" asks for the recorded run's own "now" on replay.
    fn timeless(&self) -> HttpKey {
        HttpKey {
            body: self.body.as_deref().map(blank_times),
            ..self.clone()
        }
    }
}

/// A header's value as the tape keeps it: the value of a header that carries credentials or a
/// session (cookies, authorization, API keys, password-named ones) is masked, since no check reads
/// one and an ingress's session cookie is a secret the run cannot know.
fn kept_header(name: &str, value: &str) -> String {
    let n = name.to_ascii_lowercase();
    let carries = matches!(
        n.as_str(),
        "set-cookie" | "cookie" | "authorization" | "proxy-authorization"
    ) || n.contains("api-key")
        || n.contains("token")
        || n.contains("session")
        || crate::redact::is_secret_key(&n);
    if carries {
        crate::redact::MASK.to_string()
    } else {
        value.to_string()
    }
}

/// Replaces RFC 3339 timestamps (`2026-12-04T18:20:11.402Z`, `…+00:00`) by `<time>`.
fn blank_times(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    while i < b.len() {
        let is_stamp = (0..4).all(|k| digit(i + k))
            && b.get(i + 4) == Some(&b'-')
            && digit(i + 5)
            && digit(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && digit(i + 8)
            && digit(i + 9)
            && b.get(i + 10) == Some(&b'T');
        if is_stamp {
            let mut j = i + 11;
            while j < b.len() && (b[j].is_ascii_digit() || b".:+-Z".contains(&b[j])) {
                j += 1;
            }
            out.push_str("<time>");
            i = j;
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// A response as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpReply {
    pub url: url::Url,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text, or base64 when it is not UTF-8.
    pub body: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base64: bool,
    pub redirects: Vec<Hop>,
    pub elapsed_ms: u64,
    /// When the answer arrived, in milliseconds since 1970 (absent from bundles made before it was
    /// kept: such an answer is taken as arriving now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

impl HttpReply {
    fn of(r: &Response) -> HttpReply {
        let (body, base64) = match std::str::from_utf8(&r.body) {
            Ok(t) => (t.to_string(), false),
            Err(_) => {
                use base64::Engine as _;
                (
                    base64::engine::general_purpose::STANDARD.encode(&r.body),
                    true,
                )
            }
        };
        HttpReply {
            url: r.url.clone(),
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        kept_header(k.as_str(), &String::from_utf8_lossy(v.as_bytes())),
                    )
                })
                .collect(),
            body,
            base64,
            redirects: r.redirects.clone(),
            elapsed_ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
            at_ms: r
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok()),
        }
    }

    fn response(&self) -> Response {
        let body = if self.base64 {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(&self.body)
                .unwrap_or_default()
        } else {
            self.body.clone().into_bytes()
        };
        let mut headers = http::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                headers.append(k, v);
            }
        }
        Response {
            url: self.url.clone(),
            status: self.status,
            headers,
            body: body.into(),
            redirects: self.redirects.clone(),
            elapsed: std::time::Duration::from_millis(self.elapsed_ms),
            at: self
                .at_ms
                .and_then(|ms| {
                    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
                })
                .unwrap_or_else(std::time::SystemTime::now),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpExchange {
    pub request: HttpKey,
    pub answer: Result<HttpReply, HttpFailure>,
}

/// One answer of the Kubernetes API (its Secrets' values replaced, see `kube_tape`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KubeExchange {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// A JSON body, as JSON (so that the bundle's redaction sees each string alone, and a Secret's
    /// hashed values are never taken for a `"password": "…"` shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// Any other body as text, or base64 when it is not UTF-8.
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base64: bool,
    /// Reading the body failed (it was larger than the cap …): the error, as the client said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_error: Option<String>,
}

/// Every answer of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tape {
    /// How the (last) database session opened, or why it did not.
    pub postgres_session: Option<Result<PgInfo, ConnectFailure>>,
    pub postgres: Vec<PgExchange>,
    pub http: Vec<HttpExchange>,
    #[serde(default)]
    pub kube: Vec<KubeExchange>,
}

impl Tape {
    /// The recorded session, or a miss.
    pub fn pg_session(&self) -> Result<PgInfo, ConnectFailure> {
        match &self.postgres_session {
            Some(r) => r.clone(),
            None => {
                missed("the database session".to_string());
                Err(ConnectFailure::Config {
                    detail: NOT_IN_BUNDLE.to_string(),
                })
            }
        }
    }

    /// The last answer to `sql` with `params`, or a miss.
    pub fn pg(&self, sql: &str, params: &[String]) -> PgAnswer {
        match self
            .postgres
            .iter()
            .rev()
            .find(|e| e.sql == sql && e.params == params)
        {
            Some(e) => e.answer.clone(),
            None => {
                missed(format!("the query {:?}", crate::untrusted::cap(sql, 80)));
                PgAnswer::Error(QueryError {
                    code: None,
                    message: NOT_IN_BUNDLE.to_string(),
                })
            }
        }
    }

    /// The last answer to `req` (with its times blanked when no exact one was recorded), or a miss.
    pub fn http(&self, req: &Request) -> Result<Response, HttpFailure> {
        let key = HttpKey::of(req);
        let timeless = key.timeless();
        let found = self
            .http
            .iter()
            .rev()
            .find(|e| e.request == key)
            .or_else(|| {
                self.http
                    .iter()
                    .rev()
                    .find(|e| e.request.timeless() == timeless)
            });
        match found {
            Some(e) => e.answer.clone().map(|r| r.response()),
            None => {
                missed(format!("{} {}", req.method.as_str(), req.url));
                Err(HttpFailure::Network {
                    detail: NOT_IN_BUNDLE.to_string(),
                })
            }
        }
    }
}

impl Tape {
    /// The last answer to `method uri`, or a miss.
    pub fn kube(&self, method: &str, uri: &str) -> Option<&KubeExchange> {
        let found = self
            .kube
            .iter()
            .rev()
            .find(|e| e.method == method && e.uri == uri);
        if found.is_none() {
            missed(format!("the cluster's answer to {method} {uri}"));
        }
        found
    }
}

/// What a probe answers with when the bundle lacks the answer.
pub const NOT_IN_BUNDLE: &str = "not in the bundle";

/// Keeps a run's answers as they come (from any task).
#[derive(Default)]
pub struct Recorder {
    tape: Mutex<Tape>,
}

impl Recorder {
    fn with<T>(&self, f: impl FnOnce(&mut Tape) -> T) -> T {
        let mut t = match self.tape.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut t)
    }

    pub fn pg_session(&self, r: Result<PgInfo, ConnectFailure>) {
        self.with(|t| t.postgres_session = Some(r));
    }

    /// Keeps the last answer per query.
    pub fn pg(&self, sql: &str, params: Vec<String>, answer: PgAnswer) {
        self.with(|t| {
            t.postgres.retain(|e| !(e.sql == sql && e.params == params));
            t.postgres.push(PgExchange {
                sql: sql.to_string(),
                params,
                answer,
            });
        });
    }

    /// Keeps the last answer per request.
    pub fn http(&self, req: &Request, answer: &Result<Arc<Response>, HttpFailure>) {
        let request = HttpKey::of(req);
        let answer = match answer {
            Ok(r) => Ok(HttpReply::of(r)),
            Err(f) => Err(f.clone()),
        };
        self.with(|t| {
            t.http.retain(|e| e.request != request);
            t.http.push(HttpExchange { request, answer });
        });
    }

    /// Keeps the last answer per request.
    pub fn kube(&self, e: KubeExchange) {
        self.with(|t| {
            t.kube.retain(|x| !(x.method == e.method && x.uri == e.uri));
            t.kube.push(e);
        });
    }

    /// What was recorded so far.
    pub fn tape(&self) -> Tape {
        self.with(|t| t.clone())
    }
}

/// The `Debug` text of each parameter: the key of a recorded query.
pub fn params_key(params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<String> {
    params.iter().map(|p| format!("{p:?}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_replays_with_the_time_it_arrived() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_400_000_123);
        let live = Response {
            url: "http://api:4200/graphql".parse().unwrap(),
            status: 200,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from_static(b"{}"),
            redirects: vec![],
            elapsed: std::time::Duration::from_millis(7),
            at,
        };
        let kept: HttpReply =
            serde_json::from_str(&serde_json::to_string(&HttpReply::of(&live)).unwrap()).unwrap();
        assert_eq!(kept.response().at, at);
        // A bundle from before the time was kept: the answer is taken as arriving now.
        let mut old = serde_json::to_value(HttpReply::of(&live)).unwrap();
        old.as_object_mut().unwrap().remove("at_ms");
        let old: HttpReply = serde_json::from_value(old).unwrap();
        let before = std::time::SystemTime::now();
        assert!(old.response().at >= before);
    }

    #[test]
    fn headers_that_carry_credentials_are_masked_and_no_others() {
        for name in [
            "Set-Cookie",
            "cookie",
            "Authorization",
            "proxy-authorization",
            "X-Api-Key",
            "x-auth-token",
            "X-Session-Id",
            "x-prefect-password",
        ] {
            assert_eq!(kept_header(name, "s3cr3t"), "****", "{name}");
        }
        for name in [
            "content-type",
            "access-control-allow-origin",
            "access-control-allow-headers",
            "location",
            "server",
        ] {
            assert_eq!(kept_header(name, "v"), "v", "{name}");
        }
    }

    #[test]
    fn times_are_blanked_and_nothing_else() {
        assert_eq!(
            blank_times(r#"{"q":"scheduled_start_time: {_lt: \"2026-12-04T18:20:11.402Z\"}"}"#),
            r#"{"q":"scheduled_start_time: {_lt: \"<time>\"}"}"#
        );
        assert_eq!(
            blank_times("at 2026-12-04T18:20:11+00:00 ünd 2026-12-04"),
            "at <time> ünd 2026-12-04"
        );
    }
}
