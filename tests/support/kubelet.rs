//! The kubelet side of the tests' real control plane: kwok (built by `tests/cluster/build`) serves a
//! Node's kubelet API, so the API server's port-forward and log requests for the pods on it reach
//! local addresses (the real test PostgreSQL, the in-test Apollo and UI) and local files, through the
//! real API server. One kwok per test (its own Node, named after the test's namespace), so that each
//! test's forwards are its own; pods are the release's workloads', created as their controllers
//! would (no controller manager or scheduler runs here) and given the statuses a kubelet reports.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::cluster::ControlPlane;

/// A running kwok serving one Node.
pub struct Kubelet {
    child: Child,
    pub node: String,
    pub port: u16,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a pod's port is forwarded, and a container's log file.
#[derive(Default)]
pub struct Wiring {
    /// (pod, port, where it really listens)
    pub forwards: Vec<(String, u16, SocketAddr)>,
    /// (pod, container, log file, previous container's log file)
    pub logs: Vec<(String, String, PathBuf, Option<PathBuf>)>,
}

impl ControlPlane {
    /// Starts kwok for namespace `ns` with `wiring`, and registers its Node (Ready, at 127.0.0.1 and
    /// kwok's port, as a kubelet registers itself).
    pub fn kubelet(&self, ns: &str, wiring: &Wiring) -> Kubelet {
        let port = super::cluster::free_port();
        let node = format!("node-{ns}");
        let mut config = String::new();
        // kwok refuses to start without stages; these match nothing: the tests write the statuses.
        for kind in ["Node", "Pod"] {
            config.push_str(&format!(
                "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: never-{}\nspec:\n  \
                 resourceRef:\n    apiVersion: v1\n    kind: {kind}\n  selector:\n    matchExpressions:\n    \
                 - key: '.metadata.annotations[\"prefect-doctor.test/never\"]'\n      operator: In\n      \
                 values: [\"yes\"]\n  next: {{}}\n---\n",
                kind.to_lowercase()
            ));
        }
        for (pod, port, to) in &wiring.forwards {
            config.push_str(&format!(
                "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: PortForward\nmetadata:\n  name: {pod}\n  \
                 namespace: {ns}\nspec:\n  forwards:\n  - ports: [{port}]\n    target:\n      \
                 port: {}\n      address: {}\n---\n",
                to.port(),
                to.ip()
            ));
        }
        for (pod, container, file, previous) in &wiring.logs {
            config.push_str(&format!(
                "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Logs\nmetadata:\n  name: {pod}\n  \
                 namespace: {ns}\nspec:\n  logs:\n  - containers: [{container}]\n    logsFile: {}\n{}---\n",
                file.display(),
                previous
                    .as_ref()
                    .map(|p| format!("    previousLogsFile: {}\n", p.display()))
                    .unwrap_or_default()
            ));
        }
        let dir = self.dir().join(format!("kwok-{ns}"));
        std::fs::create_dir_all(&dir).expect("kwok dir");
        let config_path = dir.join("kwok.yaml");
        std::fs::write(&config_path, config).expect("kwok config");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("kwok log");
        let mut cmd = Command::new(self.bin.join("kwok"));
        cmd.arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .arg("--config")
            .arg(&config_path)
            .arg(format!("--manage-single-node={node}"))
            .arg(format!("--server-address=127.0.0.1:{port}"))
            .arg("--node-ip=127.0.0.1")
            .arg(format!("--node-port={port}"))
            .arg(format!(
                "--tls-cert-file={}",
                self.dir().join("apiserver.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                self.dir().join("apiserver.key").display()
            ))
            .env("HOME", &dir)
            .stdout(log("kwok.log"))
            .stderr(log("kwok.err"));
        let child = super::cluster::spawn_tied(cmd);
        let mut kubelet = Kubelet { child, node, port };
        // Registered as a kubelet registers its Node.
        self.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {}\n  labels:\n    kubernetes.io/hostname: {}\n",
            kubelet.node, kubelet.node
        ));
        self.patch_status(
            "node",
            None,
            &kubelet.node,
            &json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                // No Hostname address: the API server would try to resolve it first.
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                "nodeInfo": {"kubeletVersion": "v1.36.3", "architecture": "amd64", "operatingSystem": "linux",
                             "bootID": "", "containerRuntimeVersion": "kwok", "kernelVersion": "",
                             "kubeProxyVersion": "", "machineID": "", "osImage": "", "systemUUID": ""}
            }}),
        );
        // Until kwok's server answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = kubelet.child.try_wait() {
                panic!(
                    "kwok exited ({status}): {}",
                    std::fs::read_to_string(dir.join("kwok.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "kwok did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        kubelet.port = port;
        kubelet
    }

    /// `kubectl patch --subresource=status` (merge) as the admin.
    pub fn patch_status(&self, kind: &str, ns: Option<&str>, name: &str, patch: &Value) {
        let mut args = vec!["patch", kind, name, "--subresource=status", "--type=merge"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let p = patch.to_string();
        args.extend(["-p", p.as_str()]);
        self.kubectl_ok(&args);
    }

    /// The pods release `release`'s workloads would have, on `kubelet`'s Node, Running and Ready:
    /// one per Deployment (`NAME-6d4b9c7f5-x2x9k`, owned by its ReplicaSet `NAME-6d4b9c7f5`) and
    /// StatefulSet (`NAME-0`). Their names, in the manifest's order.
    pub fn run_pods(&self, ns: &str, release: &str, kubelet: &Kubelet) -> Vec<String> {
        let manifest = self.helm_ok(&["get", "manifest", release, "-n", ns]);
        let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).expect("manifest");
        let mut names = Vec::new();
        for w in docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        {
            let name = w["metadata"]["name"].as_str().expect("name");
            let uid = self
                .kubectl_ok(&[
                    "get",
                    &w["kind"].as_str().unwrap().to_lowercase(),
                    name,
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={.metadata.uid}",
                ])
                .trim()
                .to_string();
            let (pod, owner) = if w["kind"] == "StatefulSet" {
                (
                    format!("{name}-0"),
                    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "uid": uid, "controller": true}),
                )
            } else {
                // The ReplicaSet a Deployment controller would make (owned by the Deployment).
                let rs = format!("{name}-6d4b9c7f5");
                let mut labels = w["spec"]["template"]["metadata"]["labels"].clone();
                labels["pod-template-hash"] = json!("6d4b9c7f5");
                let rs_obj = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs, "namespace": ns, "labels": labels,
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true}]},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels}, "spec": w["spec"]["template"]["spec"]}}});
                let created = self.create(&rs_obj.to_string());
                let rs_uid = created["metadata"]["uid"].clone();
                (
                    format!("{rs}-x2x9k"),
                    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rs_uid, "controller": true}),
                )
            };
            let mut labels = w["spec"]["template"]["metadata"]["labels"].clone();
            if w["kind"] == "Deployment" {
                labels["pod-template-hash"] = json!("6d4b9c7f5");
            }
            let mut spec = w["spec"]["template"]["spec"].clone();
            spec["nodeName"] = json!(kubelet.node);
            let created = self.create(
                &json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
                    "spec": spec})
                .to_string(),
            );
            self.patch_status("pod", Some(ns), &pod, &running(&created));
            names.push(pod);
        }
        names
    }
}

