//! `runs.stuck-submitted`: flow runs in `Submitted` on the real PostgreSQL (tables shaped like
//! Prefect Server's), and what became of them in the in-test cluster: the Jobs and pods the
//! Kubernetes agent labels `prefect.io/flow_run_id`, one scenario per cause.

use crate::support;

use serde_json::{Value, json};
use support::{
    check,
    kube::Cluster,
    kube_server::KubeServer,
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
};

const R1: &str = "11111111-1111-4111-8111-111111111111";
const R2: &str = "22222222-2222-4222-8222-222222222222";
const R3: &str = "33333333-3333-4333-8333-333333333333";

/// A flow run `id` named `name` in `state` since `ago` (an SQL interval).
fn flow_run(pg: &PgServer, id: &str, name: &str, state: &str, ago: &str) {
    pg.sql(
        "prefect",
        &format!(
            "INSERT INTO flow_run (id, tenant_id, name, state, state_timestamp, labels) \
             VALUES ('{id}', (SELECT id FROM tenant LIMIT 1), '{name}', '{state}', \
                     now() - interval '{ago}', '[]'::jsonb);"
        ),
    );
}

/// The Job the Kubernetes agent creates for run `id` (as Prefect 1's agent labels it).
fn job(id: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("prefect-job-{}", &id[..8]), "namespace": "default",
                     "labels": {"prefect.io/identifier": &id[..8], "prefect.io/flow_run_id": id}},
        "spec": {"template": {"metadata": {"labels": {"prefect.io/flow_run_id": id}},
                 "spec": {"restartPolicy": "Never", "containers": [{"name": "flow", "image": "registry.example.com/flows/etl:3"}]}}},
        "status": {"active": 1}})
}

/// The pod of run `id`'s Job with `status`.
fn pod(id: &str, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("prefect-job-{}-x7k2p", &id[..8]), "namespace": "default",
                     "creationTimestamp": "2026-12-04T10:00:00Z",
                     "labels": {"prefect.io/identifier": &id[..8], "prefect.io/flow_run_id": id, "job-name": format!("prefect-job-{}", &id[..8])}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "flow", "image": "registry.example.com/flows/etl:3",
                 "env": [{"name": "PREFECT__CLOUD__API", "value": "http://localhost:4200/graphql"}]}]},
        "status": status})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"phase": "Pending", "containerStatuses": [{"name": "flow", "image": "registry.example.com/flows/etl:3",
        "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": message}}}]})
}

struct Setup {
    pg: PgServer,
}

impl Setup {
    fn new() -> Setup {
        let pg = PgServer::start();
        seed(&pg, &Seed::healthy("prefect"));
        Setup { pg }
    }

    /// The chart's release, its database forwarded to the real PostgreSQL, plus `objects`.
    fn cluster(&self, objects: Vec<Value>) -> Cluster {
        let mut c = Cluster::prefect(json!({}));
        c.forward(
            "prefect-postgresql",
            5432,
            ([127, 0, 0, 1], self.pg.port).into(),
        );
        c.set_secret_key("prefect-postgresql", "postgres-password", CANARY);
        c.set_secret_key("prefect-postgresql", "password", CANARY);
        c.objects.extend(objects);
        c
    }

    fn on(&self, server: &KubeServer) -> support::Run {
        let kc = server.kubeconfig();
        let run = check(
            &[
                "--kubeconfig",
                &kc,
                "--timeout",
                "3s",
                "--only",
                "runs.stuck-submitted",
            ],
            &[CANARY],
        );
        server.assert_only_gets();
        run
    }

    fn with(&self, objects: Vec<Value>) -> support::Run {
        let server = self.cluster(objects).start();
        self.on(&server)
    }
}

const ID: &str = "runs.stuck-submitted";

#[test]
fn without_a_cluster_the_database_tells_what_is_stuck() {
    let s = Setup::new();
    flow_run(&s.pg, R1, "nightly-etl", "Submitted", "2 minutes");
    flow_run(&s.pg, R2, "old", "Running", "1 hour");
    let url = s.pg.url(APP_USER, CANARY, "prefect");
    let only = |pg_url: &str| check(&["--database-url", pg_url, "--only", ID], &[CANARY]);
    let run = only(&url);
    assert_eq!(run.status(ID), "pass", "{}", run.text);

    flow_run(&s.pg, R3, "hourly-sync", "Submitted", "25 minutes");
    let run = only(&url);
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    let m = run.message(ID);
    assert!(
        m.starts_with(&format!(
            "1 flow run has been in Submitted for more than 10 minutes (the oldest, hourly-sync ({R3}), for 25m"
        )),
        "{m}"
    );
    assert!(m.contains("not looking at a cluster"), "{m}");
    assert!(
        run.fix(ID)
            .contains("kubectl get jobs,pods -n <namespace> -l prefect.io/flow_run_id"),
        "{}",
        run.fix(ID)
    );
}

