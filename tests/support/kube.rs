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
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::{Value, json};

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
    pub fn opened(&self, port: u16) {
        if let Ok(mut m) = self.by_port.lock() {
            let (now, most) = m.entry(port).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
    }

    pub fn closed(&self, port: u16) {
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

/// A `Status` answer, as the API server refuses.
pub fn status(code: u16, reason: &str, message: String) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}
