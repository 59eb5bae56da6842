//! The in-test API server: serves a [`Cluster`] over HTTP(S) as kube-apiserver answers, with its
//! hits counted, a round trip put in its way when asked, and port-forwards upgraded to WebSocket and
//! relayed. Kept for what a real API server cannot be made to answer (docs/testing.md).

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::http::listening_runtime;
use super::kube::{Cluster, b64, status};
use super::kube_relay::{far_away, upgrade_portforward};

/// A request the fake API server received.
#[derive(Debug, Clone)]
pub struct KubeHit {
    pub method: String,
    pub path: String,
}

pub struct KubeServer {
    pub url: String,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    hits: Arc<Mutex<Vec<KubeHit>>>,
    runtime: Option<tokio::runtime::Runtime>,
    /// The CA the kubeconfig trusts, when the server speaks HTTPS.
    ca_pem: Option<String>,
    /// Half the round trip of the network between a client and this server, in microseconds (see
    /// [`KubeServer::set_round_trip`]).
    one_way_us: Arc<AtomicU64>,
}

impl KubeServer {
    fn start(cluster: Cluster) -> KubeServer {
        let (runtime, listener, addr) = listening_runtime();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let ca_pem = cluster.tls.as_ref().map(|(_, ca)| ca.clone());
        let cluster = Arc::new(cluster);
        let recorded = hits.clone();
        let one_way_us = Arc::new(AtomicU64::new(0));
        let one_way = one_way_us.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // As Go's net package does for every TCP connection (the real API server's and
                // kubelet's): without it, port-forwarded traffic waits on delayed acknowledgements.
                let _ = stream.set_nodelay(true);
                let cluster = cluster.clone();
                let recorded = recorded.clone();
                let one_way = Duration::from_micros(one_way.load(Ordering::Relaxed));
                tokio::spawn(async move {
                    if cluster.hang {
                        let mut s = stream;
                        let mut buf = [0u8; 4096];
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                        return;
                    }
                    let tls = cluster.tls.as_ref().map(|(config, _)| config.clone());
                    let service = service_fn(move |req: Request<Incoming>| {
                        let cluster = cluster.clone();
                        let recorded = recorded.clone();
                        async move {
                            if let Some(d) = cluster.slow_release_reads
                                && req.uri().path().contains("/secrets/sh.helm.release")
                            {
                                tokio::time::sleep(d).await;
                            }
                            if let Some((port, d)) = cluster.hold_forwards
                                && req.uri().path().ends_with("/portforward")
                                && req.uri().query().and_then(|q| query_param(q, "ports"))
                                    == Some(port.to_string())
                            {
                                cluster.held_forwards.opened(port);
                                tokio::time::sleep(d).await;
                                cluster.held_forwards.closed(port);
                            }
                            Ok::<_, Infallible>(serve(req, &cluster, &recorded))
                        }
                    });
                    if one_way.is_zero() {
                        serve_connection(stream, tls, service).await;
                    } else {
                        serve_connection(far_away(stream, one_way), tls, service).await;
                    }
                });
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let server = KubeServer {
            url: match &ca_pem {
                Some(_) => format!("https://localhost:{}", addr.port()),
                None => format!("http://{addr}"),
            },
            ca_pem,
            addr,
            dir,
            hits,
            runtime: Some(runtime),
            one_way_us,
        };
        server.write_kubeconfig("default");
        server
    }

