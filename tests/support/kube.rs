//! An in-test Kubernetes API server serving real-shaped objects built from the chart's
//! `helm template` output (`tests/fixtures/manifest-rendered.yaml`, release `prefect`, namespace
//! `default`), a Helm release secret encoded as Helm does, pod logs, RBAC refusals, and pod
//! port-forwards over the API server's WebSocket protocol (`v4.channel.k8s.io`) to local TCP servers
//! (the real test PostgreSQL, the in-process Apollo and UI).
//!
//! It answers GET only and records every request, so tests can prove the doctor never writes.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    io::Write,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

use super::{
    http::{Apollo, Server, ui},
    pg::PgServer,
    prefect::{CANARY, Seed, seed},
};

use super::http::listening_runtime;

/// The chart's files, kept in the repository: `chart/` (values, embedded in the binary) and
/// `tests/fixtures/` (the rendered manifest).
pub fn reference(name: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = if name.starts_with("manifest") {
        format!("{root}/tests/fixtures/{name}")
    } else {
        format!("{root}/chart/{name}")
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// YAML → JSON with the same parser the doctor uses.
pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("yaml")
}

/// Base64 of gzip of the JSON: the `release` key's content in Helm 3's secret driver.
pub fn helm_encode(release: &Value) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(release.to_string().as_bytes()).expect("gzip");
    base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The release record Helm stores (`helm.sh/helm/v3/pkg/release.Release` as JSON).
pub fn release_json(name: &str, ns: &str, revision: u64, status: &str, config: Value) -> Value {
    release_json_with(
        name,
        ns,
        revision,
        status,
        config,
        &reference("manifest-rendered.yaml"),
    )
}

/// As [`release_json`] with the given rendered manifest.
pub fn release_json_with(
    name: &str,
    ns: &str,
    revision: u64,
    status: &str,
    config: Value,
    manifest: &str,
) -> Value {
    json!({
        "name": name,
        "namespace": ns,
        "version": revision,
        "info": {
            "first_deployed": "2022-12-22T10:00:00Z",
            "last_deployed": "2022-12-22T10:00:00Z",
            "deleted": "",
            "description": if status == "deployed" { "Install complete" } else { "Release \"prefect\" failed: timed out waiting for the condition" },
            "status": status,
        },
        "chart": {
            "metadata": {"name": "prefect-server", "version": "2022.12.22", "appVersion": "2022.12.22",
                         "apiVersion": "v2", "type": "application"},
            "lock": null,
            "templates": [],
            "values": yaml(&reference("values-2022.12.yaml")),
            "schema": null,
            "files": []
        },
        "config": config,
        "manifest": manifest,
        "hooks": []
    })
}

/// The Secret Helm writes for one revision; `payload` is the `release` key's text.
pub fn release_secret(name: &str, ns: &str, revision: u64, status: &str, payload: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{name}.v{revision}"), "namespace": ns,
                     "labels": {"owner": "helm", "name": name, "status": status, "version": revision.to_string()}},
        "data": {"release": b64(payload.as_bytes())}
    })
}

/// The fake cluster's contents and behaviour.
#[derive(Clone, Default)]
pub struct Cluster {
    pub objects: Vec<Value>,
    /// (pod, container, previous) → log text.
    pub logs: BTreeMap<(String, String, bool), String>,
    /// (verb, resource) refused with 403, e.g. ("list", "secrets"), ("get", "pods/log").
    pub forbidden: Vec<(String, String)>,
    /// (pod, port) → where its port-forward goes.
    pub forwards: BTreeMap<(String, u16), SocketAddr>,
    /// Accept connections but never answer.
    pub hang: bool,
    /// Each read of one Helm release secret takes this long.
    pub slow_release_reads: Option<std::time::Duration>,
    /// Group versions discovery answers besides those of Kubernetes 1.25 ([`SERVED_1_25`]), e.g.
    /// `networking.k8s.io/v1beta1` for an older cluster.
    pub also_served: Vec<String>,
    /// Serve HTTPS with this configuration (the server's certificate names `localhost`), and write
    /// this CA (PEM) into the kubeconfig as `certificate-authority-data`.
    pub tls: Option<(Arc<rustls::ServerConfig>, String)>,
    /// Port-forward requests to this port are each answered this long after they came, and counted
    /// in [`Cluster::held_forwards`] meanwhile: how many runs were at that step at once.
    pub hold_forwards: Option<(u16, Duration)>,
    /// Port-forward requests being held at once, by port: a test keeps a clone to read after a run.
    pub held_forwards: Arc<Gauge>,
}

