//! Finding the Prefect Server release in a cluster: discovery lists Helm's release secrets (metadata
//! only), decodes the latest revision of each release (a few at a time, under one deadline) and keeps
//! those of chart `prefect-server`; from the release it reads what the services were given (the
//! rendered manifest: connection URL, password secret). Reaching the parts is [`super::reach`].

use std::collections::BTreeMap;

use futures::StreamExt as _;

use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::Value;
use url::Url;

use crate::{
    chart::{
        facts::{DbValues, Generation},
        release::{self as helm, Release},
    },
    probes::{
        kube::{KubeError, KubeProbe},
        pg_target::Secret as SecretValue,
    },
};

/// The decoded release and what was read from it once.
#[derive(Debug, Clone)]
pub struct Found {
    pub release: Release,
    /// The manifest's objects (empty when it did not parse; see `manifest_error`).
    pub objects: Vec<Value>,
    pub manifest_error: Option<String>,
    pub db: DbValues,
}

/// What discovery ended with.
#[derive(Debug, Clone)]
pub enum Discovery {
    Release(Box<Found>),
    /// No `prefect-server` release where we looked.
    NoRelease {
        searched: String,
    },
    /// `--release NAME` names nothing usable.
    NotFound {
        name: String,
        reason: String,
    },
    /// More than one: the user picks with `--release`, or a fleet run diagnoses each.
    Several(Vec<Listed>),
    /// The listing itself failed (unreachable API server, RBAC …).
    Failed(KubeError),
}

/// One of several releases found.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub namespace: String,
    /// `name (namespace ns, chart v, status)`.
    pub text: String,
}

fn searched(probe: &KubeProbe) -> String {
    if probe.all_namespaces {
        "any namespace".to_string()
    } else {
        format!("namespace {}", probe.namespace)
    }
}

/// The most Helm releases read in one discovery.
pub const MAX_RELEASES: usize = 50;
/// Releases read at once.
const CONCURRENT_READS: usize = 4;

/// The Prefect Server releases where a probe looks (the latest revision of each, decoded) and those
/// that could not be read.
#[derive(Debug, Default)]
pub struct Listing {
    pub releases: Vec<Release>,
    /// `(namespace, release, why)` for each release whose latest revision could not be read.
    pub unread: Vec<(String, String, String)>,
    /// Releases not read within the deadline.
    pub late: usize,
    /// Releases beyond [`MAX_RELEASES`], never read.
    pub not_read: usize,
}

impl Listing {
    /// What could not be read, for a message: a few names, then the counts (`None`: nothing).
    pub fn skipped(&self, timeout: std::time::Duration) -> Option<String> {
        let mut skipped = Vec::new();
        if !self.unread.is_empty() {
            let named: Vec<String> = self
                .unread
                .iter()
                .map(|(ns, name, why)| format!("{ns}/{name}: {why}"))
                .collect();
            skipped.push(crate::untrusted::list(&named, 5));
        }
        if self.late > 0 {
            skipped.push(format!(
                "{} not read within {}",
                self.late,
                crate::untrusted::duration(timeout)
            ));
        }
        if self.not_read > 0 {
            skipped.push(format!(
                "{} more not read (at most {MAX_RELEASES} are)",
                self.not_read
            ));
        }
        (!skipped.is_empty()).then(|| skipped.join("; "))
    }
}

/// Every Prefect Server release where `probe` looks (a fleet run's roster). `Err`: the listing
/// itself failed.
pub async fn list(probe: &KubeProbe) -> Result<Listing, KubeError> {
    match read_latest(probe, None).await {
        Ok(l) => Ok(l),
        Err(Discovery::Failed(e)) => Err(e),
        // Only a named release ends otherwise.
        Err(_) => Ok(Listing::default()),
    }
}

/// Looks for the release (`release`: by name) where `probe` looks.
pub async fn discover(probe: &KubeProbe, release: Option<&str>) -> Discovery {
    let mut listing = match read_latest(probe, release).await {
        Ok(l) => l,
        Err(d) => return d,
    };
    match listing.releases.len() {
        0 => match release {
            Some(name) => Discovery::NotFound {
                name: name.to_string(),
                reason: format!("no Helm release named {name} in {}", searched(probe)),
            },
            None => Discovery::NoRelease {
                searched: match listing.skipped(probe.timeout()) {
                    None => searched(probe),
                    Some(s) => format!("{} (unreadable releases skipped: {s})", searched(probe)),
                },
            },
        },
        1 => Discovery::Release(Box::new(Found::of(listing.releases.remove(0)))),
        _ => Discovery::Several(
            listing
                .releases
                .into_iter()
                .map(|r| Listed {
                    text: format!(
                        "{} (namespace {}, chart {}, {})",
                        r.name, r.namespace, r.chart_version, r.status
                    ),
                    name: r.name,
                    namespace: r.namespace,
                })
                .collect(),
        ),
    }
}