/// A release whose pods run on kwok's Node: PostgreSQL forwarded to the real test server, Apollo
/// and the UI to the in-test ones, and the Secret holding the real database's password.
pub struct Running {
    pub pg: super::pg::PgServer,
    pub apollo: super::http::Server,
    pub ui: super::http::Server,
    pub kubelet: Kubelet,
    pub ns: String,
    pub kubeconfig: PathBuf,
    pub pods: Vec<String>,
    /// The database pod's relay when it is to die or hold ([`Scenario::db_dies_on`]).
    pub dying: Option<super::dying::Dying>,
    /// The tenants Apollo was asked to create (`create_tenant`), by slug.
    pub tenants_created: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// What differs from a healthy install.
pub struct Scenario<'a> {
    pub seed: super::prefect::Seed,
    /// The password the chart's Secret holds (default: the database's real one).
    pub secret_password: Option<&'a str>,
    /// The Secret's `postgres-password` (the superuser's), when it is not `password`'s.
    pub superuser_password: Option<&'a str>,
    /// The UI's server_url (default: the in-test Apollo as this machine reaches it).
    pub server_url: Option<String>,
    pub helm: &'a [&'a str],
    /// The tenants Apollo answers (default: one).
    pub tenants: Option<Vec<&'static str>>,
    /// (pod, container, log text)
    pub logs: Vec<(&'a str, &'a str, &'a str)>,
    /// (pod, container, the log of its previous run, as `kubectl logs --previous` reads it)
    pub previous_logs: Vec<(&'a str, &'a str, &'a str)>,
    /// Every pod's port forwarded to a local port nothing listens on (the container is up, its
    /// server is not).
    pub refusing: bool,
    /// The release's pods whose port refuses so (the others' servers answer).
    pub refusing_pods: Vec<&'a str>,
    /// Pods not made yet, wired now (kwok's forwards are set when it starts): (pod, port, the
    /// release's pod whose server it reaches), for a test to make during a run.
    pub spares: Vec<(&'a str, u16, &'a str)>,
    /// The database's pod dies (every connection reset, its port closed) when a client sends a
    /// statement holding this text.
    pub db_dies_on: Option<&'a str>,
    /// The database's pod stops answering (holding its connections open) when a client sends a
    /// statement holding this text.
    pub db_holds_on: Option<&'a str>,
}

impl Default for Scenario<'_> {
    fn default() -> Self {
        Scenario {
            seed: super::prefect::Seed::healthy("prefect"),
            secret_password: None,
            superuser_password: None,
            server_url: None,
            helm: &[],
            tenants: None,
            logs: Vec::new(),
            previous_logs: Vec::new(),
            refusing: false,
            refusing_pods: Vec::new(),
            spares: Vec::new(),
            db_dies_on: None,
            db_holds_on: None,
        }
    }
}

