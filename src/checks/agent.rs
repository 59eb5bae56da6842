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
