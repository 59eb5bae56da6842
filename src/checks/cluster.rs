//! The `cluster.*` checks: what the cluster must already have for `helm install` to work. Read-only;
//! skipped with the reason when no cluster is reachable.

use std::sync::Arc;

use k8s_openapi::api::{
    core::v1::Namespace, networking::v1::IngressClass, storage::v1::StorageClass,
};
use serde_json::json;

use super::{Absent, Cx, Outcome, Reach, kube_failed};
use crate::{
    chart::{
        facts::{Generation, SecretKeys, judge_secret_keys, lookup_bool, lookup_str, tls_hosts},
        values::Loaded,
    },
    probes::kube::KubeProbe,
    targets::release::secret_data,
};

#[expect(
    clippy::result_large_err,
    reason = "an Outcome is what a check returns; made at most once per check"
)]
fn parts(cx: &Cx) -> Result<(&KubeProbe, &Loaded), Outcome> {
    let v = cx.values.or_skip(
        "values",
        "no values to judge (this check runs in `preflight`)",
    )?;
    match &cx.cluster {
        Reach::Ready(k) => Ok((k, v)),
        // The session's reason says what is missing and how to give it.
        Reach::Absent(Absent::Unreached(why)) => Err(Outcome::skip(why.clone())),
        Reach::Absent(Absent::NotGiven) => Err(Outcome::skip("no cluster to look at")),
    }
}

macro_rules! parts_or_return {
    ($cx:expr) => {
        match parts(&$cx) {
            Ok(p) => p,
            Err(o) => return o,
        }
    };
}

pub async fn cluster_namespace(cx: Arc<Cx>) -> Outcome {
    let (k, _) = parts_or_return!(cx);
    match k.get_cluster::<Namespace>(&k.namespace).await {
        Ok(Some(ns)) => {
            let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
            if phase == "Terminating" {
                Outcome::finding(format!("namespace {} is being deleted", k.namespace))
                    .fix("terminating")
            } else {
                Outcome::pass(format!("namespace {} exists", k.namespace))
            }
        }
        Ok(None) => Outcome::finding(format!(
            "namespace {} does not exist yet: `helm install` needs --create-namespace (or create it first)",
            k.namespace
        )),
        Err(e) => kube_failed(&format!("read namespace {}", k.namespace), &e),
    }
}

pub async fn cluster_db_secret(cx: Arc<Cx>) -> Outcome {
    let (k, v) = parts_or_return!(cx);
    let (secret_key, key) = (
        v.generation.existing_secret_path(),
        v.generation.password_key(),
    );
    let Some(secret) = lookup_str(&v.values, secret_key) else {
        return Outcome::skip("no existingSecret: the chart creates the database secret itself");
    };
    let at = v.location(secret_key);
    let data = match secret_data(k, &k.namespace, secret).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Outcome::finding(format!(
                "secret {secret} ({secret_key}) does not exist in namespace {}: every service will wait in \
                 CreateContainerConfigError",
                k.namespace
            ))
            .at(at)
            .fix("missing")
            .var("secret", secret)
            .var("secret_key", key);
        }
        Err(e) => return kube_failed(&format!("read secret {secret}"), &e).at(at),
    };
    let keys: Vec<String> = data.keys().cloned().collect();
    let user = lookup_str(&v.values, "postgresql.auth.username").unwrap_or("prefect");
    let subchart = lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true);
    let o = match judge_secret_keys(&data, key, user, subchart) {
        SecretKeys::Renamed => Outcome::finding(format!(
            "secret {secret} has key postgresql-password (charts before 2022.07) but not postgres-password, \
             which this chart reads"
        ))
        .fix("missing_key"),
        SecretKeys::Missing => Outcome::finding(format!(
            "secret {secret} has no key {key} (it has: {})",
            keys.join(", ")
        ))
        .fix("missing_key"),
        SecretKeys::SuperuserPasswordDiffers => Outcome::finding(format!(
            "secret {secret}'s postgres-password (the superuser's, which the chart hands to user {user}) differs \
             from its password (user {user}'s): every service will fail with \"bad password\""
        ))
        .fix("differ")
        .var("db_user", user),
        SecretKeys::Fine => {
            return Outcome::pass(format!("secret {secret} exists with key {key}")).with("keys", keys);
        }
    };
    o.at(at)
        .var("secret", secret)
        .var("secret_key", key)
        .with("keys", keys)
}

/// The TLS secrets of the enabled Ingresses, with the values path naming each.
fn tls_secrets(v: &Loaded) -> Vec<(String, String)> {
    ["apollo", "ui"]
        .into_iter()
        .filter(|c| lookup_bool(&v.values, &format!("{c}.ingress.enabled")).unwrap_or(false))
        .flat_map(|c| tls_hosts(&v.values, c).1)
        .collect()
}