    /// A kubeconfig for this server, context `test`, with `namespace`.
    pub fn write_kubeconfig(&self, namespace: &str) -> PathBuf {
        let path = self.dir.path().join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {}\n{}contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {namespace}\nusers:\n- name: test\n  user:\n    token: kube-token-canary-9f8e7d\n",
                self.url,
                self.ca_pem
                    .as_ref()
                    .map(|ca| format!("    certificate-authority-data: {}\n", b64(ca.as_bytes())))
                    .unwrap_or_default(),
            ),
        )
        .expect("kubeconfig");
        path
    }

    pub fn kubeconfig(&self) -> String {
        self.dir.path().join("config").display().to_string()
    }

    /// The network between a client and this server from now on (connections opened before keep
    /// theirs): every byte, either way, arrives half of `round_trip` after it was sent, as across a
    /// region or a VPN. The port-forwarded database, Apollo and UI are behind it too, as they are
    /// behind a real API server.
    pub fn set_round_trip(&self, round_trip: Duration) {
        let us = u64::try_from((round_trip / 2).as_micros()).unwrap_or(u64::MAX);
        self.one_way_us.store(us, Ordering::Relaxed);
    }

    pub fn hits(&self) -> Vec<KubeHit> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Asserts that every request the server received was a GET: the doctor only reads.
    pub fn assert_only_gets(&self) {
        for h in self.hits() {
            assert_eq!(h.method, "GET", "the doctor only reads: {h:?}");
        }
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn ok_json(v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("response")
}

const KINDS: &[(&str, &str)] = &[
    ("roles", "Role"),
    ("rolebindings", "RoleBinding"),
    ("clusterroles", "ClusterRole"),
    ("clusterrolebindings", "ClusterRoleBinding"),
    ("secrets", "Secret"),
    ("pods", "Pod"),
    ("services", "Service"),
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
    ("jobs", "Job"),
    ("ingresses", "Ingress"),
    ("ingressclasses", "IngressClass"),
    ("storageclasses", "StorageClass"),
    ("namespaces", "Namespace"),
    ("serviceaccounts", "ServiceAccount"),
    ("events", "Event"),
];

fn query_param(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Equality (`k=v`) and existence (`k`) terms, as the API server reads them.
fn matches_selector(obj: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => obj["metadata"]["labels"][k].as_str() == Some(v),
            None => obj["metadata"]["labels"][term].is_string(),
        })
}

fn serve(
    req: Request<Incoming>,
    cluster: &Cluster,
    hits: &Mutex<Vec<KubeHit>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Ok(mut h) = hits.lock() {
        h.push(KubeHit {
            method: req.method().to_string(),
            path: req.uri().to_string(),
        });
    }
    if req.method() != hyper::Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            format!("{} is not allowed here", req.method()),
        );
    }
    if let Some(answer) = discovery(&path, cluster) {
        let resource = path.trim_matches('/');
        if cluster
            .forbidden
            .iter()
            .any(|(v, r)| v == "get" && r == resource)
        {
            return status(
                403,
                "Forbidden",
                format!(
                    "forbidden: User \"system:serviceaccount:default:doctor\" cannot get path \"{path}\""
                ),
            );
        }
        return answer;
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return status(404, "NotFound", format!("the server could not find {path}")),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        other => (None, other),
    };
    let (resource, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(*s)),
        _ => return status(404, "NotFound", format!("the server could not find {path}")),
    };
    let verb = match (&name, sub) {
        (None, _) => "list",
        (Some(_), Some("portforward")) => "create",
        _ => "get",
    };
    let full_resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    if cluster
        .forbidden
        .iter()
        .any(|(v, r)| v == verb && *r == full_resource)
    {
        let ns_text = ns
            .as_ref()
            .map(|n| format!(" in the namespace \"{n}\""))
            .unwrap_or_else(|| " at the cluster scope".to_string());
        return status(
            403,
            "Forbidden",
            format!(
                "{full_resource} is forbidden: User \"system:serviceaccount:default:doctor\" cannot {verb} resource \"{full_resource}\" in API group \"\"{ns_text}"
            ),
        );
    }
    let Some(kind) = KINDS.iter().find(|(r, _)| *r == resource).map(|(_, k)| *k) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({resource})"),
        );
    };
    let in_scope = |o: &&Value| {
        o["kind"] == kind
            && ns
                .as_ref()
                .is_none_or(|n| o["metadata"]["namespace"] == n.as_str())
    };
    match (name, sub) {
        (None, _) => {
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let items: Vec<Value> = cluster
                .objects
                .iter()
                .filter(in_scope)
                .filter(|o| matches_selector(o, &selector))
                .cloned()
                .collect();
            let metadata_only = req
                .headers()
                .get("accept")
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
            if metadata_only {
                let items: Vec<Value> = items
                    .iter()
                    .map(|o| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}))
                    .collect();
                return ok_json(
                    &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                       "metadata": {"resourceVersion": "1"}, "items": items}),
                );
            }
            ok_json(&json!({"kind": format!("{kind}List"), "apiVersion": "v1",
                            "metadata": {"resourceVersion": "1"}, "items": items}))
        }
        (Some(name), sub) => {
            let Some(obj) = cluster
                .objects
                .iter()
                .filter(in_scope)
                .find(|o| o["metadata"]["name"] == name.as_str())
            else {
                return status(404, "NotFound", format!("{resource} \"{name}\" not found"));
            };
            match sub {
                None => ok_json(obj),
                Some("log") => {
                    let container = query_param(&query, "container").unwrap_or_default();
                    let previous = query_param(&query, "previous").as_deref() == Some("true");
                    let tail: usize = query_param(&query, "tailLines")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(usize::MAX);
                    let Some(log) = cluster
                        .logs
                        .get(&(name.clone(), container.clone(), previous))
                    else {
                        if previous {
                            return status(
                                400,
                                "BadRequest",
                                format!(
                                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                                ),
                            );
                        }
                        return Response::new(Full::new(Bytes::new()));
                    };
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(tail)..].join("\n");
                    Response::builder()
                        .header("content-type", "text/plain")
                        .body(Full::new(Bytes::from(tail)))
                        .expect("response")
                }
                Some("portforward") => {
                    let port: u16 = query_param(&query, "ports")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                    match cluster.forwards.get(&(name.clone(), port)).copied() {
                        Some(to) => upgrade_portforward(req, to, port),
                        None => status(
                            500,
                            "InternalError",
                            format!(
                                "error upgrading connection: unable to forward port {port} of pod {name}: connection refused"
                            ),
                        ),
                    }
                }
                Some(other) => status(404, "NotFound", format!("no subresource {other}")),
            }
        }
    }
}

