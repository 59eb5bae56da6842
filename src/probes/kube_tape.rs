//! The Kubernetes side of the tape. Recording is a layer on the client that keeps every answer of
//! the API server (a port-forward's upgrade passes through untouched); replaying is a client whose
//! only "server" is the tape.
//!
//! No Secret value enters the tape: each is replaced by `sha256:<hex>` of the value salted with a
//! salt made for this bundle and never stored, so checks that compare two keys' values (the chart's
//! password-key defect) judge the same on replay without the values. A Helm release Secret is kept
//! decoded (`prefectDoctorRelease`) so that the bundle's redaction reaches inside it, with its
//! password-named values and its manifest's Secret data hashed the same way; replay encodes it again
//! as Helm does.

use std::{
    io::{Read as _, Write as _},
    sync::Arc,
    task::{Context, Poll},
};

use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Either, Full};
use serde_json::Value;

use super::tape::{KubeExchange, NOT_IN_BUNDLE, Recorder, Tape};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The key a bundle's Secret values are salted with.
#[derive(Clone, Copy)]
pub struct Salt([u8; 16]);

impl Salt {
    pub fn new() -> Salt {
        use ring::rand::SecureRandom as _;
        let mut s = [0u8; 16];
        // Should the system's randomness fail, the time still makes the salt the bundle's own.
        if ring::rand::SystemRandom::new().fill(&mut s).is_err() {
            let t = jiff::Timestamp::now().as_nanosecond().to_le_bytes();
            s.copy_from_slice(&t[..16]);
        }
        Salt(s)
    }

    /// `sha256:<hex>` of `value` salted; an empty value stays empty (so "empty" is still seen).
    pub fn hash(&self, value: &[u8]) -> String {
        if value.is_empty() {
            return String::new();
        }
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.0);
        ctx.update(value);
        let d = ctx.finish();
        let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

impl Default for Salt {
    fn default() -> Salt {
        Salt::new()
    }
}

/// The layer that records a client's answers.
#[derive(Clone)]
pub struct RecordLayer {
    rec: Arc<Recorder>,
    salt: Salt,
}

impl RecordLayer {
    pub fn new(rec: Arc<Recorder>) -> RecordLayer {
        RecordLayer {
            rec,
            salt: Salt::new(),
        }
    }
}

impl<S> tower::Layer<S> for RecordLayer {
    type Service = RecordService<S>;
    fn layer(&self, inner: S) -> RecordService<S> {
        RecordService {
            inner,
            rec: self.rec.clone(),
            salt: self.salt,
        }
    }
}

#[derive(Clone)]
pub struct RecordService<S> {
    inner: S,
    rec: Arc<Recorder>,
    salt: Salt,
}

/// The body a recorded answer is passed on with: the bytes read, or the error reading them gave.
type Passed<B> = Either<Full<Bytes>, Either<B, ErrBody>>;

/// A body that fails with the error its original gave (a capped answer stays an error).
pub struct ErrBody(Option<BoxError>);

impl http_body::Body for ErrBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

impl<S, B> tower::Service<Request<kube::client::Body>> for RecordService<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Passed<B>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let method = req.method().to_string();
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let rec = self.rec.clone();
        let salt = self.salt;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            if upgrade {
                return Ok(resp.map(|b| Either::Right(Either::Left(b))));
            }
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(c) => {
                    let bytes = c.to_bytes();
                    let content_type = parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let json: Option<Value> = serde_json::from_slice::<Value>(&bytes)
                        .ok()
                        .filter(|v| v.is_object() || v.is_array())
                        .map(|mut v| {
                            without_secrets(&mut v, &salt);
                            v
                        });
                    let (body, base64) = match (&json, std::str::from_utf8(&bytes)) {
                        (Some(_), _) => (String::new(), false),
                        (None, Ok(t)) => (t.to_string(), false),
                        (None, Err(_)) => (
                            base64::engine::general_purpose::STANDARD.encode(&bytes),
                            true,
                        ),
                    };
                    rec.kube(KubeExchange {
                        method,
                        uri,
                        status: parts.status.as_u16(),
                        content_type,
                        json,
                        body,
                        base64,
                        body_error: None,
                    });
                    Ok(Response::from_parts(parts, Either::Left(Full::new(bytes))))
                }
                Err(e) => {
                    let e: BoxError = e.into();
                    rec.kube(KubeExchange {
                        method,
                        uri,
                        status: parts.status.as_u16(),
                        content_type: None,
                        json: None,
                        body: String::new(),
                        base64: false,
                        body_error: Some(super::error_text::chain(e.as_ref())),
                    });
                    Ok(Response::from_parts(
                        parts,
                        Either::Right(Either::Right(ErrBody(Some(e)))),
                    ))
                }
            }
        })
    }
}

