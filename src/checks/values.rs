//! The `values.*` checks: what `helm install` would do with the user's values, judged before it runs.
//! Each finding cites the `file:line:col` of the key that caused it.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Cx, Outcome};
use crate::chart::{
    facts::{Generation, lookup, lookup_bool, lookup_str, tls_hosts},
    values::{Loaded, RENAMED, join},
};

#[expect(
    clippy::result_large_err,
    reason = "an Outcome is what a check returns; made at most once per check"
)]
fn loaded(cx: &Cx) -> Result<&Loaded, Outcome> {
    cx.values
        .or_skip(
            "values",
            "no values to judge (this check runs in `preflight`)",
        )
        .map(|v| &**v)
}

macro_rules! values_or_return {
    ($cx:expr) => {
        match loaded(&$cx) {
            Ok(v) => v,
            Err(o) => return o,
        }
    };
}

/// Whether the user wrote `path` (in a file or with --set).
fn wrote(v: &Loaded, path: &str) -> bool {
    lookup(&v.user, path).is_some()
}

pub async fn values_parse(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    if let Some(first) = v.errors.first() {
        let all: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        return Outcome::finding(if all.len() == 1 {
            all[0].clone()
        } else {
            format!("{} files cannot be used: {}", all.len(), all.join("; "))
        })
        .at(first.location.as_ref())
        .with("errors", all);
    }
    let what = if v.files.is_empty() {
        "no values files given: the chart's defaults (and any --set) are checked".to_string()
    } else {
        format!("{} parsed", v.files.join(", "))
    };
    Outcome::pass(format!(
        "{what}; judged against the chart's {} values",
        v.generation.label()
    ))
    .with("generation", v.generation.label())
}

/// Maps whose keys are the user's own (labels, annotations, env …): not judged.
fn free_form(default: Option<&Value>) -> bool {
    match default {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(_)) | Some(Value::Null) => true,
        // A key the chart documents only in a comment (`ingressClassName`): free to set.
        _ => false,
    }
}

/// Keys the chart reads that its values.yaml only shows in comments.
const DOCUMENTED: &[&str] = &[
    "postgresql.postgresqlPassword",
    "apollo.ingress.ingressClassName",
    "ui.ingress.ingressClassName",
    "global",
];

fn unknown_keys(user: &Value, defaults: &Value, path: &str, out: &mut Vec<(String, Vec<String>)>) {
    let Value::Object(m) = user else { return };
    for (k, v) in m {
        let p = join(path, k);
        let d = defaults.get(k);
        if DOCUMENTED.iter().any(|doc| *doc == p) || RENAMED.iter().any(|(a, b)| *a == p || *b == p)
        {
            continue;
        }
        // The PostgreSQL subchart has keys of its own beyond what the parent sets.
        if path == "postgresql" && d.is_none() {
            continue;
        }
        match d {
            None => {
                let siblings: Vec<String> = defaults
                    .as_object()
                    .map(|m| {
                        let mut s: Vec<(f64, &String)> = m
                            .keys()
                            .map(|s| {
                                (
                                    strsim::jaro_winkler(&k.to_lowercase(), &s.to_lowercase()),
                                    s,
                                )
                            })
                            .filter(|(score, _)| *score >= 0.8)
                            .collect();
                        s.sort_by(|a, b| b.0.total_cmp(&a.0));
                        s.into_iter().take(2).map(|(_, s)| join(path, s)).collect()
                    })
                    .unwrap_or_default();
                out.push((p, siblings));
            }
            Some(d) if !free_form(Some(d)) => unknown_keys(v, d, &p, out),
            Some(_) => {}
        }
    }
}

pub async fn values_unknown_keys(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    let mut found = Vec::new();
    unknown_keys(&v.user, &v.defaults, "", &mut found);
    if found.is_empty() {
        return Outcome::pass("every key is one the chart reads");
    }
    let list: Vec<String> = found
        .iter()
        .map(|(k, s)| {
            let at = v
                .location(k)
                .map(|l| format!(" ({}:{}:{})", l.file, l.line, l.column))
                .unwrap_or_default();
            if s.is_empty() {
                format!("{k}{at}")
            } else {
                format!("{k}{at}: did you mean {}?", s.join(" or "))
            }
        })
        .collect();
    Outcome::finding(format!(
        "{} key(s) the chart does not have, which Helm silently ignores: {}",
        found.len(),
        list.join("; ")
    ))
    .at(v.location(&found[0].0))
    .with(
        "unknown",
        found.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
    )
}

