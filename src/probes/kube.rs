//! The Kubernetes API, read-only, with kubectl's targeting conventions (`--kubeconfig`, `--context`,
//! `-n`, `KUBECONFIG`, in-cluster config).
//!
//! Every call has a deadline, and a probe that has once found the API server unreachable (or silent)
//! answers every later call with that same error at once: a dead cluster costs one timeout per run,
//! not one per check. RBAC refusals come back as [`KubeError::Forbidden`] naming the verb and the
//! resource, so a check can `skip` with what it needed.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{ListParams, LogParams},
    config::KubeConfigOptions,
};

use super::error_text::chain;
pub use super::forward::PodConnector;
pub use super::kube_error::KubeError;
use super::kube_error::tls_failure;
use super::kube_options::nowhere_found;
pub use super::kube_options::{KubeOptions, config_available};
pub use super::kube_types::{ClusterScoped, Namespaced};

/// The largest answer read from the Kubernetes API (a Secret is at most 1 MiB; a list of the
/// namespace's pods or Helm release metadata is far less).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A connected client and where it points.
#[derive(Clone)]
pub struct KubeProbe {
    client: Client,
    /// The namespace to look in (`-n`, else the context's, else `default`).
    pub namespace: String,
    /// `-A`: look for releases in every namespace.
    pub all_namespaces: bool,
    /// The API server's URL, for messages.
    pub server: String,
    /// The kubeconfig context, or `in-cluster`.
    pub context: String,
    /// The kube config file the context was read from (`None`: in-cluster).
    pub file: Option<String>,
    /// The context's user (`None`: in-cluster), for messages.
    pub user: Option<String>,
    timeout: Duration,
    dead: Arc<OnceLock<KubeError>>,
    /// A replay of a run whose API server was out of reach: every call answers this at once.
    preset_dead: Option<KubeError>,
    /// The kube config's `proxy-url` (credentials masked), for messages.
    proxy: Option<String>,
}

/// What a replay needs to make the recorded run's probe.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KubeSnap {
    pub namespace: String,
    pub all_namespaces: bool,
    pub server: String,
    pub context: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    pub timeout: Duration,
    /// The API server was out of reach (every call got this).
    pub dead: Option<KubeError>,
}

