//! The agent, as its logs show it.

use crate::chart::facts::lookup_bool;

use k8s_openapi::api::core::v1::Pod;

use super::{
    Cx, Outcome,
    cluster_cx::{pod_name, release},
    kube_failed,
    logs::redact_log,
};

/// The missing-tenant signatures in agent logs (the chart README's Troubleshooting section).
pub fn tenant_error_lines(log: &str) -> Vec<String> {
    let has_400 = log.contains("400 Client Error: Bad Request");
    let tenantless = log.contains("get_runs_in_queue") || log.contains("\"tenant_id\": null");
    log.lines()
        .filter(|l| {
            l.contains("has no tenants")
                || (has_400 && tenantless && l.contains("400 Client Error: Bad Request"))
        })
        .map(str::to_string)
        .collect()
}

pub async fn agent_tenant_errors(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if !lookup_bool(&f.release.values, "agent.enabled").unwrap_or(false) {
        return Outcome::skip("agent.enabled is false: the chart runs no agent");
    }
    let pods = match k.pods(f).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let agents: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/component"))
                .is_some_and(|c| c == "agent")
        })
        .collect();
    if agents.is_empty() {
        return Outcome::skip("agent.enabled is true but no agent pod exists (see kube.pods)");
    }
    let ns = &f.release.namespace;
    let mut hits = Vec::new();
    let mut read = Vec::new();
    for p in agents {
        let container = p
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == "agent")
                    .or(s.containers.first())
            })
            .map(|c| c.name.clone())
            .unwrap_or_default();
        match k.probe.logs(ns, pod_name(p), &container, false, 300).await {
            Ok(log) => {
                read.push(pod_name(p).to_string());
                let lines = tenant_error_lines(&log);
                hits.extend(redact_log(&lines.join("\n"), 5));
            }
            Err(e) => return kube_failed(&format!("read the logs of {}", pod_name(p)), &e),
        }
    }
    if hits.is_empty() {
        return Outcome::pass(format!(
            "no missing-tenant errors in the last 300 log lines of {}",
            read.join(", ")
        ));
    }
    Outcome::finding(format!(
        "the agent's log shows the missing-tenant errors ({} line(s), e.g. {:?})",
        hits.len(),
        hits[0]
    ))
    .with("log_lines", hits)
}

/// Why an agent check has nothing to judge when the manifest has no agent Deployment: the values
/// say whether the chart was asked for one (a post-renderer or an edited chart can drop it).
pub(super) fn no_agent(found: &crate::targets::release::Found) -> Outcome {
    if lookup_bool(&found.release.values, "agent.enabled").unwrap_or(false) {
        Outcome::skip(
            "the release's manifest has no agent Deployment, although agent.enabled is true",
        )
    } else {
        Outcome::skip("the release runs no agent (agent.enabled is false)")
    }
}

/// The chart's agent Deployment in the release's rendered manifest, if the chart runs one.
pub(super) fn agent_deployment(
    found: &crate::targets::release::Found,
) -> Option<&serde_json::Value> {
    found.objects.iter().find(|o| {
        o["kind"] == "Deployment"
            && o["metadata"]["labels"]["app.kubernetes.io/component"] == "agent"
    })
}

/// The last value of `name` in the agent container's environment (a later entry wins, as in Kubernetes).
pub(super) fn agent_env<'a>(deployment: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "agent")?["env"]
        .as_array()?
        .iter()
        .rev()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

pub async fn agent_replicas(cx: std::sync::Arc<Cx>) -> Outcome {
    let (_, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let Some(d) = agent_deployment(f) else {
        return no_agent(f);
    };
    let name = d["metadata"]["name"].as_str().unwrap_or("agent");
    // A Deployment without `replicas` runs one.
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let o = if replicas > 1 {
        Outcome::finding(format!(
            "deployment {name} runs {replicas} agent replicas: each may submit the same flow run"
        ))
    } else {
        Outcome::pass(format!("deployment {name} runs {replicas} agent replica"))
    };
    o.with("deployment", name).with("replicas", replicas)
}

pub async fn agent_api_url(cx: std::sync::Arc<Cx>) -> Outcome {
    let (_, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let Some(d) = agent_deployment(f) else {
        return no_agent(f);
    };
    let ns = &f.release.namespace;
    // The Apollo service as pods reach it.
    let apollo = f.objects.iter().find(|o| {
        o["kind"] == "Service" && o["metadata"]["labels"]["app.kubernetes.io/component"] == "apollo"
    });
    let service = apollo.and_then(|s| s["metadata"]["name"].as_str());
    let port = apollo
        .and_then(|s| s["spec"]["ports"][0]["port"].as_i64())
        .unwrap_or(4200);
    let expected = service.map(|s| format!("http://{s}.{ns}:{port}/graphql"));
    let backend = agent_env(d, "PREFECT__BACKEND").unwrap_or("");
    let api = agent_env(d, "PREFECT__CLOUD__API").unwrap_or("");
    let with = |o: Outcome| {
        let o = o.with("api", api).with("backend", backend);
        match &expected {
            Some(e) => o.with("expected", e.as_str()).var("apollo_url", e.as_str()),
            None => o,
        }
    };
    let mut problems = Vec::new();
    if backend != "server" {
        problems.push(format!(
            "PREFECT__BACKEND is {backend:?}, not \"server\": the agent talks to Prefect Cloud"
        ));
    }
    let host = url::Url::parse(api)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host.as_deref() {
        None => problems.push(format!("PREFECT__CLOUD__API {api:?} is not a URL")),
        Some(h) if h == "localhost" || h.starts_with("127.") || h == "[::1]" => {
            problems.push(format!(
                "PREFECT__CLOUD__API is {api}: a pod's localhost is the pod itself, not Apollo"
            ))
        }
        Some(h) if h == "prefect.io" || h.ends_with(".prefect.io") => problems.push(format!(
            "PREFECT__CLOUD__API is {api}: that is Prefect Cloud, not this server"
        )),
        Some(h) => {
            let ours = service.is_some_and(|s| {
                let s = s.to_ascii_lowercase();
                h == s
                    || h == format!("{s}.{ns}")
                    || h == format!("{s}.{ns}.svc")
                    || h == format!("{s}.{ns}.svc.cluster.local")
            });
            if !ours {
                return with(Outcome::warn(format!(
                    "the agent reaches the API at {api}, not through this release's Apollo service ({}): \
                     fine if pods can resolve and reach that address",
                    expected.as_deref().unwrap_or("none found")
                )));
            }
        }
    }
    if problems.is_empty() {
        with(Outcome::pass(format!(
            "the agent talks to {api} with the server backend"
        )))
    } else {
        with(Outcome::finding(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_signatures() {
        let readme = "[2020-11-13 19:16:02,083] ERROR - agent | 400 Client Error: Bad Request for url: http://my-release-apollo.default:4200/graphql\n\nquery {\n get_runs_in_queue(input: $input) {\n}\nvariables {\n {\"input\": {\"before\": \"2020\", \"labels\": [], \"tenant_id\": null}}\n}";
        assert_eq!(tenant_error_lines(readme).len(), 1);
        assert_eq!(
            tenant_error_lines("ValueError: Prefect Server has no tenants").len(),
            1
        );
        assert!(tenant_error_lines("400 Client Error: Bad Request for url: x").is_empty());
    }
}