/// How many port-forward requests are held now, and the most there were at once, by port.
#[derive(Default)]
pub struct Gauge {
    by_port: Mutex<BTreeMap<u16, (usize, usize)>>,
}

impl Gauge {
    fn opened(&self, port: u16) {
        if let Ok(mut m) = self.by_port.lock() {
            let (now, most) = m.entry(port).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
    }

    fn closed(&self, port: u16) {
        if let Ok(mut m) = self.by_port.lock() {
            let (now, _) = m.entry(port).or_default();
            *now = now.saturating_sub(1);
        }
    }

    /// The most to `port` there were at once.
    pub fn most(&self, port: u16) -> usize {
        self.by_port
            .lock()
            .map(|m| m.get(&port).map_or(0, |(_, most)| *most))
            .unwrap_or(0)
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

fn pod_from(workload: &Value, suffix: &str) -> Value {
    let template = &workload["spec"]["template"];
    let name = format!(
        "{}-{suffix}",
        workload["metadata"]["name"].as_str().unwrap_or("x")
    );
    let containers = template["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": format!("docker.io/{}@sha256:{}", c["image"].as_str().unwrap_or(""), "a".repeat(64)),
                   "ready": true, "restartCount": 0, "started": true,
                   "state": {"running": {"startedAt": "2022-12-22T10:01:00Z"}}})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": workload["metadata"]["namespace"], "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": statuses}
    })
}

impl Cluster {
    /// The chart's rendered manifest installed as release `prefect` in `default`, every pod Running
    /// and Ready, the LoadBalancers still pending (no external address), and the release secret
    /// (revision 1, deployed, user values `config`).
    pub fn prefect(config: Value) -> Cluster {
        Cluster::prefect_rendered(config, &reference("manifest-rendered.yaml"))
    }

    /// As [`Cluster::prefect`], with the manifest Helm would have rendered from `config`.
    pub fn prefect_rendered(config: Value, manifest: &str) -> Cluster {
        let docs: Vec<Value> = serde_saphyr::from_multiple(manifest).expect("manifest");
        let mut objects = Vec::new();
        for mut d in docs.into_iter().filter(Value::is_object) {
            if d["metadata"]["namespace"].is_null() {
                d["metadata"]["namespace"] = json!("default");
            }
            // The manifest renders `instance:  prefect` with two spaces: YAML trims it.
            objects.push(d);
        }
        let workloads: Vec<Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
            .cloned()
            .collect();
        for w in &workloads {
            let suffix = if w["kind"] == "StatefulSet" {
                "0"
            } else {
                "6d4b9c7f5-x2x9k"
            };
            objects.push(pod_from(w, suffix));
        }
        for o in objects.iter_mut().filter(|o| o["kind"] == "Service") {
            o["status"] = json!({"loadBalancer": {}});
        }
        let payload = helm_encode(&release_json_with(
            "prefect", "default", 1, "deployed", config, manifest,
        ));
        objects.push(release_secret(
            "prefect", "default", 1, "deployed", &payload,
        ));
        Cluster {
            objects,
            ..Cluster::default()
        }
    }

