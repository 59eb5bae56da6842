//! Pods, containers and logs as a kubelet reports them through the real API server.

use super::*;

#[test]
fn pod_states_and_agent_logs_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let tenant_error = "[2020-11-13 19:16:02,083] ERROR - agent | 400 Client Error: Bad Request for url: http://prefect-apollo.default:4200/graphql\n\nThis is likely caused by a poorly formatted GraphQL query or mutation. GraphQL sent:\n\nquery {\n    mutation($input: get_runs_in_queue_input!) {\n            get_runs_in_queue(input: $input) {\n                flow_run_ids\n        }\n    }\n}\nvariables {\n    {\"input\": {\"before\": \"2020-11-13T19:16:01.973734+00:00\", \"labels\": [], \"tenant_id\": null}}\n}\n";
    let r = running_release(
        cp,
        "states",
        Scenario {
            helm: &["--set", "agent.enabled=true"],
            logs: vec![("prefect-agent-6d4b9c7f5-x2x9k", "agent", tenant_error)],
            ..Default::default()
        },
    );
    assert!(
        r.pods
            .contains(&"prefect-agent-6d4b9c7f5-x2x9k".to_string()),
        "{:?}",
        r.pods
    );
    // graphql in CrashLoopBackOff after an OOM kill; hasura restarted twice and Ready again.
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-graphql-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "graphql", "image": "prefecthq/server:latest", "imageID": "", "ready": false,
                "started": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:01:00Z"}}}]}}),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-x2x9k",
        &json!({"status": {"containerStatuses": [{"name": "hasura", "image": "hasura/graphql-engine:v2.0.9", "imageID": "",
            "ready": true, "started": true, "restartCount": 2,
            "state": {"running": {"startedAt": "2026-12-06T10:05:00Z"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:04:00Z"}}}]}}),
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &[]);
    assert_eq!(run.status("kube.pods"), "fail", "{}", run.text);
    let m = run.message("kube.pods");
    assert!(
        m.contains("container graphql CrashLoopBackOff") && m.contains("restarts 7"),
        "{m}"
    );
    assert!(run.text.contains("OOMKilled"), "{}", run.text);
    assert_ne!(run.status("kube.restarts"), "pass", "{}", run.text);
    // The agent's log, read through the API server's log endpoint from kwok.
    assert_eq!(run.status("agent.tenant-errors"), "fail", "{}", run.text);
    assert!(
        run.message("agent.tenant-errors")
            .contains("400 Client Error: Bad Request"),
        "{}",
        run.message("agent.tenant-errors")
    );
    assert!(
        run.fix("agent.tenant-errors")
            .contains("--set jobs.createTenant.enabled=true"),
        "{}",
        run.fix("agent.tenant-errors")
    );

    // The same run as deploy/rbac.yaml's ServiceAccount: every request, port-forwards and log
    // reads included, is a read the Role grants (the audit log).
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    let (_, report, _) = doctor(&kc, &[]);
    assert_eq!(
        result(&report, "agent.tenant-errors")["status"],
        "fail",
        "{report}"
    );
    assert_eq!(
        result(&report, "db.reachable")["status"],
        "pass",
        "{report}"
    );
    let requests = only_reads(cp, &user);
    let mut subresources = std::collections::BTreeSet::new();
    for (verb, uri, _) in &requests {
        let path = uri.split('?').next().unwrap_or("");
        if path.ends_with("/portforward") || path.ends_with("/log") {
            subresources.insert(format!("{verb} {}", path.rsplit('/').next().unwrap_or("")));
        }
    }
    assert!(
        subresources.iter().any(|s| s.ends_with("portforward")),
        "{subresources:?}"
    );
    assert!(subresources.contains("get log"), "{subresources:?}");
    let _ = &r.pg;
}

#[test]
fn an_image_that_cannot_be_pulled_and_a_pod_no_node_can_take() {
    let cp = control_plane!();
    let r = running_release(cp, "pull", Scenario::default());
    let pod: Value = cp.get_json("pod", &r.ns, "prefect-postgresql-0");
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .expect("image")
        .to_string();
    assert!(image.contains("bitnami/postgresql"), "{image}");
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-postgresql-0",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": pod["spec"]["containers"][0]["name"], "image": image, "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{image}\"")}}}]}}),
    );
    // Hasura's pod replaced by one no node can take, as the scheduler leaves it: no nodeName, Pending,
    // PodScheduled False.
    let hasura: Value = cp.get_json("pod", &r.ns, "prefect-hasura-6d4b9c7f5-x2x9k");
    // Gone at once (no kubelet runs its containers to stop them).
    cp.kubectl_ok(&[
        "delete",
        "pod",
        "prefect-hasura-6d4b9c7f5-x2x9k",
        "-n",
        &r.ns,
        "--grace-period=0",
        "--force",
    ]);
    let mut spec = hasura["spec"].clone();
    spec.as_object_mut().expect("spec").remove("nodeName");
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "prefect-hasura-6d4b9c7f5-q8w2m", "namespace": r.ns,
                "labels": hasura["metadata"]["labels"], "ownerReferences": hasura["metadata"]["ownerReferences"]},
            "spec": spec})
        .to_string(),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-q8w2m",
        &json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]}}),
    );
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "kube.pods"]);
    let res = result(&report, "kube.pods");
    assert_eq!(res["status"], "fail", "{res}");
    let m = res["message"].as_str().unwrap_or("");
    assert!(m.contains("ImagePullBackOff"), "{res}");
    assert!(
        m.contains(
            "pod prefect-hasura-6d4b9c7f5-q8w2m is Pending and not ready: Unschedulable 0/1 nodes are \
             available: 1 Insufficient memory."
        ),
        "{res}"
    );
    let fix = res["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains(&format!("its image `{image}` cannot be pulled")),
        "{fix}"
    );
    assert!(
        fix.contains("--set postgresql.image.repository=bitnamilegacy/postgresql"),
        "{fix}"
    );

    // PostgreSQL pulled after all; Apollo's image is the one missing: the generic pull advice,
    // naming the image, not Bitnami's.
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-postgresql-0",
        &support::kubelet::running(&pod),
    );
    let apollo: Value = cp.get_json("pod", &r.ns, "prefect-apollo-6d4b9c7f5-x2x9k");
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-apollo-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": apollo["spec"]["containers"][0]["name"],
                "image": apollo["spec"]["containers"][0]["image"], "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImagePull",
                    "message": "manifest for prefecthq/apollo:2099.01.01 not found"}}}]}}),
    );
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "kube.pods"]);
    let res = result(&report, "kube.pods");
    let fix = res["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains("image `prefecthq/apollo:") && fix.contains("imagePullSecrets"),
        "{fix}"
    );
    assert!(!fix.contains("bitnamilegacy"), "{fix}");
    let _ = &r.pg;
}

/// The chart's tenant Job (`jobs.createTenant.enabled`) as real Helm creates it and the Job
/// controller and kubelet would leave it after its backoff limit: failed, its last pod's log (read
/// through the real logs endpoint) saying why.
#[test]
fn a_failed_tenant_job_is_read_through_the_real_cluster() {
    let cp = control_plane!();
    let pod = "prefect-create-tenant-job-x1k2d";
    let r = running_release(
        cp,
        "tenantjob",
        Scenario {
            helm: &["--set", "jobs.createTenant.enabled=true"],
            logs: vec![(
                pod,
                "create-tenant-job",
                "requests.exceptions.ConnectionError: HTTPConnectionPool(host='prefect-apollo.default', port=4200): Max retries exceeded",
            )],
            ..Scenario::default()
        },
    );
    // Helm made it; no attempt has ended yet.
    let kc = r.kubeconfig.display().to_string();
    let only = ["--only", "kube.tenant-job"];
    let run = checked(&kc, &only);
    assert_eq!(run.status("kube.tenant-job"), "warn", "{}", run.text);
    assert!(
        run.fix("kube.tenant-job").contains(&format!(
            "kubectl logs -n {} job/prefect-create-tenant-job -f",
            r.ns
        )),
        "{}",
        run.fix("kube.tenant-job")
    );
    fail_tenant_job(cp, &r.ns, &r.kubelet.node, pod);
    let run = checked(&kc, &only);
    assert_eq!(run.status("kube.tenant-job"), "fail", "{}", run.text);
    assert!(
        run.message("kube.tenant-job").contains("backoff limit"),
        "{}",
        run.message("kube.tenant-job")
    );
    assert!(
        run.result("kube.tenant-job")["evidence"]["last_log_lines"]
            .to_string()
            .contains("Max retries exceeded"),
        "{}",
        run.result("kube.tenant-job")
    );
    assert!(
        run.fix("kube.tenant-job").contains(&format!(
            "kubectl logs -n {} job/prefect-create-tenant-job",
            r.ns
        )),
        "{}",
        run.fix("kube.tenant-job")
    );
}

/// Pods that look healthy (Running and Ready) but restarted, as a kubelet reports them: graphql
/// OOM-killed three times at its memory limit, Apollo stopped once (SIGTERM).
#[test]
fn restarts_of_healthy_looking_pods_and_why_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let r = running_release(cp, "restarts", Scenario::default());
    let kc = r.kubeconfig.display().to_string();
    let only = ["--only", "kube.restarts", "--only", "kube.pods"];
    let run = checked(&kc, &only);
    assert_eq!(run.status("kube.restarts"), "pass", "{}", run.text);

    // graphql's pod made again with a memory limit (a pod's resources are fixed once it exists),
    // as its ReplicaSet would.
    let name = "prefect-graphql-6d4b9c7f5-x2x9k";
    let old: Value = cp.get_json("pod", &r.ns, name);
    cp.kubectl_ok(&[
        "delete",
        "pod",
        name,
        "-n",
        &r.ns,
        "--grace-period=0",
        "--force",
    ]);
    let mut spec = old["spec"].clone();
    spec["containers"][0]["resources"] = json!({"limits": {"memory": "256Mi"}});
    let graphql = cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": r.ns,
                "labels": old["metadata"]["labels"], "ownerReferences": old["metadata"]["ownerReferences"]},
            "spec": spec})
        .to_string(),
    );
    let mut status = support::kubelet::running(&graphql);
    status["status"]["containerStatuses"][0]["restartCount"] = json!(3);
    status["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137,
        "reason": "OOMKilled", "startedAt": "2026-12-06T10:01:00Z", "finishedAt": "2026-12-06T11:01:00Z"}});
    cp.patch_status("pod", Some(&r.ns), name, &status);
    let apollo = "prefect-apollo-6d4b9c7f5-x2x9k";
    let pod: Value = cp.get_json("pod", &r.ns, apollo);
    let mut status = support::kubelet::running(&pod);
    status["status"]["containerStatuses"][0]["restartCount"] = json!(1);
    status["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 143,
        "reason": "Error", "startedAt": "2026-12-06T10:01:00Z", "finishedAt": "2026-12-06T10:30:00Z"}});
    cp.patch_status("pod", Some(&r.ns), apollo, &status);

    let run = checked(&kc, &only);
    assert_eq!(
        run.status("kube.pods"),
        "pass",
        "they look healthy: {}",
        run.text
    );
    assert_eq!(run.status("kube.restarts"), "warn", "{}", run.text);
    let m = run.message("kube.restarts");
    assert!(
        m.contains("restarted 3 times; its last run ended with exit code 137 (OOMKilled): killed at its memory limit (memory limit 256Mi)"),
        "{m}"
    );
    assert!(
        m.contains("exit code 143 (Error): stopped (SIGTERM)"),
        "{m}"
    );
    let fix = run.fix("kube.restarts");
    assert!(
        fix.contains("--set graphql.resources.limits.memory=<MORE, e.g. twice 256Mi>"),
        "{fix}"
    );
    let _ = &r.pg;
}

/// Broken pods as a kubelet reports them: graphql in CrashLoopBackOff, its previous run's log (read
/// through the real logs endpoint with `previous`) holding the database URL with its password, which
/// the report masks; hasura unable to start for a key its Secret lacks.
#[test]
fn broken_pods_give_reason_restarts_and_redacted_logs_as_a_kubelet_reports_them() {
    let cp = control_plane!();
    let graphql = "prefect-graphql-6d4b9c7f5-x2x9k";
    let crashed = format!(
        "starting\nsqlalchemy.exc.OperationalError: connection to postgresql://prefect:{}@prefect-postgresql.default:5432/prefect failed\nFATAL:  password authentication failed for user \"prefect\"\n",
        support::prefect::CANARY
    );
    let r = running_release(
        cp,
        "broken",
        Scenario {
            previous_logs: vec![(graphql, "graphql", &crashed)],
            ..Scenario::default()
        },
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        graphql,
        &json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "graphql", "image": "prefecthq/server:latest", "imageID": "", "ready": false,
                "started": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 5m0s restarting failed container=graphql"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:01:00Z"}}}]}}),
    );
    cp.patch_status(
        "pod",
        Some(&r.ns),
        "prefect-hasura-6d4b9c7f5-x2x9k",
        &json!({"status": {"phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}],
            "containerStatuses": [{"name": "hasura", "image": "hasura/graphql-engine:v2.0.9", "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                    "message": format!("couldn't find key postgres-password in Secret {}/prefect-postgresql", r.ns)}}}]}}),
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &["--only", "kube.pods"]);
    assert_eq!(run.status("kube.pods"), "fail", "{}", run.text);
    let m = run.message("kube.pods");
    assert!(m.contains("container graphql CrashLoopBackOff"), "{m}");
    assert!(m.contains("restarts 7"), "{m}");
    assert!(m.contains("couldn't find key postgres-password"), "{m}");
    assert!(
        run.fix("kube.pods").contains("see kube.db-secret"),
        "{}",
        run.fix("kube.pods")
    );
    let pods = run.result("kube.pods")["evidence"]["pods"].to_string();
    assert!(
        pods.contains("password authentication failed for user"),
        "{pods}"
    );
    assert!(pods.contains("postgresql://prefect:****@"), "{pods}");
    assert!(run.text.contains("CreateContainerConfigError"));
    let _ = &r.pg;
}

/// A rollout stuck half-way, as the cluster keeps it: towel's pod runs the release's tag while a pod
/// of an older ReplicaSet of its Deployment still runs an older one (as a Deployment whose new pods
/// do not become Ready leaves the old ones serving). Each of towel's pods is named with its image.
#[test]
fn a_rollout_stuck_half_way_names_each_pod_and_its_server_tag() {
    let cp = control_plane!();
    let r = running_release(cp, "stuck", Scenario::default());
    let (towel, old) = (
        "prefect-towel-6d4b9c7f5-x2x9k",
        "prefect-towel-5c8d7b6a4-q8w2n",
    );
    let current = cp.get_json("pod", &r.ns, towel);
    let deployment = cp.get_json("deployment", &r.ns, "prefect-towel");
    let mut labels = current["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!("5c8d7b6a4");
    let mut spec = current["spec"].clone();
    spec["containers"][0]["image"] = json!("prefecthq/server:2022.09.23");
    let rs = cp.create(
        &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "prefect-towel-5c8d7b6a4", "namespace": r.ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "prefect-towel",
                                     "uid": deployment["metadata"]["uid"], "controller": true}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}})
        .to_string(),
    );
    let pod = cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": old, "namespace": r.ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "prefect-towel-5c8d7b6a4", "uid": rs["metadata"]["uid"], "controller": true}]},
            "spec": spec})
        .to_string(),
    );
    cp.patch_status("pod", Some(&r.ns), old, &running(&pod));
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &["--only", "kube.images"]);
    assert_eq!(run.status("kube.images"), "warn", "{}", run.text);
    let m = run.message("kube.images");
    for part in [
        "run different server tags".to_string(),
        "graphql prefecthq/server:latest".to_string(),
        format!("towel prefecthq/server:2022.09.23 (pod {old})"),
        format!("towel prefecthq/server:latest (pod {towel})"),
    ] {
        assert!(m.contains(&part), "{part}: {m}");
    }
    // Towel's current pod floats on `latest` too, as apollo's and graphql's do.
    assert!(m.contains("apollo, graphql, towel run tag `latest`"), "{m}");
    let mixed = &run.result("kube.images")["evidence"]["mixed_pods"];
    assert_eq!(mixed.as_array().map(Vec::len), Some(2), "{mixed}");
}