pub fn running_release(cp: &ControlPlane, prefix: &str, s: Scenario) -> Running {
    use super::{
        http::{Apollo, ui},
        pg::PgServer,
        prefect::CANARY,
    };
    let pg = PgServer::start();
    super::prefect::seed(&pg, &s.seed);
    let mut apollo = Apollo::default();
    if let Some(t) = &s.tenants {
        apollo.tenants = t.clone();
    }
    let tenants_created = apollo.created.clone();
    let apollo = apollo.start();
    let ui = ui(&s
        .server_url
        .clone()
        .unwrap_or_else(|| format!("{}/graphql", apollo.url)));
    let ns = cp.namespace(prefix);
    cp.install(&ns, "prefect", s.helm);
    // The chart's Secret, holding the password the real database has (or the scenario's).
    let b64 = |p: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(p)
    };
    let pw = b64(s.secret_password.unwrap_or(CANARY));
    let super_pw = s.superuser_password.map(b64).unwrap_or_else(|| pw.clone());
    cp.kubectl_ok(&[
        "patch",
        "secret",
        "prefect-postgresql",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        &format!(r#"{{"data": {{"password": "{pw}", "postgres-password": "{super_pw}"}}}}"#),
    ]);
    let dir = cp.dir().join(format!("logs-{ns}"));
    std::fs::create_dir_all(&dir).expect("logs dir");
    let dead: std::net::SocketAddr = ([127, 0, 0, 1], super::cluster::free_port()).into();
    let pg_addr: std::net::SocketAddr = ([127, 0, 0, 1], pg.port).into();
    let dying = match (s.db_dies_on, s.db_holds_on) {
        (Some(t), _) => Some(super::dying::Dying::start(pg_addr, t)),
        (None, Some(t)) => Some(super::dying::Dying::holding(pg_addr, t)),
        (None, None) => None,
    };
    let db_addr = match &dying {
        Some(d) => d.addr,
        None => ([127, 0, 0, 1], pg.port).into(),
    };
    let servers: [(&str, u16, std::net::SocketAddr); 3] = [
        ("prefect-postgresql-0", 5432, db_addr),
        ("prefect-apollo-6d4b9c7f5-x2x9k", 4200, apollo.addr),
        ("prefect-ui-6d4b9c7f5-x2x9k", 8080, ui.addr),
    ];
    let refuses = |pod: &str| s.refusing || s.refusing_pods.contains(&pod);
    let wiring = Wiring {
        forwards: servers
            .iter()
            .map(|(pod, port, addr)| {
                let to = if refuses(pod) { dead } else { *addr };
                (pod.to_string(), *port, to)
            })
            .chain(s.spares.iter().map(|(spare, port, like)| {
                let (_, _, addr) = servers
                    .iter()
                    .find(|(pod, _, _)| pod == like)
                    .expect("a pod of the release");
                (spare.to_string(), *port, *addr)
            }))
            .collect(),
        logs: {
            // As the container runtime writes it and the kubelet reads it (CRI log format).
            let write = |name: String, text: &str| {
                let file = dir.join(name);
                let cri: String = text
                    .lines()
                    .map(|l| format!("2026-12-06T10:00:00.000000000Z stdout F {l}\n"))
                    .collect();
                std::fs::write(&file, cri).expect("log file");
                file
            };
            let mut logs: Vec<(String, String, PathBuf, Option<PathBuf>)> = s
                .logs
                .iter()
                .map(|(pod, container, text)| {
                    let file = write(format!("{pod}-{container}.log"), text);
                    (pod.to_string(), container.to_string(), file, None)
                })
                .collect();
            for (pod, container, text) in &s.previous_logs {
                let previous = write(format!("{pod}-{container}-previous.log"), text);
                match logs.iter_mut().find(|l| l.0 == *pod && l.1 == *container) {
                    Some(l) => l.3 = Some(previous),
                    None => {
                        let file = write(format!("{pod}-{container}.log"), "");
                        logs.push((pod.to_string(), container.to_string(), file, Some(previous)));
                    }
                }
            }
            logs
        },
    };
    let kubelet = cp.kubelet(&ns, &wiring);
    let pods = cp.run_pods(&ns, "prefect", &kubelet);
    let kubeconfig = cp.admin_in(&ns);
    Running {
        pg,
        apollo,
        ui,
        kubelet,
        ns,
        kubeconfig,
        pods,
        dying,
        tenants_created,
    }
}