    pub fn find_mut(&mut self, kind: &str, name_prefix: &str) -> &mut Value {
        self.objects
            .iter_mut()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(name_prefix))
            })
            .unwrap_or_else(|| panic!("no {kind} {name_prefix}"))
    }

    pub fn pod_name(&self, prefix: &str) -> String {
        self.objects
            .iter()
            .find(|o| {
                o["kind"] == "Pod"
                    && o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
            })
            .and_then(|o| o["metadata"]["name"].as_str())
            .unwrap_or_else(|| panic!("no pod {prefix}"))
            .to_string()
    }

    /// Sets a secret's key (the value is base64-encoded as the API does).
    pub fn set_secret_key(&mut self, secret: &str, key: &str, value: &str) {
        let s = self.find_mut("Secret", secret);
        s["data"][key] = json!(b64(value.as_bytes()));
    }

    pub fn remove(&mut self, kind: &str, name: &str) {
        self.objects
            .retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
    }

    /// Forwards port `port` of the pod whose name starts with `pod_prefix` to `to`.
    pub fn forward(&mut self, pod_prefix: &str, port: u16, to: SocketAddr) {
        let pod = self.pod_name(pod_prefix);
        self.forwards.insert((pod, port), to);
    }

    pub fn forbid(&mut self, verb: &str, resource: &str) {
        self.forbidden
            .push((verb.to_string(), resource.to_string()));
    }

    pub fn start(self) -> KubeServer {
        KubeServer::start(self)
    }
}

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

fn status(code: u16, reason: &str, message: String) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
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

/// `stream` as the server sees it across a network `one_way` long each way: what either side
/// writes reaches the other `one_way` later, in order, without waiting for what is still on its
/// way (a delay line, not a slower link).
fn far_away(stream: tokio::net::TcpStream, one_way: Duration) -> tokio::io::DuplexStream {
    let (near, far) = tokio::io::duplex(256 * 1024);
    let (net_rd, net_wr) = stream.into_split();
    let (far_rd, far_wr) = tokio::io::split(far);
    tokio::spawn(delay_line(net_rd, far_wr, one_way));
    tokio::spawn(delay_line(far_rd, net_wr, one_way));
    near
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delay_line(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reading = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Answers the WebSocket upgrade as the API server does and bridges channel 0 to `to`.
fn upgrade_portforward(req: Request<Incoming>, to: SocketAddr, port: u16) -> Response<Full<Bytes>> {
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_string)
    else {
        return status(400, "BadRequest", "not a websocket request".to_string());
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut sink, mut stream) = ws.split();
        let p = port.to_le_bytes();
        // The first frame on each channel names the port.
        if sink
            .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                0, p[0], p[1],
            ]))
            .await
            .is_err()
            || sink
                .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                    1, p[0], p[1],
                ]))
                .await
                .is_err()
        {
            return;
        }
        let Ok(tcp) = tokio::net::TcpStream::connect(to).await else {
            let _ = sink
                .send(tokio_tungstenite::tungstenite::Message::binary(
                    [&[1u8][..], b"connection refused"].concat(),
                ))
                .await;
            return;
        };
        let _ = tcp.set_nodelay(true);
        let (mut rd, mut wr) = tcp.into_split();
        let up = async {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    tokio_tungstenite::tungstenite::Message::Binary(b)
                        if b.len() > 1 && b[0] == 0 && wr.write_all(&b[1..]).await.is_err() =>
                    {
                        break;
                    }
                    tokio_tungstenite::tungstenite::Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = wr.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(0);
                        frame.extend_from_slice(&buf[..n]);
                        if sink
                            .send(tokio_tungstenite::tungstenite::Message::binary(frame))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = sink
                .send(tokio_tungstenite::tungstenite::Message::Close(None))
                .await;
        };
        tokio::join!(up, down);
    });
    Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", "v4.channel.k8s.io")
        .body(Full::new(Bytes::new()))
        .expect("response")
}

/// The chart's agent Deployment as `templates/agent/deployment.yaml` renders it for release `prefect`
/// in `default` (agent.enabled=true), with `replicas` and extra `agent.env` entries, and the Role and
/// RoleBinding `templates/agent/rbac.yaml` renders beside it.
pub fn agent_manifest(replicas: u32, extra_env: &str) -> String {
    format!(
        "{}\n---\n{}",
        reference("manifest-rendered.yaml"),
        agent_documents(replicas, extra_env)
    )
}

