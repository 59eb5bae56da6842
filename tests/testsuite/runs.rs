//! `runs.late` against the real PostgreSQL, with `flow_run` and `agent` tables shaped like Prefect
//! Server's (services/postgres/alembic): one scenario per cause, and bad data.

use crate::support;

use support::{
    check,
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
};

fn late(pg: &PgServer, db: &str) -> support::Run {
    let url = pg.url(APP_USER, CANARY, db);
    check(&["--database-url", &url, "--only", "runs.late"], &[CANARY])
}

/// Inserts `n` runs in `state` scheduled `ago` (an SQL interval) with `labels` (JSON text).
fn runs(pg: &PgServer, db: &str, n: u32, state: &str, ago: &str, labels: &str) {
    pg.sql(
        db,
        &format!(
            "INSERT INTO flow_run (tenant_id, state, scheduled_start_time, labels) \
             SELECT (SELECT id FROM tenant LIMIT 1), '{state}', now() - interval '{ago}', '{labels}'::jsonb \
             FROM generate_series(1, {n});"
        ),
    );
}

fn agent(pg: &PgServer, db: &str, name: &str, labels: &str, polled_ago: &str) {
    pg.sql(
        db,
        &format!(
            "INSERT INTO agent (tenant_id, name, type, core_version, labels, last_queried) \
             VALUES ((SELECT id FROM tenant LIMIT 1), '{name}', 'KubernetesAgent', '1.4.0', '{labels}'::jsonb, \
                     now() - interval '{polled_ago}');"
        ),
    );
}