/// Lists the release secrets (metadata only) and decodes the latest revision of each release of
/// chart `prefect-server`. `Err`: the listing failed, or the named `release` is not one.
async fn read_latest(probe: &KubeProbe, release: Option<&str>) -> Result<Listing, Discovery> {
    let ns = (!probe.all_namespaces).then_some(probe.namespace.as_str());
    let selector = match release {
        Some(r) => format!("{},name={r}", helm::OWNER_LABEL),
        None => helm::OWNER_LABEL.to_string(),
    };
    let metas = match probe.list_metadata::<Secret>(ns, &selector).await {
        Ok(m) => m,
        Err(e) => return Err(Discovery::Failed(e)),
    };
    // The latest revision of each (namespace, release).
    let mut latest: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for m in metas {
        let meta = m.metadata;
        let (Some(name), Some(namespace)) = (meta.name, meta.namespace.or(ns.map(str::to_string)))
        else {
            continue;
        };
        let labels = meta.labels.unwrap_or_default();
        let Some(release_name) = labels.get("name").cloned() else {
            continue;
        };
        let revision = labels
            .get("version")
            .and_then(|v| v.parse().ok())
            .or_else(|| helm::revision_of(&name))
            .unwrap_or(0);
        let slot = latest
            .entry((namespace, release_name))
            .or_insert((0, String::new()));
        if revision >= slot.0 {
            *slot = (revision, name);
        }
    }
    let mut found = Vec::new();
    let mut undecodable = Vec::new();
    // The first release read refused by RBAC, and how many were.
    let mut refused: Option<KubeError> = None;
    let mut refused_count = 0usize;
    // The releases are read a few at a time, all under one deadline, and at most MAX_RELEASES of
    // them: 3,000 unreadable releases cost neither 3,000 sequential GETs nor a 2 MB line.
    let not_read = latest.len().saturating_sub(MAX_RELEASES);
    let deadline = crate::bounded::deadline_in(probe.timeout());
    let mut reads = futures::stream::iter(latest.iter().take(MAX_RELEASES).map(
        |((namespace, name), (_, secret))| async move {
            (
                namespace,
                name,
                secret,
                read_release(probe, namespace, secret).await,
            )
        },
    ))
    .buffered(CONCURRENT_READS);
    let mut late = 0usize;
    let mut answered = 0usize;
    loop {
        let next = match tokio::time::timeout_at(deadline, reads.next()).await {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => {
                // Those of other charts read in time are neither found nor unread.
                late = latest.len().min(MAX_RELEASES).saturating_sub(answered);
                break;
            }
        };
        answered += 1;
        let (namespace, name, secret, read) = next;
        match read {
            Ok(r) if r.chart_name == helm::CHART_NAME => found.push(r),
            Ok(r) if release.is_some() => {
                return Err(Discovery::NotFound {
                    name: name.clone(),
                    reason: format!(
                        "release {name} in namespace {namespace} is chart {:?}, not {}",
                        r.chart_name,
                        helm::CHART_NAME
                    ),
                });
            }
            Ok(_) => {}
            Err(e) if release.is_some() => {
                return Err(Discovery::NotFound {
                    name: name.clone(),
                    reason: format!("cannot read release {name} ({secret}): {e}"),
                });
            }
            Err(ReadFailure::Kube(e @ KubeError::Forbidden { .. })) => {
                undecodable.push((namespace.clone(), name.clone(), e.to_string()));
                refused_count += 1;
                refused.get_or_insert(e);
            }
            Err(e) => undecodable.push((namespace.clone(), name.clone(), e.to_string())),
        }
    }
    // Every release there is refused to this user: that is the answer, not "no release".
    if found.is_empty()
        && late == 0
        && not_read == 0
        && refused_count == undecodable.len()
        && let Some(e) = refused
    {
        return Err(Discovery::Failed(e));
    }
    drop(reads);
    Ok(Listing {
        releases: found,
        unread: undecodable,
        late,
        not_read,
    })
}

/// Why a release secret could not be read: the API's answer, or what was in it.
#[derive(Debug)]
enum ReadFailure {
    Kube(KubeError),
    Bad(String),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Kube(e) => e.fmt(f),
            ReadFailure::Bad(s) => f.write_str(s),
        }
    }
}

impl From<String> for ReadFailure {
    fn from(s: String) -> Self {
        ReadFailure::Bad(s)
    }
}

/// Reads and decodes one release secret.
async fn read_release(
    probe: &KubeProbe,
    namespace: &str,
    secret: &str,
) -> Result<Release, ReadFailure> {
    let s = probe
        .get::<Secret>(namespace, secret)
        .await
        .map_err(ReadFailure::Kube)?
        .ok_or_else(|| format!("secret {secret} is gone"))?;
    let data = s
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| format!("secret {secret} has no `release` key"))?;
    let mut r = helm::decode(&data.0).map_err(|e| ReadFailure::Bad(e.0))?;
    if r.namespace.is_empty() {
        r.namespace = namespace.to_string();
    }
    Ok(r)
}

