//! User checks end to end on the built binary: the examples in `examples/checks/` against the real
//! PostgreSQL and preflight's values, the read-only guarantees (a write attempt leaves the database as
//! it was, proven by a count and the server's statement log), where checks come from (--checks, the
//! config file, ./.prefect-doctor/checks), and every bad input refused before anything runs.

use crate::support;

use std::{path::Path, time::Duration};

use support::{
    check, doctor,
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once, run_sub,
};

fn examples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/checks")
        .display()
        .to_string()
}

fn late_runs(pg: &PgServer, n: u32) {
    pg.sql(
        "prefect",
        &format!(
            "INSERT INTO flow_run (tenant_id, state, scheduled_start_time, labels) \
             SELECT (SELECT id FROM tenant LIMIT 1), 'Scheduled', now() - interval '1 hour', '[]' \
             FROM generate_series(1, {n});"
        ),
    );
}

#[test]
fn site_checks_run_beside_the_built_in_ones() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let ex = examples();
    let run = check(
        &[
            "--database-url",
            &url,
            "--checks",
            &ex,
            "--only",
            "site.*",
            "--only",
            "db.schema",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("site.late-runs"), "pass", "{}", run.text);
    assert_eq!(run.status("site.table-budget"), "pass", "{}", run.text);
    // No live agent at all: the agent-labels check fails with its own words and fix.
    assert_eq!(run.status("site.agent-labels"), "fail", "{}", run.text);
    assert_eq!(
        run.message("site.agent-labels"),
        "0 live agent(s), none with the k8s label"
    );
    assert!(
        run.fix("site.agent-labels")
            .contains("--set 'agent.prefectLabels={k8s}'"),
        "{}",
        run.fix("site.agent-labels")
    );
    let r = run.result("site.late-runs");
    assert_eq!(r["source"], format!("{ex}/late-runs.toml"));
    assert_eq!(r["area"], "site");
    assert_eq!(run.result("db.schema")["source"], "builtin");
    assert!(run.text.contains("\nsite\n"), "{}", run.text);

    late_runs(&pg, 150);
    pg.sql(
        "prefect",
        "INSERT INTO agent (tenant_id, name, labels, last_queried) \
         VALUES ((SELECT id FROM tenant LIMIT 1), 'k', '[\"k8s\", \"gpu\"]', now());",
    );
    let run = check(
        &["--database-url", &url, "--checks", &ex, "--only", "site.*"],
        &[CANARY],
    );
    assert_eq!(run.status("site.late-runs"), "warn", "{}", run.text);
    assert_eq!(run.message("site.late-runs"), "150 flow runs are late");
    assert!(
        run.fix("site.late-runs")
            .contains("--set agent.enabled=true")
    );
    assert_eq!(run.status("site.agent-labels"), "pass", "{}", run.text);
    assert_eq!(
        run.result("site.late-runs")["evidence"]["rows"],
        serde_json::json!([{"late": 150}])
    );
}

/// A key `expect` names that the answer lacks is said with the keys the answer has; `explain` of a
/// check that says no symptom, cause or docs shows no empty heading for them.
#[test]
fn a_missing_key_names_the_columns_and_explain_leaves_out_what_is_empty() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("terse.toml");
    std::fs::write(
        &file,
        "id = \"site.terse\"\ntitle = \"Tenants are counted\"\n[sql]\n\
         query = \"SELECT count(*) AS tenants, 1 AS one FROM tenant\"\nexpect = \"rows[0].count > 0\"\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let run = check(
        &[
            "--database-url",
            &url,
            "--checks",
            &file,
            "--only",
            "site.*",
        ],
        &[CANARY],
    );
    assert_eq!(run.status("site.terse"), "error", "{}", run.text);
    let msg = run.message("site.terse");
    assert!(
        msg.contains("No such key")
            && msg.contains("each row has the columns \"tenants\", \"one\""),
        "{msg}"
    );
    let text = support::stdout_of_success(&[
        "explain",
        "site.terse",
        "--checks",
        &file,
        "--color",
        "never",
    ]);
    assert!(text.contains("Tenants are counted"), "{text}");
    for empty in ["Symptom", "Cause", "\nDocs", "docs:"] {
        assert!(!text.contains(empty), "{empty:?} shown empty:\n{text}");
    }
}