/// The agent's documents of [`agent_manifest`] alone.
pub fn agent_documents(replicas: u32, extra_env: &str) -> String {
    format!(
        "# Source: prefect-server/templates/agent/deployment.yaml\n\
apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: prefect-agent\n  labels:\n    app.kubernetes.io/name: prefect-server\n    \
app.kubernetes.io/instance: prefect\n    app.kubernetes.io/component: agent\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      \
app.kubernetes.io/name: prefect-server\n      app.kubernetes.io/instance: prefect\n      app.kubernetes.io/component: agent\n  template:\n    metadata:\n      \
labels:\n        app.kubernetes.io/name: prefect-server\n        app.kubernetes.io/instance: prefect\n        app.kubernetes.io/component: agent\n    spec:\n      \
serviceAccountName: prefect-serviceaccount\n      containers:\n      - name: agent\n        image: \"prefecthq/prefect:1.4.0-python3.7\"\n        \
command: [bash, \"-c\", \"prefect agent kubernetes start\"]\n        env:\n          - name: PREFECT__CLOUD__API\n            value: http://prefect-apollo.default:4200/graphql\n          \
- name: NAMESPACE\n            value: default\n          - name: PREFECT__CLOUD__AGENT__LABELS\n            value: \"[]\"\n          \
- name: PREFECT__BACKEND\n            value: server\n{extra_env}{AGENT_RBAC}"
    )
}

/// `templates/agent/rbac.yaml` rendered for release `prefect` (its RoleBinding's subject names no
/// namespace: the binding's own).
pub const AGENT_RBAC: &str = "---\n# Source: prefect-server/templates/agent/rbac.yaml\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: prefect-agent-role\n  labels:\n    app.kubernetes.io/instance: prefect\n    \
app.kubernetes.io/component: agent-role\n  namespace: default\nrules:\n- apiGroups:\n  - batch\n  - extensions\n  resources:\n  - jobs\n  verbs:\n  - '*'\n\
- apiGroups:\n  - ''\n  resources:\n  - pods\n  verbs:\n  - '*'\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: prefect-agent-role-binding\n  labels:\n    app.kubernetes.io/instance: prefect\n    \
app.kubernetes.io/component: agent-role-binding\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: prefect-agent-role\n\
subjects:\n- kind: ServiceAccount\n  name: prefect-serviceaccount\n";

/// Releases of the chart in several namespaces of one in-test cluster, every pod forwarded to one
/// healthy install (a real PostgreSQL, an Apollo, a UI).
pub struct FleetInstall {
    pub pg: PgServer,
    pub apollo: Server,
    pub ui: Server,
    pub server: KubeServer,
}

/// Release `name` of the chart in namespace `ns`: its objects, its pods, its Helm secret.
pub fn release_in(name: &str, ns: &str) -> Vec<Value> {
    // As Helm renders it in `ns`: the services' in-cluster names carry the namespace.
    let manifest = reference("manifest-rendered.yaml").replace(".default", &format!(".{ns}"));
    let mut objects: Vec<Value> = Cluster::prefect_rendered(json!({}), &manifest)
        .objects
        .into_iter()
        .filter(|o| o["type"] != "helm.sh/release.v1")
        .collect();
    for o in &mut objects {
        o["metadata"]["namespace"] = json!(ns);
    }
    let payload = helm_encode(&release_json_with(
        name,
        ns,
        1,
        "deployed",
        json!({}),
        &manifest,
    ));
    objects.push(release_secret(name, ns, 1, "deployed", &payload));
    objects
}

/// The releases (name, namespace) in one cluster; every pod's ports forwarded to one healthy install.
pub fn fleet_install(releases: &[(&str, &str)], tweak: impl FnOnce(&mut Cluster)) -> FleetInstall {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let apollo = Apollo::default().start();
    let ui = ui(&format!("{}/graphql", apollo.url));
    let mut c = Cluster::default();
    for (name, ns) in releases {
        c.objects.extend(release_in(name, ns));
    }
    c.forward("prefect-postgresql", 5432, ([127, 0, 0, 1], pg.port).into());
    c.forward("prefect-apollo", 4200, apollo.addr);
    c.forward("prefect-ui", 8080, ui.addr);
    for s in c
        .objects
        .iter_mut()
        .filter(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "prefect-postgresql")
    {
        s["data"]["postgres-password"] = json!(b64(CANARY.as_bytes()));
        s["data"]["password"] = json!(b64(CANARY.as_bytes()));
    }
    tweak(&mut c);
    FleetInstall {
        pg,
        apollo,
        ui,
        server: c.start(),
    }
}
