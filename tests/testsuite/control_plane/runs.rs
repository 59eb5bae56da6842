//! `runs.stuck-submitted` through the real cluster: flow runs in `Submitted` in the release's real
//! PostgreSQL, and what became of them as the API server keeps it: the Jobs Prefect 1's Kubernetes
//! agent creates (labelled `prefect.io/flow_run_id`) and the pods the Job controller would make for
//! them on the kubelet's Node, their statuses written as a kubelet writes them. One scenario per
//! cause, on one release.

use super::*;

const R1: &str = "11111111-1111-4111-8111-111111111111";
const R2: &str = "22222222-2222-4222-8222-222222222222";
const R3: &str = "33333333-3333-4333-8333-333333333333";
const IMAGE: &str = "registry.example.com/flows/etl:3";
const ID: &str = "runs.stuck-submitted";

/// The release, with runs R1, R2 and R3 submitted 40, 30 and 20 minutes ago.
fn stuck_release(cp: &ControlPlane, prefix: &str) -> Running {
    let r = running_release(cp, prefix, Scenario::default());
    for (id, name, ago) in [(R1, "etl", "40"), (R2, "sync", "30"), (R3, "report", "20")] {
        r.pg.sql(
            "prefect",
            &format!(
                "INSERT INTO flow_run (id, tenant_id, name, state, state_timestamp, labels) VALUES \
                 ('{id}', (SELECT id FROM tenant LIMIT 1), '{name}', 'Submitted', \
                 now() - interval '{ago} minutes', '[]'::jsonb);"
            ),
        );
    }
    r
}

/// Run `id`'s Job, as the agent creates it, and (with `status`) its pod as the Job controller makes
/// it, on the Node unless it is `unscheduled`, with the status a kubelet (or the scheduler) writes.
fn job_and_pod(cp: &ControlPlane, r: &Running, id: &str, status: Option<Value>) {
    let short = &id[..8];
    let labels = json!({"prefect.io/identifier": short, "prefect.io/flow_run_id": id});
    let job = cp.create(
        &json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": format!("prefect-job-{short}"), "namespace": r.ns, "labels": labels},
            "spec": {"template": {"metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "flow", "image": IMAGE}]}}}})
        .to_string(),
    );
    let Some(status) = status else { return };
    let mut pod_labels = labels.clone();
    pod_labels["job-name"] = json!(format!("prefect-job-{short}"));
    let unscheduled = status["conditions"][0]["reason"] == "Unschedulable";
    let mut spec = json!({"restartPolicy": "Never",
        "containers": [{"name": "flow", "image": IMAGE,
            "env": [{"name": "PREFECT__CLOUD__API", "value": "http://localhost:4200/graphql"}]}]});
    if !unscheduled {
        spec["nodeName"] = json!(r.kubelet.node);
    }
    let pod = format!("prefect-job-{short}-x7k2p");
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": r.ns, "labels": pod_labels,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": format!("prefect-job-{short}"),
                                     "uid": job["metadata"]["uid"], "controller": true}]},
            "spec": spec})
        .to_string(),
    );
    cp.patch_status("pod", Some(&r.ns), &pod, &json!({ "status": status }));
}

/// The runs' Jobs and pods gone (as after `kubectl delete`), for the next scenario.
fn clear(cp: &ControlPlane, r: &Running) {
    for kind in ["jobs", "pods"] {
        cp.kubectl_ok(&[
            "delete",
            kind,
            "-n",
            &r.ns,
            "-l",
            "prefect.io/flow_run_id",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
    }
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"phase": "Pending", "containerStatuses": [{"name": "flow", "image": IMAGE,
        "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": message}}}]})
}