#[test]
fn preflight_values_checks_and_where_checks_come_from() {
    let ex = examples();
    let run = run_sub("preflight", &["--checks", &ex, "--only", "site.*"], &[]);
    assert_eq!(run.status("site.ingress-tls"), "pass", "{}", run.text);
    let run = run_sub(
        "preflight",
        &[
            "--checks",
            &ex,
            "--only",
            "site.*",
            "--set",
            "ui.ingress.enabled=true",
        ],
        &[],
    );
    assert_eq!(run.status("site.ingress-tls"), "fail", "{}", run.text);
    assert_eq!(
        run.message("site.ingress-tls"),
        "ui.ingress is enabled with 0 TLS entries"
    );
    // SARIF and JUnit carry it like any check (run_sub ran both); list and explain name the file.
    let (code, out, _, _) = run_once(&["list", "--checks", &ex]);
    assert_eq!(code, 0);
    assert!(
        out.contains("site.ingress-tls") && out.contains("(from "),
        "{out}"
    );
    let (code, out, _, _) = run_once(&["explain", "site.late-runs", "--checks", &ex]);
    assert_eq!(code, 0);
    assert!(out.contains("late-runs.toml"), "{out}");

    // The config file's `checks` (relative to it) and [severity] for a user check; the default folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("team")).unwrap();
    std::fs::copy(
        Path::new(&ex).join("ingress-tls.toml"),
        dir.path().join("team/ingress-tls.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".prefect-doctor.toml"),
        "checks = [\"team\"]\n[severity]\n\"site.ingress-tls\" = \"warning\"\n",
    )
    .unwrap();
    let out = doctor()
        .current_dir(dir.path())
        .args([
            "preflight",
            "-o",
            "json",
            "--only",
            "site.*",
            "--set",
            "ui.ingress.enabled=true",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        support::result_of(&json, "site.ingress-tls")["status"],
        "warn",
        "{json}"
    );
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join(".prefect-doctor/checks")).unwrap();
    std::fs::copy(
        Path::new(&ex).join("ingress-tls.toml"),
        other.path().join(".prefect-doctor/checks/tls.toml"),
    )
    .unwrap();
    let out = doctor()
        .current_dir(other.path())
        .args(["preflight", "-o", "json", "--only", "site.*"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        support::result_of(&json, "site.ingress-tls")["source"],
        ".prefect-doctor/checks/tls.toml"
    );
}

/// `[graphql]` asks the in-test Apollo, `[http]` GETs the in-test UI; `data`, `errors`, `status`,
/// `headers`, `json` are what those servers answered.
#[test]
fn graphql_and_http_checks_read_the_api_and_the_ui() {
    use support::http::{Apollo, ui};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tenant.toml"),
        "id = \"site.tenant\"\ntitle = \"A tenant exists\"\n[graphql]\n\
         query = \"query { tenant(limit: 1) { id slug } }\"\n\
         expect = \"size(errors) == 0 && size(data.tenant) > 0\"\n\
         message = \"'no tenant: ' + string(size(errors)) + ' errors'\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("settings.toml"),
        "id = \"site.settings\"\ntitle = \"The UI names an https API\"\n[http]\ntarget = \"ui\"\n\
         path = \"/settings.json\"\nexpect = \"status == 200 && json.server_url.startsWith('https://')\"\n\
         message = \"'the UI gives the browser ' + json.server_url\"\n",
    )
    .unwrap();
    let checks = dir.path().display().to_string();
    let apollo = Apollo::default().start();
    let api = format!("{}/graphql", apollo.url);
    let ui_server = ui(&api);
    let run = check(
        &[
            "--api-url",
            &api,
            "--ui-url",
            &ui_server.url,
            "--checks",
            &checks,
            "--only",
            "site.*",
        ],
        &[],
    );
    assert_eq!(run.status("site.tenant"), "pass", "{}", run.text);
    assert_eq!(run.status("site.settings"), "fail", "{}", run.text);
    assert_eq!(
        run.message("site.settings"),
        format!("the UI gives the browser {api}")
    );
    let empty = Apollo {
        tenants: vec![],
        ..Apollo::default()
    }
    .start();
    let api = format!("{}/graphql", empty.url);
    let run = check(
        &[
            "--api-url",
            &api,
            "--checks",
            &checks,
            "--only",
            "site.tenant",
        ],
        &[],
    );
    assert_eq!(run.status("site.tenant"), "fail", "{}", run.text);
    assert_eq!(run.message("site.tenant"), "no tenant: 0 errors");
    // Only GETs and GraphQL queries reached the servers.
    for hit in empty.hits() {
        assert!(
            hit.method == "GET"
                || hit.method == "OPTIONS"
                || hit.query().is_some_and(|q| !q.contains("mutation")),
            "{hit:?}"
        );
    }
}

/// A `[kube]` check may not read Secrets: refused at load. (What `[kube]` checks read is judged on
/// the real API server: `control_plane::user_checks`.)
#[test]
fn kube_checks_may_not_read_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("s.toml");
    std::fs::write(
        &bad,
        "id = \"site.s\"\ntitle = \"t\"\n[kube]\nresource = \"secrets\"\nexpect = \"true\"\n",
    )
    .unwrap();
    let (code, _, err, _) = run_once(&["lint-checks", &bad.display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("s.toml:4:12: user checks may not read Secrets"),
        "{err}"
    );
}

mod bounds;