pub async fn values_generation(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    let misplaced: Vec<(&str, &str)> = RENAMED
        .iter()
        .filter_map(|(old, new)| match v.generation {
            Generation::Auth if wrote(v, old) => Some((*old, *new)),
            Generation::Legacy if wrote(v, new) => Some((*new, *old)),
            _ => None,
        })
        .collect();
    if misplaced.is_empty() {
        return Outcome::pass(format!(
            "every database key fits the chart's {} layout",
            v.generation.label()
        ));
    }
    let chart = match v.generation {
        Generation::Auth => "this chart (2022.09 and later)",
        Generation::Legacy => "this chart (before 2022.09)",
    };
    let list: Vec<String> = misplaced
        .iter()
        .map(|(wrong, right)| format!("{wrong} → {right}"))
        .collect();
    let (first, first_right) = misplaced[0];
    Outcome::finding(format!(
        "{chart} ignores {}: use {}",
        misplaced
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join(", "),
        list.join(", ")
    ))
    .at(v.location(first))
    .var("wrong_key", first)
    .var("right_key", first_right)
    .with(
        "renames",
        json!(
            misplaced
                .iter()
                .map(|(a, b)| json!({"wrote": a, "use": b}))
                .collect::<Vec<_>>()
        ),
    )
}

/// The generation's key for a database setting.
fn key(g: Generation, auth: &'static str, legacy: &'static str) -> &'static str {
    match g {
        Generation::Auth => auth,
        Generation::Legacy => legacy,
    }
}

pub async fn values_external_db(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    if lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true) {
        return Outcome::skip("postgresql.useSubChart is true: the chart deploys its own database");
    }
    let secret_key = v.generation.existing_secret_path();
    let mut missing = Vec::new();
    if lookup_str(&v.values, "postgresql.externalHostname").is_none() {
        missing.push("postgresql.externalHostname");
    }
    if lookup_str(&v.values, secret_key).is_none() {
        missing.push(secret_key);
    }
    let at = v.location("postgresql.useSubChart");
    if missing.is_empty() {
        return Outcome::pass(format!(
            "external database {} with password secret {}",
            lookup_str(&v.values, "postgresql.externalHostname").unwrap_or_default(),
            lookup_str(&v.values, secret_key).unwrap_or_default()
        ));
    }
    Outcome::finding(format!(
        "postgresql.useSubChart is false but {} {} not set: the services have no database to reach",
        missing.join(" and "),
        if missing.len() == 1 { "is" } else { "are" }
    ))
    .at(at)
    .var("secret_key_path", secret_key)
}

pub async fn values_password_ignored(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    let secret_key = v.generation.existing_secret_path();
    let Some(secret) = lookup_str(&v.values, secret_key) else {
        return Outcome::pass("no existingSecret: the password values are used");
    };
    let passwords: &[&str] = match v.generation {
        Generation::Auth => &[
            "postgresql.auth.password",
            "postgresql.auth.postgresPassword",
        ],
        Generation::Legacy => &["postgresql.postgresqlPassword"],
    };
    let ignored: Vec<&str> = passwords
        .iter()
        .copied()
        .filter(|p| wrote(v, p) && lookup_str(&v.user, p).is_some())
        .collect();
    if ignored.is_empty() {
        return Outcome::pass(format!("the password comes from secret {secret} only"));
    }
    Outcome::finding(format!(
        "{} {} set but ignored: with {secret_key}={secret} the chart reads the password from that secret",
        ignored.join(" and "),
        if ignored.len() == 1 { "is" } else { "are" }
    ))
    .at(v.location(ignored[0]))
    .var("secret", secret)
}

pub async fn values_persistent_password(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    if !lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true) {
        return Outcome::skip("an external database: no subchart volume");
    }
    let persistence = key(
        v.generation,
        "postgresql.primary.persistence.enabled",
        "postgresql.persistence.enabled",
    );
    if !lookup_bool(&v.values, persistence).unwrap_or(false) {
        return Outcome::pass(
            "persistence is off: the database starts fresh with the secret's password",
        );
    }
    if lookup_str(&v.values, v.generation.existing_secret_path()).is_some() {
        return Outcome::pass(
            "persistence with an existingSecret: the password survives reinstalls",
        );
    }
    let generated: Vec<&str> = match v.generation {
        Generation::Auth => [
            "postgresql.auth.password",
            "postgresql.auth.postgresPassword",
        ]
        .into_iter()
        .filter(|k| lookup_str(&v.values, k).is_none())
        .collect(),
        Generation::Legacy => ["postgresql.postgresqlPassword"]
            .into_iter()
            .filter(|k| lookup_str(&v.values, k).is_none())
            .collect(),
    };
    if generated.is_empty() {
        return Outcome::pass(
            "persistence with a constant password: pass the same value on every upgrade",
        );
    }
    Outcome::finding(format!(
        "{persistence} is true and {} {} generated by the chart: the volume keeps the first password while a \
         reinstall generates a new secret, and the services fail with \"bad password\"",
        generated.join(" and "),
        if generated.len() == 1 { "is" } else { "are" }
    ))
    .at(v.location(persistence))
}

