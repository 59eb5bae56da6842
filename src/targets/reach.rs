//! Reaching the parts of a found release as a user would: the database through a port-forward to its
//! pod (or at `externalHostname`), Apollo and the UI at their published address (LoadBalancer,
//! Ingress), or through a port-forward when nothing is published.

use std::sync::Arc;

use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
use url::Url;

use crate::probes::{
    forward::{LocalForward, PodDialer},
    kube::{KubeError, KubeProbe, PodConnector},
    pg_target::DbTarget,
    postgres::Dialer,
};

use super::{
    pods::{Follow, pod_behind},
    release::{Discovery, Found, discover, secret_password, service_of},
};

/// The database target of a release and how to dial it.
pub struct DbReach {
    pub target: DbTarget,
    pub dialer: Option<Arc<dyn Dialer>>,
    /// How it is reached, for the report header.
    pub source: String,
    /// Why the password is missing, when it is.
    pub password_problem: Option<String>,
}

pub async fn reach_db(
    probe: &KubeProbe,
    connector: Arc<dyn PodConnector>,
    found: &Found,
) -> Result<DbReach, String> {
    let w = found.db_wiring();
    let ns = &found.release.namespace;
    let (password, password_problem) = match secret_password(probe, ns, &w.secret, &w.key).await {
        Ok(p) => (Some(p), None),
        Err(why) => (None, Some(why)),
    };
    let target = DbTarget::from_chart(
        w.host.clone(),
        w.port,
        w.user.clone(),
        w.database.clone(),
        password,
        Some(format!("secret {}/{} key {}", ns, w.secret, w.key)),
    );
    let in_cluster = match service_of(&w.host, ns) {
        Some((svc, svc_ns)) => probe
            .get::<Service>(&svc_ns, &svc)
            .await
            .map_err(|e| {
                format!(
                    "cannot look up service {svc} (the database host {}): {e}",
                    w.host
                )
            })?
            .map(|s| (svc, svc_ns, s)),
        None => None,
    };
    if let Some((svc, svc_ns, service)) = in_cluster {
        let to = pod_behind(probe, &svc_ns, &service).await?;
        let connector = Arc::new(Follow::new(connector, probe.clone(), service));
        let source = format!(
            "port-forward to {to} (service {svc} of release {})",
            found.release.name
        );
        return Ok(DbReach {
            target,
            dialer: Some(Arc::new(PodDialer { connector, to })),
            source,
            password_problem,
        });
    }
    Ok(DbReach {
        target,
        dialer: None,
        source: format!(
            "the external database of release {} (postgresql.externalHostname)",
            found.release.name
        ),
        password_problem,
    })
}

/// An HTTP service of the release as a user reaches it.
#[derive(Debug, Clone)]
pub struct HttpReach {
    pub url: Url,
    pub source: String,
    /// A port-forward, not a published address.
    pub forwarded: bool,
}

/// The URL an Ingress gives to service `svc_name` (the first rule with a host routing to it), and the
/// Ingress's name; `None` when it routes elsewhere.
fn ingress_route(
    ing: &serde_json::Value,
    svc_name: &str,
    component: &str,
    path: &str,
) -> Option<Result<(Url, String), String>> {
    let rules = ing["spec"]["rules"].as_array().into_iter().flatten();
    for rule in rules {
        let Some(host) = rule["host"].as_str() else {
            continue;
        };
        let routes = rule["http"]["paths"].as_array().into_iter().flatten();
        for p in routes {
            let backend = &p["backend"]["service"]["name"];
            let old_backend = &p["backend"]["serviceName"];
            if backend != svc_name && old_backend != svc_name {
                continue;
            }
            let tls = ing["spec"]["tls"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["hosts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|h| h == host)
                });
            let scheme = if tls { "https" } else { "http" };
            let prefix = p["path"].as_str().unwrap_or("/");
            let url = match Url::parse(&format!("{scheme}://{host}{prefix}")) {
                Ok(u) => u,
                Err(e) => return Some(Err(format!("ingress host {host:?}: {e}"))),
            };
            let url = if component == "apollo" {
                url.join(path.trim_start_matches('/')).unwrap_or(url)
            } else {
                url
            };
            let name = ing["metadata"]["name"].as_str().unwrap_or_default();
            return Some(Ok((url, name.to_string())));
        }
    }
    None
}

/// The Ingresses of the release's namespace, listed once for Apollo and the UI, when one of them
/// needs them. Not listable (RBAC, an old bundle): none, and the release's own Ingresses and its
/// services still say.
type Beside<'a> =
    futures::future::Shared<futures::future::BoxFuture<'a, Arc<Vec<serde_json::Value>>>>;

fn ingresses_beside<'a>(probe: &'a KubeProbe, ns: &'a str) -> Beside<'a> {
    use futures::FutureExt;
    let list: futures::future::BoxFuture<'a, Arc<Vec<serde_json::Value>>> = Box::pin(async move {
        let listed = probe
            .list::<Ingress>(Some(ns), "")
            .await
            .unwrap_or_default();
        Arc::new(
            listed
                .iter()
                .filter_map(|i| serde_json::to_value(i).ok())
                .collect(),
        )
    });
    list.shared()
}