#[test]
fn submitted_runs_are_followed_to_their_jobs_and_pods_through_the_real_cluster() {
    let cp = control_plane!();
    let r = stuck_release(cp, "stuck");
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    let kc = kc.display().to_string();
    let run = || {
        let (_, report, _) = doctor(std::path::Path::new(&kc), &["--only", ID]);
        let res = result(&report, ID);
        let text = |k: &str| res[k].as_str().unwrap_or("").to_string();
        (text("status"), text("message"), text("fix"), res.clone())
    };
    let ns = &r.ns;

    // No Job for any of them: the agent took them and could not create their Jobs.
    let (status, m, fix, _) = run();
    assert_eq!(status, "fail", "{m}");
    assert!(
        m.contains(&format!(
            "3 of them have no Job in namespace {ns}: the agent took them but could not create \
             their Jobs"
        )),
        "{m}"
    );
    assert!(fix.contains("agent.rbac") && fix.contains(R1), "{fix}");

    // One pod cannot pull its image, one runs without reporting, one run has no Job: the image is
    // the fix, and the message counts each cause.
    job_and_pod(
        cp,
        &r,
        R1,
        Some(waiting(
            "ImagePullBackOff",
            &format!("Back-off pulling image \"{IMAGE}\""),
        )),
    );
    job_and_pod(
        cp,
        &r,
        R2,
        Some(
            json!({"phase": "Running", "containerStatuses": [{"name": "flow", "image": IMAGE,
            "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
        ),
    );
    let (_, m, fix, res) = run();
    for part in [
        format!(
            "for run {R1}, pod prefect-job-11111111-x7k2p cannot pull image {IMAGE} (ImagePullBackOff"
        ),
        "(of the 3 looked at: 1 image cannot be pulled, 1 running without reporting, 1 no Job)"
            .to_string(),
    ] {
        assert!(m.contains(&part), "{part}: {m}");
    }
    for part in [
        format!("cannot pull its image {IMAGE}"),
        format!("kubectl describe pod -n {ns} prefect-job-11111111-x7k2p"),
    ] {
        assert!(fix.contains(&part), "{part}: {fix}");
    }
    assert_eq!(
        res["evidence"]["runs"].as_array().map(Vec::len),
        Some(3),
        "{res}"
    );

    // Every pod running without reporting: they cannot reach the API they were given.
    clear(cp, &r);
    for id in [R1, R2, R3] {
        job_and_pod(cp, &r, id, Some(json!({"phase": "Running"})));
    }
    let (_, _, fix, _) = run();
    for part in [
        "the API at http://localhost:4200/graphql".to_string(),
        format!("http://prefect-apollo.{ns}:4200/graphql"),
    ] {
        assert!(fix.contains(&part), "{part}: {fix}");
    }

    // A pod no node can take (the scheduler's word), a missing Secret, a failed pod, Jobs without
    // pods.
    clear(cp, &r);
    job_and_pod(
        cp,
        &r,
        R1,
        Some(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
        ),
    );
    let (_, m, fix, _) = run();
    assert!(
        m.contains(
            "cannot be scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        ),
        "{m}"
    );
    assert!(fix.contains("memory_request"), "{fix}");

    clear(cp, &r);
    job_and_pod(
        cp,
        &r,
        R1,
        Some(waiting(
            "CreateContainerConfigError",
            "secret \"flow-creds\" not found",
        )),
    );
    let (_, m, _, _) = run();
    assert!(
        m.contains(
            "cannot start its container: CreateContainerConfigError: secret \"flow-creds\" not found"
        ),
        "{m}"
    );

    clear(cp, &r);
    job_and_pod(
        cp,
        &r,
        R1,
        Some(
            json!({"phase": "Failed", "containerStatuses": [{"name": "flow", "image": IMAGE,
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        ),
    );
    let (_, m, fix, _) = run();
    assert!(
        m.contains("exited with code 1 (Error) before the flow reported Running"),
        "{m}"
    );
    assert!(
        fix.contains(&format!("kubectl logs -n {ns} prefect-job-11111111-x7k2p")),
        "{fix}"
    );

    clear(cp, &r);
    for id in [R1, R2, R3] {
        job_and_pod(cp, &r, id, None);
    }
    let (_, m, _, _) = run();
    assert!(m.contains("Job prefect-job-11111111 has no pod"), "{m}");
    only_reads(cp, &user);
}

/// The Jobs unreadable (a Role without `list jobs`, refused by the real API server): the runs are
/// still reported from the database, saying what could not be read.
#[test]
fn refused_reads_still_report_the_stuck_runs_on_a_real_cluster() {
    let cp = control_plane!();
    let r = stuck_release(cp, "stuckrbac");
    job_and_pod(cp, &r, R1, Some(json!({"phase": "Running"})));
    let role = deploy_in("rbac.yaml", &r.ns)
        .split("\n---\n")
        .map(|d| {
            d.replace(
                "\n  - apiGroups: [batch]\n    resources: [jobs]\n    verbs: [list]",
                "",
            )
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert!(!role.contains("resources: [jobs]"), "the rule is gone");
    let (kc, _) = as_the_account_of(cp, &r.ns, &role);
    let (_, report, _) = doctor(&kc, &["--only", ID]);
    let res = result(&report, ID);
    assert_eq!(res["status"], "fail", "{res}");
    assert!(
        res["message"].as_str().is_some_and(|m| m.contains(&format!(
            "their Jobs could not be read: cannot list jobs and pods in namespace {}",
            r.ns
        ))),
        "{res}"
    );
}
