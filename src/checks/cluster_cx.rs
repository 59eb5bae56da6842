//! The cluster side of a `check` run, shared by the checks that read the release (`kube.*`,
//! `agent.*`): the probe, what discovery found, and the reads several checks need, made once.

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::OnceCell;

use super::{Cx, Outcome, kube_failed};
use crate::{
    probes::kube::{KubeError, KubeProbe},
    targets::release::{Discovery, Found},
};

/// The cluster side of a run: the probe, what discovery found, and reads shared by several checks.
pub struct KubeCx {
    pub probe: KubeProbe,
    pub discovery: std::sync::Arc<Discovery>,
    /// Kubernetes was asked for on the command line (not only found in a kubeconfig).
    pub explicit: bool,
    pods: OnceCell<Result<Vec<Pod>, KubeError>>,
}

impl KubeCx {
    pub fn new(probe: KubeProbe, discovery: std::sync::Arc<Discovery>, explicit: bool) -> KubeCx {
        KubeCx {
            probe,
            discovery,
            explicit,
            pods: OnceCell::new(),
        }
    }

    /// The release's pods, listed once per run; `Err` is the outcome of a failed listing.
    pub(super) async fn pods(&self, found: &Found) -> Result<&[Pod], Outcome> {
        self.pods
            .get_or_init(|| async {
                self.probe
                    .list::<Pod>(
                        Some(&found.release.namespace),
                        &format!("app.kubernetes.io/instance={}", found.release.name),
                    )
                    .await
            })
            .await
            .as_deref()
            .map_err(|e| kube_failed("list the release's pods", e))
    }
}

pub(super) const NO_CLUSTER: &str = "not looking at a cluster: no kube config found, or only direct URLs were \
                          given (pass --context, -n or --release to look at the Helm release)";

/// The cluster and the release, or the `skip` to report.
#[expect(
    clippy::result_large_err,
    reason = "an Outcome is what a check returns; made at most once per check"
)]
pub(super) fn release(cx: &Cx) -> Result<(&KubeCx, &Found), Outcome> {
    let k = cx.kube.or_skip("cluster", NO_CLUSTER)?;
    match k.discovery.as_ref() {
        Discovery::Release(f) => Ok((k, f)),
        _ => Err(Outcome::skip(
            "no Prefect Server release to look at (see kube.release)",
        )),
    }
}

/// A pod's name, for messages.
pub(super) fn pod_name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or("?")
}

/// The image of container `container` in the release's pods of chart component `component`
/// (`app.kubernetes.io/component`): what that part of the release runs.
pub(super) fn component_image(pods: &[Pod], component: &str, container: &str) -> Option<String> {
    pods.iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/component"))
                .is_some_and(|c| c == component)
        })
        .filter_map(|p| p.spec.as_ref())
        .flat_map(|s| s.containers.iter())
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
}

/// An image reference's tag (`prefecthq/server:2022.09.23` → `2022.09.23`; none → `latest`).
pub(super) fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t).unwrap_or("latest")
}