/// One connection of the API server: HTTP/1.1 with upgrades (port-forwards), over TLS when the
/// cluster has it.
async fn serve_connection<S, Svc>(stream: S, tls: Option<Arc<rustls::ServerConfig>>, service: Svc)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Send
        + 'static,
    Svc::Future: Send + 'static,
{
    match tls {
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            if let Ok(tls) = acceptor.accept(stream).await {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            }
        }
        None => {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        }
    }
}

/// The group versions a Kubernetes 1.25 API server lists in its discovery documents.
pub const SERVED_1_25: &[&str] = &[
    "v1",
    "apps/v1",
    "batch/v1",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "storage.k8s.io/v1",
    "policy/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "scheduling.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "admissionregistration.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "certificates.k8s.io/v1",
    "node.k8s.io/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
];

/// `GET /api`, `GET /apis` and `GET /version` as a Kubernetes 1.25 API server answers them.
fn discovery(path: &str, cluster: &Cluster) -> Option<Response<Full<Bytes>>> {
    let served: Vec<String> = SERVED_1_25
        .iter()
        .map(|s| s.to_string())
        .chain(cluster.also_served.iter().cloned())
        .collect();
    match path.trim_end_matches('/') {
        "/api" => Some(ok_json(&json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]}))),
        "/apis" => {
            let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
            for gv in served.iter().filter(|v| v.contains('/')) {
                let (group, version) = gv.split_once('/').unwrap_or_default();
                let entry = json!({"groupVersion": gv, "version": version});
                match groups.iter_mut().find(|(g, _)| g == group) {
                    Some((_, versions)) => versions.push(entry),
                    None => groups.push((group.to_string(), vec![entry])),
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(name, versions)| json!({"name": name, "preferredVersion": versions[0], "versions": versions}))
                .collect();
            Some(ok_json(
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            ))
        }
        "/version" => Some(ok_json(
            &json!({"major": "1", "minor": "25", "gitVersion": "v1.25.3",
            "gitCommit": "434bfd82814af038ad94d62ebe59b133fcb50506", "gitTreeState": "clean",
            "buildDate": "2022-10-12T10:49:09Z", "goVersion": "go1.19.2", "compiler": "gc", "platform": "linux/amd64"}),
        )),
        _ => None,
    }
}

impl Cluster {
    pub fn start(self) -> KubeServer {
        KubeServer::start(self)
    }
}