/// A client that answers from `tape`. A request the tape lacks gets a `503` whose message says so
/// (the probe turns it into a miss of the check that asked).
pub fn replay_client(tape: Arc<Tape>, namespace: &str) -> kube::Client {
    let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
        let tape = tape.clone();
        async move {
            let method = req.method().to_string();
            let uri = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let found = tape
                .kube
                .iter()
                .rev()
                .find(|e| e.method == method && e.uri == uri);
            let resp = match found {
                Some(e) => {
                    let body = match &e.json {
                        Some(v) => {
                            let mut v = v.clone();
                            with_releases_encoded(&mut v);
                            serde_json::to_vec(&v).unwrap_or_default()
                        }
                        None if e.base64 => base64::engine::general_purpose::STANDARD
                            .decode(&e.body)
                            .unwrap_or_default(),
                        None => e.body.clone().into_bytes(),
                    };
                    let mut b = Response::builder().status(e.status);
                    if let Some(ct) = &e.content_type {
                        b = b.header(http::header::CONTENT_TYPE, ct);
                    }
                    match &e.body_error {
                        Some(err) => b.body(Either::Right(ErrBody(Some(err.clone().into())))),
                        None => b.body(Either::Left(Full::new(Bytes::from(body)))),
                    }
                }
                None => Response::builder()
                    .status(503)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Either::Left(Full::new(Bytes::from(
                        serde_json::json!({
                            "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "NotInBundle", "code": 503,
                            "message": format!("{NOT_IN_BUNDLE}: {method} {uri}"),
                        })
                        .to_string(),
                    )))),
            };
            resp.map_err(|e| -> BoxError { Box::new(e) })
        }
    });
    kube::Client::new(svc, namespace.to_string())
}

/// Hashes every Secret's values in `v`, when it is a Secret or a list of them.
fn without_secrets(v: &mut Value, salt: &Salt) {
    match v.get("kind").and_then(Value::as_str) {
        Some("Secret") => secret(v, salt),
        Some("SecretList") => {
            if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
                for item in items {
                    secret(item, salt);
                }
            }
        }
        _ => {}
    }
}

/// A helm release is kept decoded under this key of its Secret.
const DECODED: &str = "prefectDoctorRelease";

fn secret(s: &mut Value, salt: &Salt) {
    let helm = s.get("type").and_then(Value::as_str) == Some("helm.sh/release.v1");
    let mut decoded = None;
    if let Some(data) = s.get_mut("data").and_then(Value::as_object_mut) {
        for (k, val) in data.iter_mut() {
            let Some(b64) = val.as_str() else {
                continue;
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|_| b64.as_bytes().to_vec());
            if helm
                && k == "release"
                && let Some(release) = release_without_secrets(&raw, salt)
            {
                decoded = Some(release);
                *val = Value::String(String::new());
                continue;
            }
            *val = Value::String(base64::engine::general_purpose::STANDARD.encode(salt.hash(&raw)));
        }
    }
    if let Some(data) = s.get_mut("stringData").and_then(Value::as_object_mut) {
        for (_, val) in data.iter_mut() {
            if let Some(text) = val.as_str() {
                *val = Value::String(salt.hash(text.as_bytes()));
            }
        }
    }
    if let (Some(release), Some(obj)) = (decoded, s.as_object_mut()) {
        obj.insert(DECODED.to_string(), release);
    }
}