#[test]
fn the_cluster_says_why_each_run_did_not_start() {
    let s = Setup::new();
    flow_run(&s.pg, R1, "etl", "Submitted", "40 minutes");
    flow_run(&s.pg, R2, "sync", "Submitted", "30 minutes");
    flow_run(&s.pg, R3, "report", "Submitted", "20 minutes");

    // Healthy runs elsewhere have their Jobs; none of ours has one.
    let run = s.with(vec![]);
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    assert!(
        run.message(ID)
            .contains("3 of them have no Job in namespace default: the agent took them but could not create their Jobs"),
        "{}",
        run.message(ID)
    );
    assert!(run.fix(ID).contains("agent.rbac"), "{}", run.fix(ID));
    assert!(run.fix(ID).contains(R1), "{}", run.fix(ID));

    // One pod cannot pull its image, one runs without reporting, one run has no Job: the image is
    // the fix, and the message counts each cause.
    let run = s.with(vec![
        job(R1),
        pod(R1, waiting("ImagePullBackOff", "Back-off pulling image \"registry.example.com/flows/etl:3\"")),
        job(R2),
        pod(R2, json!({"phase": "Running", "containerStatuses": [{"name": "flow", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]})),
    ]);
    let m = run.message(ID);
    assert!(
        m.contains(&format!("for run {R1}, pod prefect-job-11111111-x7k2p cannot pull image registry.example.com/flows/etl:3 (ImagePullBackOff")),
        "{m}"
    );
    assert!(
        m.contains(
            "(of the 3 looked at: 1 image cannot be pulled, 1 running without reporting, 1 no Job)"
        ),
        "{m}"
    );
    let fix = run.fix(ID);
    assert!(
        fix.contains("cannot pull its image registry.example.com/flows/etl:3"),
        "{fix}"
    );
    assert!(
        fix.contains("kubectl describe pod -n default prefect-job-11111111-x7k2p"),
        "{fix}"
    );
    let runs = &run.result(ID)["evidence"]["runs"];
    assert_eq!(runs.as_array().map(Vec::len), Some(3), "{runs}");

    // A running pod alone: it cannot reach the API it was given.
    let running = json!({"phase": "Running"});
    let run = s.with(vec![
        job(R1),
        pod(R1, running.clone()),
        job(R2),
        pod(R2, running.clone()),
        job(R3),
        pod(R3, running),
    ]);
    let fix = run.fix(ID);
    assert!(
        fix.contains("cannot reach\nthe API at http://localhost:4200/graphql")
            || fix.contains("the API at http://localhost:4200/graphql"),
        "{fix}"
    );
    assert!(
        fix.contains("http://prefect-apollo.default:4200/graphql"),
        "{fix}"
    );

    // Unschedulable, a missing secret, a failed pod, a Job without a pod.
    let pending = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]});
    let run = s.with(vec![job(R1), pod(R1, pending)]);
    assert!(
        run.message(ID).contains(
            "cannot be scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        ),
        "{}",
        run.message(ID)
    );
    assert!(run.fix(ID).contains("memory_request"), "{}", run.fix(ID));

    let run = s.with(vec![
        job(R1),
        pod(
            R1,
            waiting(
                "CreateContainerConfigError",
                "secret \"flow-creds\" not found",
            ),
        ),
    ]);
    assert!(run.message(ID).contains("cannot start its container: CreateContainerConfigError: secret \"flow-creds\" not found"), "{}", run.message(ID));

    let failed = json!({"phase": "Failed", "containerStatuses": [{"name": "flow", "image": "x", "imageID": "", "ready": false,
        "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]});
    let run = s.with(vec![job(R1), pod(R1, failed)]);
    assert!(
        run.message(ID)
            .contains("exited with code 1 (Error) before the flow reported Running"),
        "{}",
        run.message(ID)
    );
    assert!(
        run.fix(ID)
            .contains("kubectl logs -n default prefect-job-11111111-x7k2p"),
        "{}",
        run.fix(ID)
    );

    let run = s.with(vec![job(R1), job(R2), job(R3)]);
    assert!(
        run.message(ID)
            .contains("Job prefect-job-11111111 has no pod"),
        "{}",
        run.message(ID)
    );
}

#[test]
fn refused_reads_still_report_the_stuck_runs() {
    let s = Setup::new();
    flow_run(&s.pg, R1, "etl", "Submitted", "40 minutes");
    let mut c = s.cluster(vec![job(R1), pod(R1, json!({"phase": "Running"}))]);
    c.forbid("list", "jobs");
    let run = s.on(&c.start());
    assert_eq!(run.status(ID), "fail", "{}", run.text);
    assert!(
        run.message(ID).contains(
            "their Jobs could not be read: cannot list jobs and pods in namespace default"
        ),
        "{}",
        run.message(ID)
    );
}
