//! `runs.stuck-submitted`: flow runs an agent took (`Submitted`) that never started, and why, from
//! the Jobs and pods the Kubernetes agent made for them (labelled `prefect.io/flow_run_id`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use serde_json::json;

use super::{
    Cx, Outcome,
    agent::{agent_deployment, agent_env},
    cluster_cx::{pod_name, release},
    db_session, query_failed,
};

/// Stuck: in `Submitted` for more than ten minutes (the database's clock).
const STUCK: &str = "state = 'Submitted' AND state_timestamp < now() - interval '10 minutes'";
/// Runs looked at and listed at the most.
const SHOWN: i64 = 20;
/// The label the Kubernetes agent puts on a flow run's Job and pod.
const RUN_LABEL: &str = "prefect.io/flow_run_id";
/// Outside words (a scheduler's message) shown at the most.
const REASON_CHARS: usize = 300;

struct Stuck {
    id: String,
    name: String,
    seconds: i64,
}

/// What became of one stuck run in the cluster, worst first (the order picks the fix).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    ImagePull {
        pod: String,
        image: String,
        reason: String,
    },
    Unschedulable {
        pod: String,
        reason: String,
    },
    Config {
        pod: String,
        reason: String,
    },
    Ended {
        pod: String,
        how: String,
        api: String,
    },
    Running {
        pod: String,
        api: String,
    },
    NoPod {
        job: String,
    },
    NoJob,
}

impl Cause {
    fn key(&self) -> &'static str {
        match self {
            Cause::ImagePull { .. } => "image_pull",
            Cause::Unschedulable { .. } => "unschedulable",
            Cause::Config { .. } => "config",
            Cause::Ended { .. } => "job_failed",
            Cause::Running { .. } => "no_report",
            Cause::NoPod { .. } => "no_pod",
            Cause::NoJob => "no_job",
        }
    }

    /// What the message counts it as.
    fn label(&self) -> &'static str {
        match self {
            Cause::ImagePull { .. } => "image cannot be pulled",
            Cause::Unschedulable { .. } => "cannot be scheduled",
            Cause::Config { .. } => "container cannot start",
            Cause::Ended { .. } => "pod ended",
            Cause::Running { .. } => "running without reporting",
            Cause::NoPod { .. } => "Job without a pod",
            Cause::NoJob => "no Job",
        }
    }

    fn text(&self) -> String {
        match self {
            Cause::ImagePull { pod, image, reason } => {
                format!("pod {pod} cannot pull image {image} ({reason})")
            }
            Cause::Unschedulable { pod, reason } => {
                format!("pod {pod} cannot be scheduled: {reason}")
            }
            Cause::Config { pod, reason } => {
                format!("pod {pod} cannot start its container: {reason}")
            }
            Cause::Ended { pod, how, .. } => {
                format!("pod {pod} {how} before the flow reported Running")
            }
            Cause::Running { pod, .. } => {
                format!("pod {pod} runs but its flow never reported Running")
            }
            Cause::NoPod { job } => format!(
                "Job {job} has no pod (the Job controller could not create one: a quota or an \
                 admission policy; kubectl describe job {job})"
            ),
            Cause::NoJob => "no Job exists for it".to_string(),
        }
    }
}

/// When a pod was created, as RFC 3339 text (which orders as time does).
fn created(p: &Pod) -> Option<String> {
    p.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
}

fn run_label(labels: Option<&BTreeMap<String, String>>) -> Option<&str> {
    labels.and_then(|l| l.get(RUN_LABEL)).map(String::as_str)
}

/// The API address a flow pod was given (the agent sets `PREFECT__CLOUD__API`).
fn pod_api(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.as_ref())
        .and_then(|env| {
            env.iter()
                .rev()
                .find(|e| e.name == "PREFECT__CLOUD__API")
                .and_then(|e| e.value.clone())
        })
        .unwrap_or_else(|| "no PREFECT__CLOUD__API in its environment".to_string())
}

