//! `runs.stuck-submitted` without a cluster: flow runs in `Submitted` on the real PostgreSQL (tables
//! shaped like Prefect Server's), told from the database alone. What became of them in a cluster (the
//! Jobs and pods the Kubernetes agent labels `prefect.io/flow_run_id`) is judged on the real control
//! plane (`control_plane/runs.rs`).

use crate::support;

use support::{
    check,
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

struct Setup {
    pg: PgServer,
}

impl Setup {
    fn new() -> Setup {
        let pg = PgServer::start();
        seed(&pg, &Seed::healthy("prefect"));
        Setup { pg }
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
