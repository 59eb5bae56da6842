//! `kube.restarts`: containers that look healthy now but restarted, and why their last run ended.

use serde_json::json;

use super::{
    Cx, Outcome,
    cluster_cx::{pod_name, release},
};

/// What an exit code says, for the codes Kubernetes users meet.
fn exit_meaning(code: i32, reason: &str) -> &'static str {
    match (code, reason) {
        (_, "OOMKilled") => "killed at its memory limit",
        (137, _) => "killed (SIGKILL) from outside, e.g. after failed liveness probes",
        (143, _) => "stopped (SIGTERM), e.g. a failed liveness probe or an eviction",
        (0, _) => "exited normally and was started again",
        _ => "crashed",
    }
}

pub async fn kube_restarts(cx: std::sync::Arc<Cx>) -> Outcome {
    let (k, f) = match release(&cx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let pods = match k.pods(f).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let mut found = Vec::new();
    let mut evidence = Vec::new();
    // (container, component, memory limit) of the first container killed at its memory limit.
    let mut oom: Option<(String, String, String)> = None;
    for p in pods {
        let name = pod_name(p);
        let component = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/component"))
            .cloned()
            .unwrap_or_default();
        let status = p.status.clone().unwrap_or_default();
        for s in status.container_statuses.iter().flatten() {
            if s.restart_count == 0 {
                continue;
            }
            let last = s.last_state.as_ref().and_then(|l| l.terminated.as_ref());
            let (code, reason, finished) = last
                .map(|t| {
                    (
                        t.exit_code,
                        t.reason.clone().unwrap_or_default(),
                        t.finished_at.as_ref().map(|f| f.0.to_string()),
                    )
                })
                .unwrap_or((0, String::new(), None));
            let limit = p
                .spec
                .as_ref()
                .and_then(|sp| sp.containers.iter().find(|c| c.name == s.name))
                .and_then(|c| c.resources.as_ref())
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get("memory"))
                .map(|q| q.0.clone());
            let mut line = format!(
                "pod {name} container {} restarted {} time{}",
                s.name,
                s.restart_count,
                if s.restart_count == 1 { "" } else { "s" }
            );
            if last.is_some() {
                line.push_str(&format!(
                    "; its last run ended with exit code {code}{}: {}",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    },
                    exit_meaning(code, &reason)
                ));
            }
            if reason == "OOMKilled" {
                line.push_str(&format!(
                    " (memory limit {})",
                    limit.as_deref().unwrap_or("none set")
                ));
                if oom.is_none() {
                    oom = Some((
                        s.name.clone(),
                        component.clone(),
                        limit.clone().unwrap_or_else(|| "none set".to_string()),
                    ));
                }
            }
            evidence.push(json!({"pod": name, "container": s.name, "restarts": s.restart_count,
                "exit_code": code, "reason": reason, "finished_at": finished, "memory_limit": limit}));
            found.push(line);
        }
    }
    if found.is_empty() {
        return Outcome::pass(format!(
            "no container of the release's {} pods has restarted",
            pods.len()
        ));
    }
    let o = Outcome::finding(crate::untrusted::list(&found, 5)).with("restarts", evidence);
    match oom {
        Some((container, component, limit)) => o
            .fix("oom")
            .var("container", container)
            .var("component", component)
            .var("memory_limit", limit),
        None => o,
    }
}