/// Reaches the release's `component` service (apollo, ui): Ingress host, LoadBalancer address, else a
/// port-forward. `path` is appended to a service address (`/graphql` for Apollo).
pub async fn reach_http(
    probe: &KubeProbe,
    connector: Arc<dyn PodConnector>,
    found: &Found,
    beside: Beside<'_>,
    component: &str,
    path: &str,
) -> Result<HttpReach, String> {
    let ns = &found.release.namespace;
    let svc_obj = found
        .component("Service", component)
        .ok_or_else(|| format!("the release renders no {component} service"))?;
    let svc_name = svc_obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // An Ingress routing to the service: what the browser uses. The release's own first, then one
    // made beside it (by hand, or by another chart) in its namespace.
    for ing in found.objects.iter().filter(|o| o["kind"] == "Ingress") {
        if let Some(route) = ingress_route(ing, &svc_name, component, path) {
            let (url, name) = route?;
            return Ok(HttpReach {
                url,
                source: format!("ingress {name} of release {}", found.release.name),
                forwarded: false,
            });
        }
    }
    for ing in beside.await.iter() {
        if let Some(route) = ingress_route(ing, &svc_name, component, path) {
            let (url, name) = route?;
            return Ok(HttpReach {
                url,
                source: format!(
                    "ingress {name} in namespace {ns} (not of release {}) routing to service \
                     {svc_name}",
                    found.release.name
                ),
                forwarded: false,
            });
        }
    }
    let live = probe
        .get::<Service>(ns, &svc_name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("service {svc_name} does not exist in namespace {ns}"))?;
    let spec = live.spec.clone().unwrap_or_default();
    let port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .map(|p| p.port)
        .unwrap_or(80);
    let lb = live
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.ip.clone().or_else(|| i.hostname.clone()));
    let mut why = format!(
        "service {svc_name} is {}",
        spec.type_.as_deref().unwrap_or("ClusterIP")
    );
    if let Some(addr) = lb {
        let host = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr
        };
        let url = Url::parse(&format!("http://{host}:{port}{path}"))
            .map_err(|e| format!("load balancer address {host:?}: {e}"))?;
        return Ok(HttpReach {
            url,
            source: format!("LoadBalancer of service {svc_name}"),
            forwarded: false,
        });
    }
    if spec.type_.as_deref() == Some("LoadBalancer") {
        why.push_str(" with no external address yet");
    }
    let to = pod_behind(probe, ns, &live).await?;
    let connector: Arc<dyn PodConnector> = Arc::new(Follow::new(connector, probe.clone(), live));
    // One forward opened now, under the deadline: a forward the API server cannot open is said with
    // its reason (as for the database), not as a reset of every HTTP request sent through it.
    match tokio::time::timeout(
        probe.timeout(),
        connector.open(&to.namespace, &to.pod, to.port),
    )
    .await
    {
        Ok(Ok(_stream)) => {}
        Ok(Err(e)) => return Err(format!("port-forward to {to}: {e}")),
        Err(_) => {
            return Err(format!(
                "port-forward to {to}: not opened within {}",
                crate::untrusted::duration(probe.timeout())
            ));
        }
    }
    let fwd = LocalForward::start(connector, to.clone())
        .await
        .map_err(|e| format!("cannot open a local port for the port-forward: {e}"))?;
    let url = Url::parse(&format!("http://{}{path}", fwd.local))
        .map_err(|e| format!("local forward address: {e}"))?;
    Ok(HttpReach {
        url,
        source: format!("port-forward to {to} ({why}: nothing published)"),
        forwarded: true,
    })
}

/// The cluster side of one invocation: the client and what discovery found.
pub struct KubeRun {
    pub probe: KubeProbe,
    pub discovery: Arc<Discovery>,
}

/// The targets a release gives, and what could not be reached.
/// Why each part of a release could not be reached (`None`: it was, or it was not asked for).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Unreached {
    pub database: Option<String>,
    pub api: Option<String>,
    pub ui: Option<String>,
}

pub struct Reached {
    /// The release decides the targets (else: fall back to the local defaults).
    pub use_release: bool,
    pub db: Option<DbReach>,
    pub api: Option<HttpReach>,
    pub ui: Option<HttpReach>,
    /// Why a part could not be reached through the cluster.
    pub unreached: Unreached,
    pub notices: Vec<String>,
    /// (release, namespace) when one was found.
    pub release: Option<(String, String)>,
}

impl KubeRun {
    /// Loads the kube config and looks for the release. An error here is a configuration problem
    /// (no kubeconfig, unknown context); an unreachable cluster is a [`Discovery::Failed`].
    pub async fn start(
        opts: &crate::probes::kube::KubeOptions,
        release: Option<&str>,
        timeout: std::time::Duration,
        tape: &crate::probes::tape::TapeMode,
    ) -> Result<KubeRun, KubeError> {
        let probe = KubeProbe::connect_with(opts, timeout, tape).await?;
        let discovery = Arc::new(discover(&probe, release).await);
        Ok(KubeRun { probe, discovery })
    }

