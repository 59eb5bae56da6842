//! The doctor against a real Kubernetes control plane: etcd, kube-apiserver and Helm built from
//! their Go modules (`tests/cluster/build`), releases installed by real Helm from a chart made of
//! the chart's real rendering, requests proven by the API server's own audit log, and the real RBAC
//! authorizer (SubjectAccessReview) as the oracle of `agent.rbac`.

use crate::support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::{
    cluster::{self, ControlPlane},
    kubelet::{Running, Scenario, running, running_release},
    run_once,
};

/// The control plane, or return (the harness said why it is skipped).
macro_rules! control_plane {
    () => {
        match cluster::shared() {
            Some(cp) => cp,
            None => return,
        }
    };
}

/// `prefect-doctor check -o json ARGS` with `kubeconfig`.
fn doctor(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let kc = kubeconfig.display().to_string();
    let mut all = vec![
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &kc,
        "--timeout",
        "10s",
    ];
    all.extend_from_slice(args);
    let (code, stdout, stderr, _) = run_once(&all);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report ({e}): {stdout}\nstderr: {stderr}"));
    support::assert_fixes_filled(&json);
    (code, json, stderr)
}

fn result(report: &Value, id: &str) -> Value {
    support::result_of(report, id)
}

/// `prefect-doctor check --kubeconfig KC --timeout 10s EXTRA`, every output searched for the
/// database's canary password.
fn checked(kc: &str, extra: &[&str]) -> support::Run {
    let mut args = vec!["--kubeconfig", kc, "--timeout", "10s"];
    args.extend_from_slice(extra);
    support::check(&args, &[support::prefect::CANARY])
}

/// `prefect-doctor check --kubeconfig KC --timeout 10s -A ARGS` (a fleet run), its every output
/// searched for the database's canary password: the exit code, stdout and stderr.
fn fleet_run(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let kc = kubeconfig.display().to_string();
    let mut all = vec![
        "check",
        "--kubeconfig",
        kc.as_str(),
        "--timeout",
        "10s",
        "-A",
    ];
    all.extend_from_slice(args);
    let (code, out, err, _) = run_once(&all);
    assert!(!out.contains(support::prefect::CANARY) && !err.contains(support::prefect::CANARY));
    (code, out, err)
}

/// The message of check `id` in `report` ("" when it has none).
fn message<'a>(report: &'a Value, id: &str) -> &'a str {
    support::result_in(report, id)["message"]
        .as_str()
        .unwrap_or("")
}