impl ControlPlane {
    /// Pod `old` of `ns` deleted (at once, as `kubectl delete --force` and a kubelet that saw its
    /// containers end) and, when `new` is given, made again under that name as its ReplicaSet would,
    /// on the same Node, Running and Ready.
    pub fn replace_pod(&self, ns: &str, old: &str, new: Option<&str>) {
        let pod = self.get_json("pod", ns, old);
        self.kubectl_ok(&[
            "delete",
            "pod",
            old,
            "-n",
            ns,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        let Some(new) = new else { return };
        let made = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": new, "namespace": ns, "labels": pod["metadata"]["labels"],
                         "ownerReferences": pod["metadata"]["ownerReferences"]},
            "spec": pod["spec"]});
        let created = self.create(&made.to_string());
        self.patch_status("pod", Some(ns), new, &running(&created));
    }
}

/// The status a kubelet reports for `pod` once every container runs and is ready.
pub fn running(pod: &Value) -> Value {
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"],
                   "imageID": format!("docker.io/{}@sha256:{}", c["image"].as_str().unwrap_or(""), "a".repeat(64)),
                   "containerID": format!("containerd://{}", "b".repeat(64)),
                   "ready": true, "started": true, "restartCount": 0,
                   "state": {"running": {"startedAt": now()}}})
        })
        .collect();
    json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
        "startTime": now(),
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now()},
            {"type": "Ready", "status": "True", "lastTransitionTime": now()}
        ],
        "containerStatuses": statuses
    }})
}

fn now() -> String {
    // RFC 3339 in UTC, to the second, as the API server stores times.
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
