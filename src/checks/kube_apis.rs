//! `kube.api-versions`: objects of the release's stored manifest whose `apiVersion` the cluster no
//! longer serves (read from its discovery documents), which make the next `helm upgrade` fail.

use serde_json::json;

use super::{Cx, Outcome, cluster_cx::release, kube_failed};

/// API versions Kubernetes removed: (apiVersion, kinds it held, removed in, use instead).
const REMOVED: &[(&str, &str, &str, &str)] = &[
    (
        "extensions/v1beta1",
        "Ingress",
        "1.22",
        "networking.k8s.io/v1",
    ),
    (
        "networking.k8s.io/v1beta1",
        "Ingress",
        "1.22",
        "networking.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "",
        "1.22",
        "rbac.authorization.k8s.io/v1",
    ),
    ("apps/v1beta1", "", "1.16", "apps/v1"),
    ("apps/v1beta2", "", "1.16", "apps/v1"),
    ("extensions/v1beta1", "", "1.16", "apps/v1"),
    ("storage.k8s.io/v1beta1", "", "1.22", "storage.k8s.io/v1"),
    (
        "scheduling.k8s.io/v1beta1",
        "",
        "1.22",
        "scheduling.k8s.io/v1",
    ),
    ("batch/v1beta1", "", "1.25", "batch/v1"),
    ("policy/v1beta1", "", "1.25", "policy/v1"),
    ("autoscaling/v2beta1", "", "1.25", "autoscaling/v2"),
    ("autoscaling/v2beta2", "", "1.26", "autoscaling/v2"),
];

/// Where `api_version` went, for a `kind`: (removed in, use instead).
fn successor(api_version: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    REMOVED
        .iter()
        .find(|(v, k, _, _)| *v == api_version && (k.is_empty() || *k == kind))
        .map(|(_, _, when, new)| (*when, *new))
}

/// Objects named at the most in the message.
const SHOWN: usize = 5;

pub async fn kube_api_versions(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let (served, version) = match k.probe.served_versions().await {
        Ok(x) => x,
        Err(e) => return kube_failed("read the cluster's API discovery", &e),
    };
    let on = version
        .as_deref()
        .map(|v| format!("this cluster ({v})"))
        .unwrap_or_else(|| "this cluster".to_string());
    let mut stale = Vec::new();
    for o in &f.objects {
        let (Some(api), Some(kind)) = (o["apiVersion"].as_str(), o["kind"].as_str()) else {
            continue;
        };
        if served.contains(api) {
            continue;
        }
        let name = o["metadata"]["name"].as_str().unwrap_or("?");
        stale.push((
            kind.to_string(),
            name.to_string(),
            api.to_string(),
            successor(api, kind),
        ));
    }
    if stale.is_empty() {
        return Outcome::pass(format!(
            "all {} objects of release {}'s manifest use API versions {on} serves",
            f.objects.len(),
            f.release.name
        ));
    }
    let text = |(kind, name, api, next): &(String, String, String, Option<(&str, &str)>)| match next
    {
        Some((when, new)) => {
            format!("{kind} {name} ({api}, removed in Kubernetes {when}; now {new})")
        }
        None => format!("{kind} {name} ({api})"),
    };
    let mut shown: Vec<String> = stale.iter().take(SHOWN).map(text).collect();
    if stale.len() > SHOWN {
        shown.push(format!("and {} more", stale.len() - SHOWN));
    }
    let mut apis: Vec<&str> = stale.iter().map(|s| s.2.as_str()).collect();
    apis.sort_unstable();
    apis.dedup();
    Outcome::finding(format!(
        "{} object{} of release {}'s stored manifest use{} API versions {on} no longer serves: {}; \
         the next helm upgrade or rollback of the release fails",
        stale.len(),
        if stale.len() == 1 { "" } else { "s" },
        f.release.name,
        if stale.len() == 1 { "s" } else { "" },
        shown.join(", ")
    ))
    .with(
        "objects",
        stale
            .iter()
            .map(|(k, n, a, next)| json!({"kind": k, "name": n, "apiVersion": a, "replacement": next.map(|x| x.1)}))
            .collect::<Vec<_>>(),
    )
    .var("removed_apis", apis.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_depend_on_the_kind() {
        assert_eq!(
            successor("extensions/v1beta1", "Ingress"),
            Some(("1.22", "networking.k8s.io/v1"))
        );
        assert_eq!(
            successor("extensions/v1beta1", "Deployment"),
            Some(("1.16", "apps/v1"))
        );
        assert_eq!(successor("apps/v1", "Deployment"), None);
    }
}
