//! The pods behind a service, and port-forwards that follow them. The pod found behind a service when the run started can
//! go while it runs: deleted, restarted by its Deployment under a new name, rolled by a `helm
//! upgrade` that `check --wait` is waiting out. `kubectl port-forward svc/NAME` picks one pod and
//! ends when it goes; the doctor, whose forwards serve every round of `--wait`, looks again: when
//! the API server says the pod is gone (404), the pod now behind the service is found with the same
//! read (`list pods` by the service's selector, Ready first) and the forward goes there, once per
//! connection. No pod behind it any more is said as such.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, Service};

use super::release::pod_ready;
use crate::probes::{
    forward::PodPort,
    kube::{KubeError, KubeProbe, PodConnector},
    postgres::Stream,
};

/// A pod behind a service, Running and Ready if any is, and the pod port its `port` targets.
pub async fn pod_behind(
    probe: &KubeProbe,
    namespace: &str,
    service: &Service,
) -> Result<PodPort, String> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        return Err(format!("service {name} has no selector"));
    }
    let sel = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = probe
        .list::<Pod>(Some(namespace), &sel)
        .await
        .map_err(|e| e.to_string())?;
    let running = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let pod = pods
        .iter()
        .find(|p| pod_ready(p))
        .or_else(|| pods.iter().find(|p| running(p)))
        .ok_or_else(|| format!("no running pod behind service {name} (selector {sel})"))?;
    let sport = spec.ports.unwrap_or_default().into_iter().next();
    let port = match sport.as_ref().and_then(|p| p.target_port.clone()) {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p)) => {
            u16::try_from(p).ok()
        }
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(named)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(named.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
        None => sport.as_ref().and_then(|p| u16::try_from(p.port).ok()),
    }
    .ok_or_else(|| format!("cannot tell which port of the pods service {name} targets"))?;
    Ok(PodPort {
        namespace: namespace.to_string(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        port,
    })
}

/// A [`PodConnector`] for one service's pods: forwards to the pod asked for until it is gone, then
/// to the pod behind `service` (remembered for the connections after).
pub struct Follow {
    inner: Arc<dyn PodConnector>,
    probe: KubeProbe,
    service: Service,
    /// The pod that took the place of the one asked for, once one did.
    now: Mutex<Option<PodPort>>,
}

impl Follow {
    /// Follows `service`'s pods (in `probe`'s cluster), opening each forward through `inner`.
    pub fn new(inner: Arc<dyn PodConnector>, probe: KubeProbe, service: Service) -> Follow {
        Follow {
            inner,
            probe,
            service,
            now: Mutex::new(None),
        }
    }

    fn replaced(&self) -> Option<PodPort> {
        self.now.lock().ok().and_then(|n| n.clone())
    }
}

impl PodConnector for Follow {
    fn open<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Stream>, KubeError>> {
        Box::pin(async move {
            let asked = PodPort {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                port,
            };
            let to = self.replaced().unwrap_or(asked);
            let gone = match self.inner.open(&to.namespace, &to.pod, to.port).await {
                Err(e @ KubeError::Gone { .. }) => e,
                other => return other,
            };
            let service = self.service.metadata.name.as_deref().unwrap_or_default();
            let next = pod_behind(&self.probe, &to.namespace, &self.service)
                .await
                .map_err(|why| KubeError::Other(format!("{gone}; now {why}")))?;
            if next == to {
                // The same pod again (a StatefulSet's, made again under its name, not yet seen by
                // the port-forward): the API server's word stands.
                return Err(gone);
            }
            let opened = self
                .inner
                .open(&next.namespace, &next.pod, next.port)
                .await
                .map_err(|e| {
                    KubeError::Other(format!(
                        "{gone}; the pod now behind service {service}, {}/{}: {e}",
                        next.namespace, next.pod
                    ))
                })?;
            if let Ok(mut now) = self.now.lock() {
                *now = Some(next);
            }
            Ok(opened)
        })
    }
}