/// What a flow run's pod says about why its flow has not started.
fn pod_cause(p: &Pod) -> Cause {
    let pod = pod_name(p).to_string();
    let cap = |s: &str| crate::untrusted::cap(s, REASON_CHARS);
    let status = p.status.clone().unwrap_or_default();
    for c in status.container_statuses.iter().flatten() {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            let detail = w
                .message
                .as_deref()
                .map(|m| format!("{reason}: {}", cap(m)))
                .unwrap_or_else(|| reason.clone());
            match reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                    return Cause::ImagePull {
                        pod,
                        image: c.image.clone(),
                        reason: detail,
                    };
                }
                "CreateContainerConfigError"
                | "CreateContainerError"
                | "RunContainerError"
                | "ContainerCreating" => {
                    return Cause::Config {
                        pod,
                        reason: detail,
                    };
                }
                _ => {}
            }
        }
    }
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if phase == "Pending" {
        let unscheduled = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False");
        let reason = unscheduled
            .map(|c| {
                let r = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
                match &c.message {
                    Some(m) => format!("{r}: {}", cap(m)),
                    None => r,
                }
            })
            .unwrap_or_else(|| "Pending, not yet scheduled".to_string());
        return Cause::Unschedulable { pod, reason };
    }
    let ended = status.container_statuses.iter().flatten().find_map(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| {
                format!(
                    "exited with code {}{}",
                    t.exit_code,
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
    });
    match (phase, ended) {
        ("Running", None) => Cause::Running {
            pod,
            api: pod_api(p),
        },
        (_, Some(how)) => Cause::Ended {
            pod,
            how,
            api: pod_api(p),
        },
        (phase, None) => Cause::Ended {
            pod,
            how: format!("is {phase}"),
            api: pod_api(p),
        },
    }
}

/// What became of the run `id`, from the Jobs and pods of the agent's namespace.
fn cause_of(id: &str, jobs: &[Job], pods: &[Pod]) -> Cause {
    let Some(job) = jobs
        .iter()
        .find(|j| run_label(j.metadata.labels.as_ref()) == Some(id))
    else {
        return Cause::NoJob;
    };
    // The newest pod of the run (a Job may have retried).
    let pod = pods
        .iter()
        .filter(|p| run_label(p.metadata.labels.as_ref()) == Some(id))
        .max_by(|a, b| created(a).cmp(&created(b)));
    match pod {
        Some(p) => pod_cause(p),
        None => Cause::NoPod {
            job: job.metadata.name.clone().unwrap_or_default(),
        },
    }
}