/// A Helm release (Helm's base64 of gzip of JSON, or of plain JSON), decoded, with the values of
/// password-named keys and its manifest's Secret data hashed.
fn release_without_secrets(raw: &[u8], salt: &Salt) -> Option<Value> {
    let text: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let inner = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .ok()?;
    let json = if inner.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(inner.as_slice())
            .take(crate::chart::release::MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut out)
            .ok()?;
        if out.len() as u64 > crate::chart::release::MAX_RELEASE_BYTES {
            return None;
        }
        out
    } else {
        inner
    };
    let mut release: Value = serde_json::from_slice(&json).ok()?;
    // Password-named values, wherever they are (config, the chart's own values …).
    let mut stack: Vec<&mut Value> = vec![&mut release];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k == "manifest" {
                        if let Value::String(m) = v {
                            *m = manifest_without_secrets(m, salt);
                        }
                    } else if crate::redact::is_secret_key(k) && v.is_string() {
                        let s = v.as_str().unwrap_or_default().to_string();
                        *v = Value::String(salt.hash(s.as_bytes()));
                    } else {
                        stack.push(v);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    Some(release)
}

/// The manifest's Secret objects with their `data` (base64) and `stringData` values hashed.
fn manifest_without_secrets(manifest: &str, salt: &Salt) -> String {
    let mut out = Vec::new();
    for doc in manifest.split("\n---") {
        let is_secret = doc.lines().any(|l| l.trim_end() == "kind: Secret");
        if !is_secret {
            out.push(doc.to_string());
            continue;
        }
        let mut section: Option<bool> = None; // Some(true): data, Some(false): stringData
        let mut lines = Vec::new();
        for line in doc.lines() {
            let indented = line.starts_with(' ');
            if !indented && !line.trim().is_empty() {
                section = match line.trim_end() {
                    "data:" => Some(true),
                    "stringData:" => Some(false),
                    _ => None,
                };
                lines.push(line.to_string());
                continue;
            }
            match (section, line.split_once(':')) {
                (Some(is_b64), Some((key, value))) if !value.trim().is_empty() => {
                    let v = value.trim().trim_matches('"').trim_matches('\'');
                    let raw = if is_b64 {
                        base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .unwrap_or_else(|_| v.as_bytes().to_vec())
                    } else {
                        v.as_bytes().to_vec()
                    };
                    let hashed = salt.hash(&raw);
                    let shown = if is_b64 {
                        base64::engine::general_purpose::STANDARD.encode(hashed)
                    } else {
                        hashed
                    };
                    lines.push(format!("{key}: {shown:?}"));
                }
                _ => lines.push(line.to_string()),
            }
        }
        out.push(lines.join("\n"));
    }
    out.join("\n---")
}

/// A recorded Secret (or list) with its decoded Helm releases encoded again, as Helm stores them.
fn with_releases_encoded(v: &mut Value) {
    let encode = |s: &mut Value| {
        let Some(obj) = s.as_object_mut() else {
            return;
        };
        let Some(release) = obj.remove(DECODED) else {
            return;
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let json = serde_json::to_vec(&release).unwrap_or_default();
        if gz.write_all(&json).is_err() {
            return;
        }
        let Ok(gz) = gz.finish() else {
            return;
        };
        let helm = base64::engine::general_purpose::STANDARD.encode(gz);
        let api = base64::engine::general_purpose::STANDARD.encode(helm);
        if let Some(data) = obj.get_mut("data").and_then(Value::as_object_mut) {
            data.insert("release".to_string(), Value::String(api));
        }
    };
    match v.get("kind").and_then(Value::as_str) {
        Some("SecretList") => {
            if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
                for item in items {
                    encode(item);
                }
            }
        }
        _ => encode(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_hash_equal_and_nothing_of_them_is_left() {
        let salt = Salt::new();
        let a = salt.hash(b"p4ss");
        assert_eq!(a, salt.hash(b"p4ss"));
        assert_ne!(a, salt.hash(b"other"));
        assert_ne!(a, Salt::new().hash(b"p4ss"), "each bundle has its own salt");
        assert_eq!(salt.hash(b""), "");
        let manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  postgresql-password: \"cDRzcw==\"\n---\nkind: ConfigMap\ndata:\n  a: b";
        let m = manifest_without_secrets(manifest, &salt);
        assert!(!m.contains("cDRzcw=="), "{m}");
        assert!(m.contains("a: b"), "other objects stay as they are: {m}");
    }
}