#[test]
fn late_runs_and_why() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    // Nothing late: runs in the future, running, or just due.
    runs(&pg, "prefect", 3, "Scheduled", "-1 hour", "[]");
    runs(&pg, "prefect", 2, "Running", "1 hour", "[]");
    runs(&pg, "prefect", 1, "Scheduled", "10 seconds", "[]");
    let run = late(&pg, "prefect");
    assert_eq!(run.status("runs.late"), "pass", "{}", run.text);

    // Late, and no agent at all.
    runs(&pg, "prefect", 4, "Scheduled", "30 minutes", r#"["k8s"]"#);
    let run = late(&pg, "prefect");
    assert_eq!(run.status("runs.late"), "fail", "{}", run.text);
    let msg = run.message("runs.late");
    assert!(
        msg.starts_with("4 flow runs are late (the oldest by 30m)"),
        "{msg}"
    );
    assert!(msg.contains("no agent has ever registered"), "{msg}");
    assert!(
        run.fix("runs.late").contains("--set agent.enabled=true"),
        "{}",
        run.fix("runs.late")
    );

    // An agent that stopped polling ten minutes ago.
    agent(&pg, "prefect", "old-agent", r#"["k8s"]"#, "10 minutes");
    let msg = late(&pg, "prefect").message("runs.late").to_string();
    assert!(
        msg.contains("the last poll was by agent \"old-agent\", 10m ago"),
        "{msg}"
    );

    // A live agent without the runs' labels: name what it lacks, and the --set that adds it.
    agent(&pg, "prefect", "live-agent", r#"["dev"]"#, "5 seconds");
    runs(
        &pg,
        "prefect",
        2,
        "Scheduled",
        "5 minutes",
        r#"["k8s", "gpu"]"#,
    );
    let run = late(&pg, "prefect");
    assert_eq!(run.status("runs.late"), "fail");
    let msg = run.message("runs.late");
    assert!(
        msg.contains("4 of them carry [k8s] and no live agent has all of those labels"),
        "{msg}"
    );
    assert!(
        msg.contains("\"live-agent\" with [dev], lacks [k8s]"),
        "{msg}"
    );
    assert!(
        msg.contains("1 more label set is not served either"),
        "{msg}"
    );
    let fix = run.fix("runs.late");
    assert!(fix.contains("no live agent has: k8s."), "{fix}");
    assert!(
        fix.contains("--set 'agent.prefectLabels={dev,k8s}'"),
        "{fix}"
    );

    // A live agent that covers every label set: the cause is elsewhere (its log).
    agent(
        &pg,
        "prefect",
        "wide-agent",
        r#"["dev", "gpu", "k8s"]"#,
        "1 second",
    );
    let run = late(&pg, "prefect");
    assert_eq!(run.status("runs.late"), "fail");
    assert!(
        run.message("runs.late")
            .contains("yet 2 live agents poll and cover their labels"),
        "{}",
        run.message("runs.late")
    );
    assert!(
        run.fix("runs.late").contains("deploy/<release>-agent"),
        "{}",
        run.fix("runs.late")
    );
}

#[test]
fn a_backlog_and_bad_data() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    agent(&pg, "prefect", "live", "[]", "1 second");
    runs(&pg, "prefect", 800, "Scheduled", "2 hours", "[]");
    let run = late(&pg, "prefect");
    assert_eq!(run.status("runs.late"), "fail");
    assert!(
        run.message("runs.late").contains("800 flow runs are late")
            && run.message("runs.late").contains("more than 750")
    );
    assert!(
        run.fix("runs.late")
            .contains("UPDATE flow_run SET state = 'Cancelled'")
    );

    // Labels that are not a JSON array: a clear error for this check, and the run goes on.
    seed(&pg, &Seed::healthy("odd"));
    runs(&pg, "odd", 1, "Scheduled", "1 hour", r#"{"not": "a list"}"#);
    let url = pg.url(APP_USER, CANARY, "odd");
    let run = check(
        &[
            "--database-url",
            &url,
            "--only",
            "db.*",
            "--only",
            "runs.late",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("runs.late"), "error", "{}", run.text);
    assert!(
        run.message("runs.late")
            .contains("flow_run.labels holds {\"not\": \"a list\"}, not a JSON array of strings")
    );
    assert_eq!(run.status("db.timezone"), "pass");

    // No Prefect schema: skipped, naming db.schema.
    seed(
        &pg,
        &Seed {
            schema: false,
            tenant: false,
            ..Seed::healthy("bare")
        },
    );
    let url = pg.url(APP_USER, CANARY, "bare");
    let run = check(&["--database-url", &url, "--only", "runs.late"], &[CANARY]);
    assert_eq!(run.status("runs.late"), "skip");
}

/// A Hasura timestamp `mins` minutes ago (negative: ahead).
fn ago(mins: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(mins);
    t.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// With only the API given, the same story is read through Apollo's Hasura fields, and the report
/// says so.
#[test]
fn late_runs_through_the_api() {
    use serde_json::json;
    use support::http::Apollo;
    let through = |apollo: Apollo| {
        let server = apollo.start();
        let api = format!("{}/graphql", server.url);
        let run = check(&["--api-url", &api, "--only", "runs.late"], &[]);
        (run, api)
    };
    let run_at = |state: &str, mins: i64, labels: serde_json::Value| json!({"state": state, "scheduled_start_time": ago(mins), "labels": labels});
    // Nothing late: a future run, a running one, one just due.
    let (run, api) = through(Apollo {
        flow_runs: vec![
            run_at("Scheduled", -60, json!([])),
            run_at("Running", 60, json!([])),
            run_at("Scheduled", 0, json!([])),
        ],
        ..Apollo::default()
    });
    assert_eq!(run.status("runs.late"), "pass", "{}", run.text);
    assert!(
        run.message("runs.late")
            .contains(&format!("read through the API at {api}")),
        "{}",
        run.message("runs.late")
    );
    assert_eq!(run.result("runs.late")["evidence"]["path"], "api");

    // Late, and the only agent stopped polling ten minutes ago.
    let late: Vec<_> = (0..4)
        .map(|_| run_at("Scheduled", 30, json!(["k8s"])))
        .collect();
    let (run, _) = through(Apollo {
        flow_runs: late.clone(),
        agents: vec![json!({"name": "old-agent", "labels": ["k8s"], "last_queried": ago(10)})],
        ..Apollo::default()
    });
    assert_eq!(run.status("runs.late"), "fail", "{}", run.text);
    let m = run.message("runs.late");
    assert!(
        m.starts_with("4 flow runs are late (the oldest by 30m"),
        "{m}"
    );
    assert!(m.contains("read through the API at"), "{m}");
    assert!(
        m.contains("the last poll was by agent \"old-agent\", 10m"),
        "{m}"
    );
    assert!(run.fix("runs.late").contains("--set agent.enabled=true"));

    // A live agent without the runs' labels.
    let (run, _) = through(Apollo {
        flow_runs: late,
        agents: vec![json!({"name": "live-agent", "labels": ["dev"], "last_queried": ago(0)})],
        ..Apollo::default()
    });
    assert!(
        run.message("runs.late")
            .contains("4 of them carry [k8s] and no live agent has all of those labels"),
        "{}",
        run.message("runs.late")
    );
    assert!(
        run.fix("runs.late")
            .contains("--set 'agent.prefectLabels={dev,k8s}'")
    );

    // Labels that are not a list: this check's error, as from SQL.
    let (run, _) = through(Apollo {
        flow_runs: vec![run_at("Scheduled", 30, json!({"not": "a list"}))],
        ..Apollo::default()
    });
    assert_eq!(run.status("runs.late"), "error", "{}", run.text);

    // A database that cannot be reached and no API: the database's reason.
    let run = check(
        &[
            "--database-url",
            "postgres://u@127.0.0.1:9/x",
            "--only",
            "runs.late",
        ],
        &[],
    );
    assert_eq!(run.status("runs.late"), "skip", "{}", run.text);
    assert!(
        run.message("runs.late").contains("no database session"),
        "{}",
        run.message("runs.late")
    );
}

/// A partial database: a missing table is db.schema's finding (which tables), and the checks that
/// read it skip behind it, stating no cause they did not observe; a Hasura catalog the user may not
/// read is hasura.schema-owner's, and versions.skew skips behind it instead of a raw error.
#[test]
fn a_partial_database_is_db_schemas_finding() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    runs(&pg, "prefect", 3, "Scheduled", "10 minutes", "[]");
    let url = pg.url(APP_USER, CANARY, "prefect");
    let only = |ids: &[&str]| -> support::Run {
        let mut a = vec!["--database-url", url.as_str()];
        for id in ids {
            a.extend(["--only", id]);
        }
        check(&a, &[CANARY])
    };
    pg.sql("prefect", "DROP TABLE public.agent CASCADE;");
    let run = only(&["db.schema", "runs.*"]);
    assert_eq!(run.status("db.schema"), "fail", "{}", run.text);
    assert!(
        run.message("db.schema").contains("not public.agent"),
        "{}",
        run.message("db.schema")
    );
    assert_eq!(run.status("runs.late"), "skip", "{}", run.text);
    assert!(
        run.message("runs.late").contains("no agent table"),
        "{}",
        run.message("runs.late")
    );
    assert!(!run.text.contains("no agent has polled"), "{}", run.text);

    pg.sql("prefect", "DROP TABLE public.flow_run;");
    let run = only(&["db.schema", "runs.*"]);
    assert!(
        run.message("db.schema")
            .contains("not public.agent, public.flow_run"),
        "{}",
        run.message("db.schema")
    );
    for id in ["runs.late", "runs.stuck-submitted"] {
        assert_eq!(run.status(id), "skip", "{id}: {}", run.text);
        assert!(
            run.message(id).contains("db.schema"),
            "{id}: {}",
            run.message(id)
        );
    }
    assert!(
        !run.text.contains("42P01 ") || run.text.contains("db.schema"),
        "{}",
        run.text
    );

    // hdb_catalog that the Prefect user may not use.
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    pg.sql(
        "prefect",
        "REVOKE ALL ON SCHEMA hdb_catalog FROM PUBLIC, prefect;",
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let run = check(
        &[
            "--database-url",
            &url,
            "--only",
            "hasura.*",
            "--only",
            "versions.skew",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("hasura.schema-owner"), "fail", "{}", run.text);
    assert_eq!(run.status("versions.skew"), "skip", "{}", run.text);
    assert!(
        run.message("versions.skew").contains("hasura.schema-owner"),
        "{}",
        run.message("versions.skew")
    );
}