fn age(seconds: i64) -> String {
    crate::untrusted::duration(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

pub async fn runs_stuck_submitted(cx: Arc<Cx>) -> Outcome {
    let s = match db_session(&cx).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rows = match s
        .query(
            &format!(
                "SELECT count(*) OVER (), id::text, coalesce(name, ''), \
                        extract(epoch FROM now() - state_timestamp)::bigint \
                 FROM public.flow_run WHERE {STUCK} ORDER BY state_timestamp LIMIT {SHOWN}"
            ),
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return query_failed("read the flow runs in Submitted", e),
    };
    let count: i64 = rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(0);
    let stuck: Vec<Stuck> = rows
        .iter()
        .map(|r| Stuck {
            id: r.try_get(1).unwrap_or_default(),
            name: r.try_get(2).unwrap_or_default(),
            seconds: r.try_get(3).unwrap_or(0),
        })
        .collect();
    let Some(oldest) = stuck.first() else {
        return Outcome::pass("no flow run has been in Submitted for more than 10 minutes")
            .with("stuck", 0);
    };
    let named = |r: &Stuck| {
        if r.name.is_empty() {
            r.id.clone()
        } else {
            format!("{} ({})", r.name, r.id)
        }
    };
    let head = format!(
        "{count} flow run{} in Submitted for more than 10 minutes (the oldest, {}, for {})",
        if count == 1 {
            " has been"
        } else {
            "s have been"
        },
        named(oldest),
        age(oldest.seconds)
    );
    let stuck_var = format!(
        "{count} flow run{} ({}{})",
        if count == 1 { "" } else { "s" },
        stuck
            .iter()
            .take(3)
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if count > 3 { ", …" } else { "" }
    );
    let listed = || {
        stuck
            .iter()
            .map(|r| json!({"id": r.id, "name": r.name, "submitted_seconds": r.seconds}))
            .collect::<Vec<_>>()
    };
    let Ok((k, f)) = release(&cx) else {
        return Outcome::finding(format!(
            "{head}; not looking at a cluster, so what became of their Jobs is not known \
             (pass --context/--release to have it read)"
        ))
        .with("stuck", count)
        .with("runs", listed())
        .var("stuck_runs", stuck_var);
    };
    let job_ns = agent_deployment(f)
        .and_then(|d| agent_env(d, "NAMESPACE"))
        .unwrap_or(&f.release.namespace)
        .to_string();
    let read = async {
        let jobs = k.probe.list::<Job>(Some(&job_ns), RUN_LABEL).await?;
        let pods = k.probe.list::<Pod>(Some(&job_ns), RUN_LABEL).await?;
        Ok::<_, crate::probes::kube::KubeError>((jobs, pods))
    };
    let (jobs, pods) = match read.await {
        Ok(x) => x,
        Err(e) => {
            return Outcome::finding(format!(
                "{head}; their Jobs could not be read: cannot list jobs and pods in namespace \
                 {job_ns}: {e}"
            ))
            .with("stuck", count)
            .with("runs", listed())
            .with("kube_error", e.kind())
            .var("stuck_runs", stuck_var)
            .var("job_namespace", job_ns);
        }
    };
    let causes: Vec<Cause> = stuck
        .iter()
        .map(|r| cause_of(&r.id, &jobs, &pods))
        .collect();
    // The worst cause decides the fix; the message counts each.
    let Some(worst) = causes.iter().min().cloned() else {
        return Outcome::error("no cause found for a stuck run");
    };
    let mut tally: Vec<(&str, usize)> = Vec::new();
    for c in &causes {
        let kind = c.label();
        match tally.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => tally.push((kind, 1)),
        }
    }
    let looked = causes.len();
    let summary = if tally.len() > 1 {
        format!(
            " (of the {looked} looked at: {})",
            tally
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let worst_run = causes
        .iter()
        .position(|c| *c == worst)
        .and_then(|i| stuck.get(i))
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let message = match &worst {
        // The worst cause is the mildest: none of the runs has a Job.
        Cause::NoJob => format!(
            "{head}; {looked} of them ha{} no Job in namespace {job_ns}: the agent took them but \
             could not create their Jobs",
            if looked == 1 { "s" } else { "ve" },
        ),
        other => format!("{head}; for run {worst_run}, {}{summary}", other.text()),
    };
    let evidence: Vec<serde_json::Value> = stuck
        .iter()
        .zip(&causes)
        .map(|(r, c)| json!({"id": r.id, "name": r.name, "submitted_seconds": r.seconds, "cause": c.key(), "detail": c.text()}))
        .collect();
    let mut o = Outcome::finding(message)
        .with("stuck", count)
        .with("job_namespace", job_ns.clone())
        .with("runs", evidence)
        .var("stuck_runs", stuck_var)
        .var("job_namespace", job_ns);
    o = match worst {
        Cause::ImagePull { pod, image, reason } => o
            .fix("image_pull")
            .var("flow_pod", pod)
            .var("flow_image", image)
            .var("pull_reason", reason),
        Cause::Unschedulable { pod, reason } => o
            .fix("unschedulable")
            .var("flow_pod", pod)
            .var("pending_reason", reason),
        Cause::Config { pod, reason } => o
            .fix("config")
            .var("flow_pod", pod)
            .var("pending_reason", reason),
        Cause::Ended { pod, how, api } => o
            .fix("job_failed")
            .var("flow_pod", pod)
            .var("pod_end", how)
            .var("flow_api", api),
        Cause::Running { pod, api } => o.fix("no_report").var("flow_pod", pod).var("flow_api", api),
        Cause::NoPod { .. } => o,
        Cause::NoJob => o.fix("no_job"),
    };
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pods_tell_the_cause() {
        let base = json!({"metadata": {"name": "prefect-job-1-abc", "labels": {RUN_LABEL: "r1"}},
                          "spec": {"containers": [{"name": "flow", "image": "me/flow:1",
                                   "env": [{"name": "PREFECT__CLOUD__API", "value": "http://x:4200/graphql"}]}]}});
        let with = |status: serde_json::Value| {
            let mut v = base.clone();
            v["status"] = status;
            pod(v)
        };
        let pull = with(
            json!({"phase": "Pending", "containerStatuses": [{"name": "flow", "image": "me/flow:1",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}),
        );
        assert!(
            matches!(pod_cause(&pull), Cause::ImagePull { ref image, .. } if image == "me/flow:1")
        );
        let pending = with(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        );
        match pod_cause(&pending) {
            Cause::Unschedulable { reason, .. } => {
                assert!(reason.contains("Insufficient cpu"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let running = with(json!({"phase": "Running"}));
        assert!(
            matches!(pod_cause(&running), Cause::Running { ref api, .. } if api == "http://x:4200/graphql")
        );
        let failed = with(
            json!({"phase": "Failed", "containerStatuses": [{"name": "flow", "image": "me/flow:1",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        );
        match pod_cause(&failed) {
            Cause::Ended { how, .. } => assert_eq!(how, "exited with code 1 (Error)"),
            other => panic!("{other:?}"),
        }
        assert!(
            Cause::ImagePull {
                pod: String::new(),
                image: String::new(),
                reason: String::new()
            } < Cause::NoJob
        );
    }
}