impl Found {
    /// Reads what a decoded release was given: its manifest's objects and its database values.
    pub fn of(release: Release) -> Found {
        let (objects, manifest_error) = match helm::manifest_objects(&release.manifest) {
            Ok(o) => (o, None),
            Err(e) => (Vec::new(), Some(e.0)),
        };
        let db = DbValues::read(&release.values, Generation::of_chart(&release.chart_values));
        Found {
            release,
            objects,
            manifest_error,
            db,
        }
    }

    /// The manifest objects of a kind whose `app.kubernetes.io/component` label is `component`.
    pub fn component(&self, kind: &str, component: &str) -> Option<&Value> {
        self.objects.iter().find(|o| {
            o["kind"] == kind && o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
    }

    /// The named container of a workload in the manifest.
    pub fn container<'a>(&self, workload: &'a Value, name: &str) -> Option<&'a Value> {
        workload["spec"]["template"]["spec"]["containers"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
    }

    /// How the chart's services reach the database, as rendered into the graphql deployment (the
    /// service that runs the migrations), else as the values say.
    pub fn db_wiring(&self) -> DbWiring {
        let ns = &self.release.namespace;
        let release = &self.release.name;
        let fallback_host = self
            .db
            .external_hostname
            .clone()
            .filter(|_| !self.db.use_subchart)
            .unwrap_or_else(|| format!("{release}-postgresql.{ns}"));
        let mut w = DbWiring {
            user: self.db.username.clone(),
            host: fallback_host,
            port: self.db.port,
            database: self.db.database.clone(),
            secret: self.db.secret_name(release),
            key: self.db.generation.password_key().to_string(),
            from_manifest: false,
        };
        let Some(graphql) = self.component("Deployment", "graphql") else {
            return w;
        };
        let Some(c) = self.container(graphql, "graphql") else {
            return w;
        };
        for e in c["env"].as_array().into_iter().flatten() {
            match e["name"].as_str() {
                Some("PREFECT_SERVER__DATABASE__CONNECTION_URL") => {
                    if let Some(u) = e["value"].as_str().and_then(|s| Url::parse(s).ok()) {
                        if !u.username().is_empty() {
                            w.user = percent_decode(u.username());
                        }
                        if let Some(h) = u.host_str() {
                            w.host = h.to_string();
                        }
                        if let Some(p) = u.port() {
                            w.port = p;
                        }
                        let db = u.path().trim_start_matches('/');
                        if !db.is_empty() {
                            w.database = percent_decode(db);
                        }
                        w.from_manifest = true;
                    }
                }
                Some("PGPASSWORD") | Some("PREFECT_SERVER__DATABASE__PASSWORD") => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    if let (Some(n), Some(k)) = (r["name"].as_str(), r["key"].as_str()) {
                        w.secret = n.to_string();
                        w.key = k.to_string();
                    }
                }
                _ => {}
            }
        }
        w
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The database connection the chart renders for its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbWiring {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    /// The secret and key the services read the password from.
    pub secret: String,
    pub key: String,
    /// Read from the rendered graphql deployment (else from the values).
    pub from_manifest: bool,
}

/// An in-cluster service name (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`) split into (svc, ns).
pub fn service_of(host: &str, default_ns: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = host.split('.').collect();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    match parts.as_slice() {
        [svc] => Some((svc.to_string(), default_ns.to_string())),
        [svc, ns] => Some((svc.to_string(), ns.to_string())),
        [svc, ns, "svc", ..] => Some((svc.to_string(), ns.to_string())),
        _ => None,
    }
}

/// The values of a secret, registered for scrubbing. `Ok(None)`: the secret does not exist.
pub async fn secret_data(
    probe: &KubeProbe,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, KubeError> {
    let Some(s) = probe.get::<Secret>(namespace, name).await? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for (k, v) in s.data.unwrap_or_default() {
        if let Ok(text) = std::str::from_utf8(&v.0) {
            crate::redact::register(text);
            crate::redact::register(text.trim_end());
        }
        out.insert(k, v.0);
    }
    for (k, v) in s.string_data.unwrap_or_default() {
        crate::redact::register(&v);
        out.insert(k, v.into_bytes());
    }
    Ok(Some(out))
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The password in `key` of secret `name`, registered for scrubbing; `Err` says why there is none.
pub async fn secret_password(
    probe: &KubeProbe,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretValue, String> {
    let data = secret_data(probe, namespace, name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("secret {name} does not exist"))?;
    let bytes = data
        .get(key)
        .ok_or_else(|| format!("secret {name} has no key {key}"))?;
    String::from_utf8(bytes.clone())
        .map(SecretValue::new)
        .map_err(|_| format!("key {key} of secret {name} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert_eq!(
            service_of("prefect-postgresql.default", "x"),
            Some(("prefect-postgresql".into(), "default".into()))
        );
        assert_eq!(service_of("pg", "ns"), Some(("pg".into(), "ns".into())));
        assert_eq!(
            service_of("pg.ns.svc.cluster.local", "x"),
            Some(("pg".into(), "ns".into()))
        );
        assert_eq!(service_of("db.example.com", "x"), None);
        assert_eq!(service_of("10.0.0.1", "x"), None);
    }
}