/// `deploy/FILE` with every `namespace: prefect` made `ns`, and its cluster-wide objects named
/// after `ns` too (so that tests applying it at once do not rebind each other's).
fn deploy_in(file: &str, ns: &str) -> String {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect("deploy file")
        .replace("namespace: prefect", &format!("namespace: {ns}"))
        .split("\n---\n")
        .map(|doc| {
            if doc.contains("\nkind: ClusterRole") {
                doc.replace(
                    "\n  name: prefect-doctor-fleet\n",
                    &format!("\n  name: prefect-doctor-fleet-{ns}\n"),
                )
                .replace(
                    "\n  name: prefect-doctor\n",
                    &format!("\n  name: prefect-doctor-{ns}\n"),
                )
            } else {
                doc.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Every request the audit log holds of `user`: (verb, resource path, code).
fn requests_of(cp: &ControlPlane, user: &str) -> Vec<(String, String, i64)> {
    cp.audit_of(user)
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap_or("?").to_string(),
                e["requestURI"].as_str().unwrap_or("?").to_string(),
                e["responseStatus"]["code"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Every request `user` made, asserting that each was a read (a port-forward's connect counts as
/// one: `create` over SPDY, `get` over WebSocket) and none was turned away: answered, or 404, or
/// the 400 a kubelet gives for a log a container does not have.
fn only_reads(cp: &ControlPlane, user: &str) -> Vec<(String, String, i64)> {
    let requests = requests_of(cp, user);
    assert!(requests.len() >= 3, "{user}: {requests:?}");
    for (verb, uri, code) in &requests {
        let path = uri.split('?').next().unwrap_or("");
        let read = ["get", "list", "watch"].contains(&verb.as_str())
            || (verb == "create" && path.ends_with("/portforward"));
        assert!(read, "{user}: not a read: {verb} {uri}");
        // A kubelet answers 400 for a log it does not have (a container waiting to start, or with
        // no earlier run).
        let no_log = *code == 400 && path.ends_with("/log");
        assert!(
            (200..300).contains(code) || *code == 101 || *code == 404 || no_log,
            "{user}: refused ({code}): {verb} {uri}"
        );
    }
    requests
}

/// As [`only_reads`] for a run that reached every namespace (`-A`) on this shared cluster: every
/// request a read and none refused (401, 403) anywhere; in `namespaces` (the test's own), each
/// answered as [`only_reads`] demands.
fn only_reads_in(cp: &ControlPlane, user: &str, namespaces: &[&str]) {
    let requests = requests_of(cp, user);
    assert!(requests.len() >= 3, "{user}: {requests:?}");
    for (verb, uri, code) in &requests {
        let path = uri.split('?').next().unwrap_or("");
        let read = ["get", "list", "watch"].contains(&verb.as_str())
            || (verb == "create" && path.ends_with("/portforward"));
        assert!(read, "{user}: not a read: {verb} {uri}");
        assert!(
            ![401, 403].contains(code),
            "{user}: refused ({code}): {verb} {uri}"
        );
        let ours = namespaces
            .iter()
            .any(|ns| path.contains(&format!("/namespaces/{ns}/")));
        let no_log = *code == 400 && path.ends_with("/log");
        assert!(
            !ours || (200..300).contains(code) || *code == 101 || *code == 404 || no_log,
            "{user}: not answered ({code}): {verb} {uri}"
        );
    }
}

/// The rules of `deploy/rbac.yaml`'s Role, as a Role of `ns` bound to user `user`.
fn doctor_role_for_user(ns: &str, user: &str) -> String {
    let rbac = deploy_in("rbac.yaml", ns);
    let role = rbac
        .split("\n---\n")
        .find(|d| d.contains("\nkind: Role\n"))
        .expect("the Role of deploy/rbac.yaml");
    format!(
        "{role}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  \
         name: prefect-doctor-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: \
         rbac.authorization.k8s.io\n  kind: Role\n  name: prefect-doctor\nsubjects:\n- apiGroup: \
         rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
    )
}

/// A kube config of ServiceAccount `sa` of `ns` (a token of its), and the user the audit log
/// names it by.
fn kubeconfig_of(cp: &ControlPlane, ns: &str, sa: &str) -> (std::path::PathBuf, String) {
    let token = cp.service_account_token(ns, sa);
    let kc = cp.dir().join(format!("{sa}-{ns}.kubeconfig"));
    cp.write_kubeconfig(&kc, sa, &token, ns);
    (kc, format!("system:serviceaccount:{ns}:{sa}"))
}

/// `rbac` applied (deploy/'s files as [`deploy_in`] places them, or a Role changed from them), and
/// the kube config of its ServiceAccount `prefect-doctor` in `ns`, with the audit log's name for it.
fn as_the_account_of(cp: &ControlPlane, ns: &str, rbac: &str) -> (std::path::PathBuf, String) {
    cp.apply(rbac);
    kubeconfig_of(cp, ns, "prefect-doctor")
}

/// [`as_the_account_of`] deploy/rbac.yaml: the deployed ServiceAccount.
fn as_the_deployed_account(cp: &ControlPlane, ns: &str) -> (std::path::PathBuf, String) {
    as_the_account_of(cp, ns, &deploy_in("rbac.yaml", ns))
}

/// A ServiceAccount of `ns` bound to cluster-admin (so that nothing is refused and the audit log
/// holds its requests alone), its kube config, and the user the audit log names it by.
fn an_account_of_its_own(cp: &ControlPlane, ns: &str) -> (String, String) {
    let (kc, user) = kubeconfig_of(cp, ns, "reader");
    cp.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &format!("reader-{ns}"),
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount={ns}:reader"),
    ]);
    (kc.display().to_string(), user)
}

/// The chart's tenant Job of the release in `ns` as the Job controller and a kubelet (on `node`) leave
/// it after its backoff limit: its pod `pod` failed, the Job failed.
fn fail_tenant_job(cp: &ControlPlane, ns: &str, node: &str, pod: &str) {
    let job: Value = cp.get_json("job", ns, "prefect-create-tenant-job");
    cp.create(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": ns,
                "labels": {"job-name": "prefect-create-tenant-job"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "prefect-create-tenant-job",
                                     "uid": job["metadata"]["uid"], "controller": true}]},
            "spec": {"restartPolicy": "OnFailure", "nodeName": node,
                "containers": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest"}]}})
        .to_string(),
    );
    cp.patch_status(
        "pod",
        Some(ns),
        pod,
        &json!({"status": {"phase": "Failed",
            "containerStatuses": [{"name": "create-tenant-job", "image": "prefecthq/prefect:latest", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
    );
    let now = "2026-12-07T10:00:00Z";
    cp.patch_status(
        "job",
        Some(ns),
        "prefect-create-tenant-job",
        &json!({"status": {"failed": 10, "startTime": now, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now, "lastProbeTime": now}]}}),
    );
}

mod bundles;
mod fleet;
mod fleet_edges;
mod forwards;
mod grants;
mod helm;
mod kube_config;
mod pods;
mod preflight;
mod rbac;
mod release_parts;
mod runs;
mod user_checks;
mod versions;