impl fmt::Debug for KubeProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeProbe")
            .field("server", &self.server)
            .field("context", &self.context)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl KubeProbe {
    /// Loads the configuration and builds a client; no request is sent yet.
    pub async fn connect(opts: &KubeOptions, timeout: Duration) -> Result<KubeProbe, KubeError> {
        Self::connect_with(opts, timeout, &super::tape::TapeMode::Live).await
    }

    /// The probe of a recorded run, answering from its tape.
    pub fn replayed(tape: Arc<super::tape::Tape>, s: &KubeSnap) -> KubeProbe {
        let dead = Arc::new(OnceLock::new());
        if let Some(e) = &s.dead {
            let _ = dead.set(e.clone());
        }
        KubeProbe {
            client: super::kube_tape::replay_client(tape, &s.namespace),
            namespace: s.namespace.clone(),
            all_namespaces: s.all_namespaces,
            server: s.server.clone(),
            context: s.context.clone(),
            file: s.file.clone(),
            user: s.user.clone(),
            timeout: s.timeout,
            dead,
            preset_dead: s.dead.clone(),
            proxy: None,
        }
    }

    /// What a replay needs to make this probe again.
    pub fn snap(&self) -> KubeSnap {
        KubeSnap {
            namespace: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            server: self.server.clone(),
            context: self.context.clone(),
            file: self.file.clone(),
            user: self.user.clone(),
            timeout: self.timeout,
            dead: self.dead.get().cloned(),
        }
    }

    /// As [`KubeProbe::connect`], recording every answer when `tape` says so.
    pub async fn connect_with(
        opts: &KubeOptions,
        timeout: Duration,
        tape: &super::tape::TapeMode,
    ) -> Result<KubeProbe, KubeError> {
        let kopts = KubeConfigOptions {
            context: opts.context.clone(),
            ..Default::default()
        };
        let mut file = None;
        let mut user = None;
        let loaded = match super::kubeconfig::read_kubeconfig_from(opts.kubeconfig.as_deref())
            .map_err(KubeError::Config)?
        {
            Some((mut kc, from)) => {
                let context = kopts.context.clone().or_else(|| kc.current_context.clone());
                file = context
                    .as_ref()
                    .and_then(|c| from.get(c))
                    .map(|p| p.display().to_string());
                user = context.as_ref().and_then(|c| {
                    kc.contexts
                        .iter()
                        .find(|n| &n.name == c)
                        .and_then(|n| n.context.as_ref())
                        .and_then(|c| c.user.clone())
                });
                super::kubeconfig::run_exec_plugin(&mut kc, context.as_deref(), timeout)
                    .await
                    .map_err(KubeError::Config)?;
                kube::Config::from_custom_kubeconfig(kc, &kopts)
                    .await
                    .map(|c| (c, context))
            }
            None if opts.context.is_some() => {
                return Err(KubeError::Config(
                    "no kubeconfig file found (KUBECONFIG, ~/.kube/config) for --context"
                        .to_string(),
                ));
            }
            None => match kube::Config::incluster() {
                Ok(c) => Ok((c, Some("in-cluster".to_string()))),
                Err(e) => return Err(KubeError::Config(nowhere_found(&e.to_string()))),
            },
        };
        let (mut config, context) = loaded.map_err(|e| KubeError::Config(e.to_string()))?;
        let proxy = config
            .proxy_url
            .as_ref()
            .map(|u| crate::untrusted::line(&crate::redact::scrub(&u.to_string()), 200));
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let namespace = opts
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        // Every response body is read with a cap: a 64 MiB Secret or an endless stream is cut off.
        let builder = super::kube_client::builder(config)
            .map_err(|e| KubeError::Config(e.to_string()))?
            .with_layer(&tower::util::MapResponseLayer::new(
                |r: http::Response<Box<kube::client::DynBody>>| {
                    r.map(|b| http_body_util::Limited::new(b, MAX_RESPONSE_BYTES))
                },
            ));
        let client = match tape {
            super::tape::TapeMode::Record(rec) => builder
                .with_layer(&super::kube_tape::RecordLayer::new(rec.clone()))
                .build(),
            _ => builder.build(),
        };
        Ok(KubeProbe {
            client,
            namespace,
            all_namespaces: opts.all_namespaces,
            server: server.trim_end_matches('/').to_string(),
            context: context.unwrap_or_else(|| "(current)".to_string()),
            file,
            user: user.map(|u| crate::untrusted::line(&u, 200)),
            timeout,
            dead: Arc::new(OnceLock::new()),
            preset_dead: None,
            proxy,
        })
    }

    /// The deadline of each call (`--timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same client with its own dead-server latch, for a new `--wait` round.
    pub fn fresh(&self) -> KubeProbe {
        let dead = Arc::new(OnceLock::new());
        if let Some(e) = &self.preset_dead {
            let _ = dead.set(e.clone());
        }
        KubeProbe {
            dead,
            ..self.clone()
        }
    }

    /// The same client looking at one namespace, with its own dead-server latch: a fleet's run of
    /// one release, on the client its listing made (no second kubeconfig read, TLS set-up or
    /// connection pool per release).
    pub fn scoped(&self, namespace: &str) -> KubeProbe {
        KubeProbe {
            namespace: namespace.to_string(),
            all_namespaces: false,
            ..self.fresh()
        }
    }

    async fn call<T>(
        &self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubeError> {
        if let Some(e) = self.dead.get() {
            return Err(e.clone());
        }
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(KubeError::Timeout {
                server: self.server.clone(),
                after: self.timeout,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(e, verb, resource, namespace)),
        };
        // A replayed run's question the bundle cannot answer.
        if let Err(e) = &result
            && e.to_string().contains(super::tape::NOT_IN_BUNDLE)
        {
            super::tape::missed(format!("the cluster's answer to {verb} {resource}"));
        }
        if let Err(e) = &result
            && e.is_unreachable()
        {
            let _ = self.dead.set(e.clone());
        }
        result
    }

    fn classify(
        &self,
        e: kube::Error,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> KubeError {
        match e {
            kube::Error::Api(status) if status.code == 403 => KubeError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
                who: super::kube_error::refused_user(&status.message),
            },
            // The server's words are not repeated: some proxies echo the credentials in them.
            kube::Error::Api(status) if status.code == 401 => KubeError::Unauthorized {
                server: self.server.clone(),
                context: self.context.clone(),
                user: self.user.clone(),
            },
            kube::Error::Api(status) => KubeError::Api {
                verb: verb.to_string(),
                resource: resource.to_string(),
                code: status.code,
                message: status.message.clone(),
            },
            kube::Error::SerdeError(_) => KubeError::Other(format!(
                "the Kubernetes API at {} answered {verb} {resource} with something that is not \
                 Kubernetes JSON (an HTML page from a proxy, a login portal or a load balancer?)",
                self.server
            )),
            kube::Error::HyperError(_) | kube::Error::Service(_)
                if chain(&e).contains("length limit exceeded") =>
            {
                KubeError::Other(format!(
                    "the answer to {verb} {resource} is larger than {} MiB; stopped reading it",
                    MAX_RESPONSE_BYTES / (1024 * 1024)
                ))
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                let detail = chain(&e);
                // The client's own read/connect timeouts (set to ours) say "timed out".
                if detail.contains("timed out") {
                    KubeError::Timeout {
                        server: self.server.clone(),
                        after: self.timeout,
                    }
                } else {
                    KubeError::Unreachable {
                        server: match &self.proxy {
                            Some(p) => format!(
                                "{} through the proxy {p} (the kube config's proxy-url)",
                                self.server
                            ),
                            None => self.server.clone(),
                        },
                        detail: tls_failure(&e).unwrap_or(detail),
                    }
                }
            }
            kube::Error::UpgradeConnection(_) => KubeError::Other(format!(
                "the Kubernetes API did not open the {verb} stream for {resource}: {}",
                chain(&e)
            )),
            other => KubeError::Other(format!("cannot {verb} {resource}: {}", chain(&other))),
        }
    }

    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Namespaced,
    {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Lists objects (in every namespace when `namespace` is `None`) matching a label selector.
    pub async fn list<K>(
        &self,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<K>, KubeError>
    where
        K: Namespaced,
    {
        let api = self.api::<K>(namespace);
        let lp = ListParams::default().labels(selector);
        let plural = K::plural(&()).to_string();
        self.call("list", &plural, namespace, api.list(&lp))
            .await
            .map(|l| l.items)
    }

    /// Lists only the metadata of objects matching a label selector (no secret data crosses the wire).
    pub async fn list_metadata<K>(
        &self,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<kube::core::PartialObjectMeta<K>>, KubeError>
    where
        K: Namespaced,
    {
        let api = self.api::<K>(namespace);
        let lp = ListParams::default().labels(selector);
        let plural = K::plural(&()).to_string();
        self.call("list", &plural, namespace, api.list_metadata(&lp))
            .await
            .map(|l| l.items)
    }

    /// Gets one object; `Ok(None)` when it does not exist.
    pub async fn get<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, KubeError>
    where
        K: Namespaced,
    {
        let api = self.api::<K>(Some(namespace));
        let plural = K::plural(&()).to_string();
        self.call("get", &plural, Some(namespace), api.get_opt(name))
            .await
    }

    /// Lists cluster-scoped objects (IngressClass, StorageClass, Namespace).
    pub async fn list_cluster<K>(&self) -> Result<Vec<K>, KubeError>
    where
        K: ClusterScoped,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let plural = K::plural(&()).to_string();
        self.call("list", &plural, None, api.list(&ListParams::default()))
            .await
            .map(|l| l.items)
    }

    /// The API versions the cluster serves (`v1`, `apps/v1`, `networking.k8s.io/v1` …), from its
    /// discovery documents (`GET /api`, `GET /apis`), and its version (`GET /version`, `None` when
    /// it does not say).
    pub async fn served_versions(
        &self,
    ) -> Result<(std::collections::BTreeSet<String>, Option<String>), KubeError> {
        let core = self
            .call("get", "api", None, self.client.list_core_api_versions())
            .await?;
        let groups = self
            .call("get", "apis", None, self.client.list_api_groups())
            .await?;
        let mut served: std::collections::BTreeSet<String> = core.versions.into_iter().collect();
        for g in groups.groups {
            served.extend(g.versions.into_iter().map(|v| v.group_version));
        }
        let version = self
            .call("get", "version", None, self.client.apiserver_version())
            .await
            .ok()
            .map(|i| i.git_version);
        Ok((served, version))
    }

    /// Objects of any namespaced resource (`deployments.apps`, `pods`, `ingresses.networking.k8s.io`)
    /// in `namespace`, as JSON: the one named `name`, or those matching `selector`. The version is the
    /// group's preferred one, from discovery.
    pub async fn read_any(
        &self,
        namespace: &str,
        resource: &str,
        name: Option<&str>,
        selector: &str,
    ) -> Result<Vec<serde_json::Value>, KubeError> {
        use kube::core::{ApiResource, DynamicObject};
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        let version = if group.is_empty() {
            "v1".to_string()
        } else {
            let groups = self
                .call("get", "apis", None, self.client.list_api_groups())
                .await?;
            let Some(g) = groups.groups.into_iter().find(|g| g.name == group) else {
                return Err(KubeError::Other(format!(
                    "the cluster serves no API group {group:?} (for {resource})"
                )));
            };
            g.preferred_version
                .map(|v| v.version)
                .or_else(|| g.versions.first().map(|v| v.version.clone()))
                .unwrap_or_default()
        };
        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        let ar = ApiResource {
            group: group.to_string(),
            version,
            api_version,
            kind: String::new(),
            plural: plural.to_string(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        let objects: Vec<DynamicObject> = match name {
            Some(n) => self
                .call("get", resource, Some(namespace), api.get_opt(n))
                .await?
                .into_iter()
                .collect(),
            None => {
                self.call(
                    "list",
                    resource,
                    Some(namespace),
                    api.list(&ListParams::default().labels(selector)),
                )
                .await?
                .items
            }
        };
        Ok(objects
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// Gets one cluster-scoped object; `Ok(None)` when it does not exist.
    pub async fn get_cluster<K>(&self, name: &str) -> Result<Option<K>, KubeError>
    where
        K: ClusterScoped,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let plural = K::plural(&()).to_string();
        self.call("get", &plural, None, api.get_opt(name)).await
    }

    /// The last `tail` lines (at most 64 KiB) of a container's log.
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: i64,
    ) -> Result<String, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let lp = LogParams {
            container: Some(container.to_string()),
            previous,
            tail_lines: Some(tail),
            limit_bytes: Some(64 * 1024),
            ..Default::default()
        };
        self.call("get", "pods/log", Some(namespace), api.logs(pod, &lp))
            .await
    }

    /// Opens one stream to a pod's port through the API server (what `kubectl port-forward` does).
    pub async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<super::forward_stream::ForwardStream, KubeError> {
        self.call(
            "create",
            "pods/portforward",
            Some(namespace),
            super::forward_stream::open(&self.client, namespace, pod, port),
        )
        .await
        .map_err(|e| match e {
            KubeError::Api { code: 404, .. } => KubeError::Gone {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            },
            e => e,
        })
    }
}

impl PodConnector for KubeProbe {
    fn open<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn super::postgres::Stream>, KubeError>> {
        Box::pin(async move {
            let s = self.port_forward(namespace, pod, port).await?;
            Ok(Box::new(s) as Box<dyn super::postgres::Stream>)
        })
    }
}