    /// Reaches the release's database, API and UI (each unless given directly on the command line).
    /// `explicit`: Kubernetes was asked for on the command line, so an unreachable cluster is not
    /// silently replaced by the local defaults.
    pub async fn reach(&self, given: &crate::targets::Given<'_>, explicit: bool) -> Reached {
        let connector: Arc<dyn PodConnector> = Arc::new(self.probe.clone());
        let mut r = Reached {
            use_release: true,
            db: None,
            api: None,
            ui: None,
            unreached: Unreached::default(),
            notices: Vec::new(),
            release: None,
        };
        let found = match self.discovery.as_ref() {
            Discovery::Release(f) => f,
            Discovery::NoRelease { searched } => {
                r.use_release = false;
                r.notices.push(format!(
                    "no Prefect Server release in {searched} (kube context {}); checking the local \
                     defaults instead (pass -n NS, -A or --release NAME to look elsewhere)",
                    self.probe.context
                ));
                return r;
            }
            Discovery::Failed(e) if e.is_unreachable() && !explicit => {
                r.use_release = false;
                r.notices.push(format!(
                    "the cluster of kube context {} is out of reach ({e}); checking the local \
                     defaults instead",
                    self.probe.context
                ));
                return r;
            }
            _ => {
                let why = || Some("no Helm release to look at (see kube.release)".to_string());
                r.unreached = Unreached {
                    database: why(),
                    api: why(),
                    ui: why(),
                };
                return r;
            }
        };
        r.release = Some((found.release.name.clone(), found.release.namespace.clone()));
        let beside = ingresses_beside(&self.probe, &found.release.namespace);
        let db = async {
            if given.database_url.is_some() {
                return None;
            }
            Some(reach_db(&self.probe, connector.clone(), found).await)
        };
        let api = async {
            if given.api_url.is_some() {
                return None;
            }
            Some(
                reach_http(
                    &self.probe,
                    connector.clone(),
                    found,
                    beside.clone(),
                    "apollo",
                    "/graphql",
                )
                .await,
            )
        };
        let ui = async {
            if given.ui_url.is_some() {
                return None;
            }
            Some(
                reach_http(
                    &self.probe,
                    connector.clone(),
                    found,
                    beside.clone(),
                    "ui",
                    "/",
                )
                .await,
            )
        };
        let (db, api, ui) = tokio::join!(db, api, ui);
        match db {
            Some(Ok(d)) => {
                if let Some(p) = &d.password_problem {
                    r.notices.push(format!(
                        "the database password could not be read ({p}); see kube.db-secret"
                    ));
                }
                r.db = Some(d);
            }
            Some(Err(e)) => r.unreached.database = Some(e),
            None => {}
        }
        for (res, slot, why) in [
            (api, &mut r.api, &mut r.unreached.api),
            (ui, &mut r.ui, &mut r.unreached.ui),
        ] {
            match res {
                Some(Ok(h)) => *slot = Some(h),
                Some(Err(e)) => *why = Some(e),
                None => {}
            }
        }
        if r.ui.as_ref().is_some_and(|u| u.forwarded) {
            r.notices.push(
                "the UI is not published (no LoadBalancer address or Ingress): it was checked through \
                 a port-forward, so ui.server-url judges the API from this machine, not from your \
                 users' browsers"
                    .to_string(),
            );
        }
        r
    }
}

impl Reached {
    /// The run's targets: each direct flag wins, else what the release gave.
    pub fn targets(
        &self,
        given: &crate::targets::Given<'_>,
        env: &dyn crate::probes::pg_target::Env,
    ) -> Result<crate::targets::Targets, String> {
        use crate::targets::{ApiTarget, ApiUrl, DbVia, UiTarget, api_from_flag, ui_from_flag};
        let (db, db_via) = match (given.database_url, &self.db) {
            (Some(u), _) => (
                Some(
                    DbTarget::resolve(Some(u), env)
                        .map_err(|e| format!("invalid database target: {e}"))?,
                ),
                None,
            ),
            (None, Some(d)) => (
                Some(d.target.clone()),
                Some(DbVia {
                    source: d.source.clone(),
                    dialer: d.dialer.clone(),
                }),
            ),
            (None, None) => (None, None),
        };
        let api = match given.api_url {
            Some(u) => Some(api_from_flag(u)?),
            None => self.api.as_ref().map(|h| ApiTarget {
                url: ApiUrl::Fixed(h.url.clone()),
                source: h.source.clone(),
                from_flag: false,
                forwarded: h.forwarded,
            }),
        };
        let ui = match given.ui_url {
            Some(u) => Some(ui_from_flag(u)?),
            None => self.ui.as_ref().map(|h| UiTarget {
                url: h.url.clone(),
                source: h.source.clone(),
            }),
        };
        Ok(crate::targets::Targets {
            db,
            api,
            ui,
            db_via,
            db_source: None,
            notices: Vec::new(),
        })
    }
}