pub async fn cluster_tls_secrets(cx: Arc<Cx>) -> Outcome {
    let (k, v) = parts_or_return!(cx);
    let wanted = tls_secrets(v);
    if wanted.is_empty() {
        return Outcome::skip("no Ingress TLS secret named in the values");
    }
    let mut missing = Vec::new();
    for (name, path) in &wanted {
        match k
            .get::<k8s_openapi::api::core::v1::Secret>(&k.namespace, name)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => missing.push((name.clone(), path.clone())),
            Err(e) => return kube_failed(&format!("read secret {name}"), &e),
        }
    }
    if missing.is_empty() {
        return Outcome::pass(format!(
            "TLS secret(s) {} exist",
            wanted
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Outcome::finding(format!(
        "TLS secret(s) {} do not exist in namespace {} (unless cert-manager creates them, the Ingress serves \
         the controller's default certificate)",
        missing.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        k.namespace
    ))
    .at(v.location(&missing[0].1))
    .var("secret", missing[0].0.clone())
}

/// Whether the first of the `is-default-class` annotations an object carries is "true".
fn marked_default(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    annotations: &[&str],
) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| annotations.iter().find_map(|k| a.get(*k)))
        .is_some_and(|v| v == "true")
}

pub async fn cluster_ingress_class(cx: Arc<Cx>) -> Outcome {
    let (k, v) = parts_or_return!(cx);
    let enabled: Vec<&str> = ["apollo", "ui"]
        .into_iter()
        .filter(|c| lookup_bool(&v.values, &format!("{c}.ingress.enabled")).unwrap_or(false))
        .collect();
    if enabled.is_empty() {
        return Outcome::skip("no Ingress enabled");
    }
    let classes = match k.list_cluster::<IngressClass>().await {
        Ok(c) => c,
        Err(e) => return kube_failed("list IngressClasses", &e),
    };
    let names: Vec<String> = classes
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let default = classes.iter().find(|c| {
        marked_default(
            &c.metadata,
            &["ingressclass.kubernetes.io/is-default-class"],
        )
    });
    if classes.is_empty() {
        return Outcome::finding(
            "no IngressClass exists: no Ingress controller is installed, so the Ingress will route nothing",
        )
        .fix("no_controller");
    }
    for c in &enabled {
        let path = format!("{c}.ingress.ingressClassName");
        match lookup_str(&v.values, &path) {
            Some(name) if !names.iter().any(|n| n == name) => {
                return Outcome::finding(format!(
                    "{path} is {name:?} but the cluster's IngressClasses are {}",
                    names.join(", ")
                ))
                .at(v.location(&path))
                .var("ingress_class", names.first().cloned().unwrap_or_default())
                .with("ingress_classes", names.clone());
            }
            Some(_) => {}
            None if default.is_none() => {
                return Outcome::warn(format!(
                    "{path} is not set and no IngressClass is the default: the Ingress may be ignored (classes: {})",
                    names.join(", ")
                ))
                .at(v.location(&format!("{c}.ingress.enabled")))
                .var("ingress_class", names.first().cloned().unwrap_or_default())
                .with("ingress_classes", names.clone());
            }
            None => {}
        }
    }
    Outcome::pass(format!("IngressClass(es) {} available", names.join(", ")))
        .with("ingress_classes", json!(names))
}

pub async fn cluster_storage_class(cx: Arc<Cx>) -> Outcome {
    let (k, v) = parts_or_return!(cx);
    let (persistence, class_key) = match v.generation {
        Generation::Auth => (
            "postgresql.primary.persistence.enabled",
            "postgresql.primary.persistence.storageClass",
        ),
        Generation::Legacy => (
            "postgresql.persistence.enabled",
            "postgresql.persistence.storageClass",
        ),
    };
    if !lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true)
        || !lookup_bool(&v.values, persistence).unwrap_or(false)
    {
        return Outcome::skip("no database volume: persistence is off or the database is external");
    }
    let classes = match k.list_cluster::<StorageClass>().await {
        Ok(c) => c,
        Err(e) => return kube_failed("list StorageClasses", &e),
    };
    let names: Vec<String> = classes
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let wanted = lookup_str(&v.values, class_key)
        .or(lookup_str(&v.values, "global.storageClass"))
        .or(lookup_str(&v.values, "postgresql.global.storageClass"));
    if let Some(w) = wanted {
        if names.iter().any(|n| n == w) {
            return Outcome::pass(format!("StorageClass {w} exists"));
        }
        return Outcome::finding(format!(
            "StorageClass {w:?} does not exist (classes: {}): the database's volume claim will stay Pending",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ))
        .at(v.location(class_key));
    }
    let default = classes.iter().find(|c| {
        marked_default(
            &c.metadata,
            &[
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ],
        )
    });
    match default {
        Some(d) => Outcome::pass(format!(
            "the default StorageClass {} will hold the database's volume",
            d.metadata.name.clone().unwrap_or_default()
        )),
        None => Outcome::finding(format!(
            "persistence is on but the cluster has no default StorageClass (classes: {}): the database's \
             volume claim will stay Pending",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ))
        .at(v.location(persistence)),
    }
}
