//! In-process HTTP servers that answer as Prefect's Apollo (Apollo Server 2 on Express, with its
//! default CORS) and the UI's nginx do, plus the misbehaving things found in front of them (ingress
//! default backends, SPA fallbacks, redirect loops, servers that never answer).
//!
//! Each server runs on its own tokio runtime, records every request it gets, and stops on drop.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The GraphQL query of a POST, if any.
    pub fn query(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body)
            .ok()?
            .get("query")?
            .as_str()
            .map(str::to_string)
    }
}

/// What to answer.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request, then never answer.
    Hang,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::new(status, "application/json; charset=utf-8", v.to_string())
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Hit) -> Reply + Send + Sync>;

/// A test server's own two-thread runtime and a listener on a random loopback port.
pub fn listening_runtime() -> (tokio::runtime::Runtime, TcpListener, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (runtime, listener, addr)
}

pub struct Server {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    pub fn start(handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Server {
        Server::start_with_tls(handler, None)
    }

    pub fn start_with_tls(
        handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        let (runtime, listener, addr) = listening_runtime();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let recorded = hits.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                // Node's HTTP server (Apollo) and nginx (the UI) both answer with TCP_NODELAY.
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let recorded = recorded.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let recorded = recorded.clone();
                        async move { Ok::<_, Infallible>(answer(req, &handler, &recorded).await) }
                    });
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(tls), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Server {
            url: format!("{scheme}://{addr}"),
            addr,
            hits,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    handler: &Handler,
    recorded: &Mutex<Vec<Hit>>,
) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let hit = Hit {
        method,
        path,
        headers,
        body,
    };
    if let Ok(mut r) = recorded.lock() {
        r.push(hit.clone());
    }
    match handler(&hit) {
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = StatusCode::from_u16(status).expect("status");
            for (k, v) in headers {
                resp.headers_mut().append(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    hyper::header::HeaderValue::from_str(&v).expect("header value"),
                );
            }
            resp
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Prefect's Apollo

/// How the fake Apollo behaves.
#[derive(Clone)]
pub struct Apollo {
    /// Tenant slugs `query { tenant }` returns.
    pub tenants: Vec<&'static str>,
    /// Apollo's CORS headers (false: a proxy in front strips them).
    pub cors: bool,
    pub version: &'static str,
    pub core_version: &'static str,
    /// Rows of Hasura's `flow_run` (`state`, `scheduled_start_time` as Hasura writes timestamps,
    /// `labels`), filtered and ordered as the late-runs query asks.
    pub flow_runs: Vec<Value>,
    /// Rows of Hasura's `agent` (`name`, `labels`, `last_queried`).
    pub agents: Vec<Value>,
    /// Tenant slugs made by `create_tenant` mutations since the server started (listed after
    /// `tenants`).
    pub created: Arc<Mutex<Vec<String>>>,
    /// The error Apollo answers `create_tenant` with, instead of creating it.
    pub refuse_create: Option<&'static str>,
}

/// A Hasura timestamp (`2026-12-04T16:10:00.123456+00:00`, or `…Z`).
fn stamp(v: &Value) -> Option<jiff::Timestamp> {
    v.as_str()?.parse().ok()
}

impl Apollo {
    /// Hasura's answer to `flow_run_aggregate` / `flow_run` / `agent` with the late-runs filter
    /// (`state _eq "Scheduled"`, `scheduled_start_time _lt T`).
    fn late_runs(&self, query: &str) -> Value {
        let before = query
            .split("_lt: \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let mut runs: Vec<&Value> = self
            .flow_runs
            .iter()
            .filter(|r| r["state"] == "Scheduled")
            .filter(|r| match (stamp(&r["scheduled_start_time"]), before) {
                (Some(t), Some(b)) => t < b,
                _ => false,
            })
            .collect();
        runs.sort_by_key(|r| stamp(&r["scheduled_start_time"]));
        let count = runs.len();
        let runs: Vec<Value> = runs
            .into_iter()
            .take(1000)
            .map(|r| json!({"labels": r["labels"], "scheduled_start_time": r["scheduled_start_time"]}))
            .collect();
        let mut agents = self.agents.clone();
        agents.sort_by_key(|a| std::cmp::Reverse(stamp(&a["last_queried"])));
        json!({"data": {"late": {"aggregate": {"count": count}}, "runs": runs, "agents": agents}})
    }
}

impl Default for Apollo {
    fn default() -> Apollo {
        Apollo {
            tenants: vec!["default"],
            cors: true,
            version: "2022.09.23",
            core_version: "1.4.0",
            flow_runs: Vec::new(),
            agents: Vec::new(),
            created: Arc::default(),
            refuse_create: None,
        }
    }
}

/// Express's own 404 page (`Cannot POST /x`).
fn express_404(method: &str, path: &str) -> Reply {
    Reply::new(
        404,
        "text/html; charset=utf-8",
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
        ),
    )
}

fn validation_error(field: &str) -> Reply {
    Reply::json(
        400,
        &json!({"errors": [{
            "message": format!("Cannot query field \"{field}\" on type \"Query\"."),
            "locations": [{"line": 1, "column": 9}],
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}
        }]}),
    )
}

impl Apollo {
    /// `create_tenant(input: $input)` as Prefect Server's graphql service answers it: a tenant with
    /// the slug, unless one exists (Hasura's uniqueness violation) or the test refuses it.
    fn create_tenant(&self, hit: &Hit) -> Reply {
        let body: Value = serde_json::from_str(&hit.body).unwrap_or_default();
        let input = &body["variables"]["input"];
        let (Some(_name), Some(slug)) = (input["name"].as_str(), input["slug"].as_str()) else {
            return Reply::json(
                200,
                &json!({"errors": [{"message": "Variable \"$input\" of required type \"create_tenant_input!\" was not provided.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
            );
        };
        let refusal = self.refuse_create.map(str::to_string).or_else(|| {
            (self.tenants.contains(&slug) || self.created.lock().unwrap().iter().any(|s| s == slug))
                .then(|| "Uniqueness violation.".to_string())
        });
        if let Some(message) = refusal {
            return Reply::json(
                200,
                &json!({"errors": [{"message": message, "locations": [{"line": 1, "column": 41}], "path": ["create_tenant"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}], "data": null}),
            );
        }
        self.created.lock().unwrap().push(slug.to_string());
        Reply::json(
            200,
            &json!({"data": {"create_tenant": {"id": "5f0d6c2e-7d3b-4b8e-9f61-2a4c8e1b7d90"}}}),
        )
    }

    /// Answers as Apollo Server 2 (apollo-server-express with `cors: true`) does.
    pub fn answer(&self, hit: &Hit) -> Reply {
        let path = hit.path.split('?').next().unwrap_or("");
        let reply = match (hit.method.as_str(), path) {
            ("OPTIONS", _) => {
                let mut r = Reply::Full {
                    status: 204,
                    headers: vec![],
                    body: vec![],
                };
                if self.cors {
                    r = r
                        .header(
                            "access-control-allow-methods",
                            "GET,HEAD,PUT,PATCH,POST,DELETE",
                        )
                        .header(
                            "access-control-allow-headers",
                            hit.header("access-control-request-headers").unwrap_or(""),
                        )
                        .header("vary", "Access-Control-Request-Headers");
                }
                r
            }
            ("GET", "/.well-known/apollo/server-health") => {
                Reply::json(200, &json!({"status": "pass"}))
            }
            ("POST", "/" | "/graphql" | "/graphql/") => {
                let Some(query) = hit.query() else {
                    return Reply::json(
                        400,
                        &json!({"errors": [{"message": "POST body missing. Did you forget use body-parser middleware?"}]}),
                    );
                };
                if query.contains("create_tenant") {
                    self.create_tenant(hit)
                } else if query.contains("flow_run_aggregate") {
                    Reply::json(200, &self.late_runs(&query))
                } else if query.contains("hello") {
                    Reply::json(200, &json!({"data": {"hello": "👋"}}))
                } else if query.contains("core_version") {
                    Reply::json(
                        200,
                        &json!({"data": {"api": {"version": self.version, "core_version": self.core_version}}}),
                    )
                } else if query.contains("tenant") {
                    let created = self.created.lock().unwrap().clone();
                    let list: Vec<Value> = self
                        .tenants
                        .iter()
                        .map(|s| s.to_string())
                        .chain(created)
                        .map(|s| json!({"id": "8b6a3f3e-2f1c-4c36-9a55-0c1f3c1d9e11", "slug": s}))
                        .collect();
                    Reply::json(200, &json!({"data": {"tenant": list}}))
                } else {
                    validation_error("unknown")
                }
            }
            (m, p) => express_404(m, p),
        };
        let reply = reply.header("x-powered-by", "Express");
        if self.cors {
            reply.header("access-control-allow-origin", "*")
        } else {
            reply
        }
    }

    pub fn start(self) -> Server {
        Server::start(move |hit| self.answer(hit))
    }
}

// ---------------------------------------------------------------------------------------------------
// The UI's nginx

const INDEX_HTML: &str = "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta http-equiv=X-UA-Compatible content=\"IE=edge\"><meta name=viewport content=\"width=device-width,initial-scale=1\"><link rel=icon href=/favicon.ico><title>Prefect Server</title></head><body><noscript><strong>We're sorry but Prefect UI doesn't work properly without JavaScript enabled.</strong></noscript><div id=app></div><script src=/js/chunk-vendors.js></script><script src=/js/app.js></script></body></html>";

fn nginx(reply: Reply) -> Reply {
    reply.header("server", "nginx/1.21.6")
}

/// nginx's own 404 page.
pub fn nginx_404() -> Reply {
    nginx(Reply::new(
        404,
        "text/html",
        "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.21.6</center>\r\n</body>\r\n</html>\r\n",
    ))
}

/// The UI as its container serves it: settings.json as written by its start script, index.html for
/// every other path (vue-router history mode).
pub fn ui(server_url: &str) -> Server {
    let settings = format!("{{\n  \"server_url\": \"{server_url}\",\n  \"base_url\": \"/\"\n}}\n");
    Server::start(move |hit| ui_answer(hit, &settings))
}

pub fn ui_answer(hit: &Hit, settings: &str) -> Reply {
    if hit.path == "/settings.json" {
        nginx(Reply::new(200, "application/json", settings.to_string()))
    } else {
        nginx(Reply::new(200, "text/html", INDEX_HTML))
    }
}

/// A single-page-app host that answers every path with index.html (no settings.json).
pub fn spa_fallback(hit: &Hit) -> Reply {
    let _ = hit;
    nginx(Reply::new(200, "text/html", INDEX_HTML))
}

/// The ingress-nginx default backend.
pub fn default_backend(_: &Hit) -> Reply {
    nginx(Reply::new(
        404,
        "text/plain; charset=utf-8",
        "default backend - 404",
    ))
}

/// A self-signed CA named `ca_name` (PEM) and a server configuration whose certificate, signed by
/// it, names `name`.
pub fn tls_server_pki(name: &str, ca_name: &str) -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (Arc::new(config), ca.pem())
}