pub async fn values_password_keys(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    if v.generation == Generation::Legacy {
        return Outcome::skip(
            "charts before 2022.09 give the user one password (key postgresql-password)",
        );
    }
    if !lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true) {
        return Outcome::skip(
            "an external database: the secret's postgres-password is the user's password",
        );
    }
    let user = lookup_str(&v.values, "postgresql.auth.username").unwrap_or("prefect");
    if user == "postgres" {
        return Outcome::pass(
            "the chart connects as postgres, whose password is postgres-password",
        );
    }
    if let Some(secret) = lookup_str(&v.values, "postgresql.auth.existingSecret") {
        return Outcome::pass(format!(
            "secret {secret} provides both keys; cluster.db-secret checks it (its postgres-password must be user {user}'s password)"
        ));
    }
    let password = lookup_str(&v.values, "postgresql.auth.password");
    let superuser = lookup_str(&v.values, "postgresql.auth.postgresPassword");
    match (password, superuser) {
        (Some(a), Some(b)) if a == b => Outcome::pass(format!(
            "auth.password and auth.postgresPassword are equal, so user {user} gets its own password"
        )),
        _ => {
            let at = v
                .location("postgresql.auth.password")
                .or(v.location("postgresql.auth.postgresPassword"))
                .or(v.location("postgresql.auth.username"));
            Outcome::finding(format!(
                "the chart passes key postgres-password (auth.postgresPassword, the superuser's) to user {user}, \
                 whose password is auth.password; {}: every service will fail with \"bad password\"",
                match (password, superuser) {
                    (Some(_), Some(_)) => "they differ",
                    _ => "one of them is generated, so they differ",
                }
            ))
            .at(at)
            .var("db_user", user)
        }
    }
}

/// An ingress's hosts (strings, or `{host: …}` objects in some forks).
fn hosts(v: &Value, component: &str) -> Vec<String> {
    lookup(v, &format!("{component}.ingress.hosts"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| {
                    h.as_str()
                        .map(str::to_string)
                        .or_else(|| h["host"].as_str().map(str::to_string))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn values_ingress(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut at = None;
    let mut evidence = serde_json::Map::new();
    for c in ["apollo", "ui"] {
        if !lookup_bool(&v.values, &format!("{c}.ingress.enabled")).unwrap_or(false) {
            continue;
        }
        let h = hosts(&v.values, c);
        let (_, secrets) = tls_hosts(&v.values, c);
        let secrets: Vec<&String> = secrets.iter().map(|(name, _)| name).collect();
        evidence.insert(c.to_string(), json!({"hosts": h, "tls_secrets": secrets}));
        if h.is_empty() {
            fails.push(format!(
                "{c}.ingress.enabled is true but {c}.ingress.hosts is empty"
            ));
            at = at.or(v.location(&format!("{c}.ingress.enabled")));
        }
        let svc = format!("{c}.service.type");
        if lookup_str(&v.values, &svc) == Some("LoadBalancer") {
            warns.push(format!(
                "{c} has an Ingress and is still a LoadBalancer ({svc}): set it to ClusterIP (README, Ingress step 1)"
            ));
            at = at
                .or(v.location(&svc))
                .or(v.location(&format!("{c}.ingress.enabled")));
        }
    }
    if evidence.is_empty() {
        return Outcome::pass("no Ingress enabled");
    }
    let o = if !fails.is_empty() {
        Outcome::finding(
            fails
                .into_iter()
                .chain(warns)
                .collect::<Vec<_>>()
                .join("; "),
        )
        .fix("no_hosts")
    } else if !warns.is_empty() {
        Outcome::warn(warns.join("; ")).fix("load_balancer")
    } else {
        Outcome::pass(format!(
            "Ingress for {} with hosts set",
            evidence.keys().cloned().collect::<Vec<_>>().join(" and ")
        ))
    };
    o.at(at).with("ingress", Value::Object(evidence))
}

pub const DEFAULT_API_URL: &str = "http://localhost:4200/graphql";

pub async fn values_ui_api_url(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    let url = lookup_str(&v.values, "ui.apolloApiUrl").unwrap_or(DEFAULT_API_URL);
    let at = v.location("ui.apolloApiUrl");
    let apollo_ingress = lookup_bool(&v.values, "apollo.ingress.enabled").unwrap_or(false);
    let apollo_hosts = hosts(&v.values, "apollo");
    let (apollo_tls, _) = tls_hosts(&v.values, "apollo");
    let proposed = apollo_hosts.first().map(|h| {
        let scheme = if apollo_tls.contains(h) {
            "https"
        } else {
            "http"
        };
        let path = lookup_str(&v.values, "apollo.ingress.path").unwrap_or("/");
        format!(
            "{scheme}://{h}{}graphql",
            if path.ends_with('/') {
                path.to_string()
            } else {
                format!("{path}/")
            }
        )
    });
    // An https UI cannot call an http API (mixed content).
    if lookup_bool(&v.values, "ui.ingress.enabled").unwrap_or(false) {
        let (ui_tls, _) = tls_hosts(&v.values, "ui");
        let ui_https = hosts(&v.values, "ui").iter().any(|h| ui_tls.contains(h));
        if ui_https && url.starts_with("http://") && !url.starts_with("http://localhost") {
            let o = Outcome::finding(format!(
                "the UI is served over https but ui.apolloApiUrl is {url}: browsers block this mixed content"
            ))
            .at(at.or(v.location("ui.ingress.tls")))
            .fix("mixed_content")
            .var("apollo_url", url.replacen("http://", "https://", 1));
            return o;
        }
    }
    // A name only pods resolve (`prefect-apollo.default`, `….svc.cluster.local`): the browser
    // cannot, as the README's troubleshooting says of server_url.
    if let Some((why, _, _)) = url::Url::parse(url)
        .ok()
        .as_ref()
        .and_then(super::ui::cluster_internal)
    {
        return Outcome::finding(format!(
            "ui.apolloApiUrl is {url}, which the users' browsers call: {why}"
        ))
        .at(at)
        .fix("cluster_dns")
        .var("server_url", url)
        .var(
            "apollo_url",
            proposed.unwrap_or_else(|| "http://<EXTERNAL-IP>:4200/graphql".to_string()),
        );
    }
    if url != DEFAULT_API_URL {
        return Outcome::pass(format!("the UI will call {url}"));
    }
    if apollo_ingress && let Some(p) = proposed {
        return Outcome::finding(format!(
            "ui.apolloApiUrl is left at {DEFAULT_API_URL} while apollo is published through an Ingress: \
             browsers will call localhost, not {p}"
        ))
        .at(v.location("apollo.ingress.enabled").or(at))
        .var("apollo_url", p);
    }
    if lookup_str(&v.values, "apollo.service.type") == Some("LoadBalancer") {
        return Outcome::pass(format!(
            "the UI will call {DEFAULT_API_URL}: that works only with `kubectl port-forward svc/<release>-apollo \
             4200:4200`; once apollo's LoadBalancer has an address, set ui.apolloApiUrl=http://<EXTERNAL-IP>:4200/graphql"
        ));
    }
    Outcome::pass(format!(
        "the UI will call {DEFAULT_API_URL} (with `kubectl port-forward svc/<release>-apollo 4200:4200`)"
    ))
}

pub async fn values_tenant_job(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    if lookup_bool(&v.values, "jobs.createTenant.enabled").unwrap_or(false) {
        return Outcome::pass("jobs.createTenant.enabled: the chart creates the default tenant");
    }
    Outcome::finding(
        "jobs.createTenant.enabled is false: without a tenant the dashboard stays blank and agents get GraphQL 400 errors",
    )
    .at(v.location("jobs.createTenant.enabled"))
}

pub async fn values_versions(cx: Arc<Cx>) -> Outcome {
    let v = values_or_return!(cx);
    // Tags the user set to `latest` whose images are pulled Always.
    let tags: &[(&str, &[&str])] = &[
        ("serverVersionTag", &["apollo", "graphql", "towel"]),
        ("prefectVersionTag", &["agent", "jobs.createTenant"]),
        ("uiVersionTag", &["ui"]),
    ];
    let mut floating = Vec::new();
    for (tag, components) in tags {
        for c in *components {
            let own = format!("{c}.image.tag");
            // The user's own choice: a key they wrote with a value other than the chart's default.
            let mine =
                |k: &str| lookup_str(&v.user, k).filter(|t| lookup_str(&v.defaults, k) != Some(*t));
            let (key, value) = match mine(&own) {
                Some(t) => (own.clone(), t),
                None => match mine(tag) {
                    Some(t) => (tag.to_string(), t),
                    None => continue,
                },
            };
            let policy =
                lookup_str(&v.values, &format!("{c}.image.pullPolicy")).unwrap_or("IfNotPresent");
            if value == "latest" && policy == "Always" {
                floating.push((key, c.to_string()));
            }
        }
    }
    floating.dedup_by(|a, b| a.0 == b.0);
    if floating.is_empty() {
        return Outcome::pass("no `latest` tag of yours is pulled Always");
    }
    Outcome::finding(format!(
        "{} set to `latest` with imagePullPolicy Always: every restart may pull a different version, and \
         the services can drift apart",
        floating.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
    ))
    .at(v.location(&floating[0].0))
}
