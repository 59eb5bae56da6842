//! `fix` when the world moves: a lock held elsewhere, the database going away mid-plan, two fixes at
//! once. (Fixes through a release's port-forwards are on the real control plane:
//! `control_plane::forwards::fix_apply_goes_through_the_real_port_forwards_and_the_recheck_passes`.)

use super::*;

#[test]
fn a_lock_held_elsewhere_costs_one_deadline_and_changes_nothing() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    // Another session (a Hasura migrating, say) has changed the function and not committed: the
    // fix's ALTER waits for that row, and no longer than the deadline.
    let mut locker = hold_the_function(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let admin = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/?sslmode=disable",
        pg.port
    );
    let (code, json) = fix_json(&[
        "--database-url",
        &url,
        "--only",
        "hasura.*",
        "--admin-url",
        &admin,
        "--timeout",
        "1s",
        "--apply",
        "--yes",
    ]);
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(code, 1);
    // The schema's fix is its own transaction: it went through.
    assert_eq!(applied(&json, "hasura.schema-owner")["result"], "fixed");
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["state"], "rolled_back", "{a:#}");
    assert!(
        a["error"].as_str().unwrap().contains("lock timeout"),
        "{a:#}"
    );
    assert!(
        a["hint"]
            .as_str()
            .unwrap()
            .contains("another session holds")
    );
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'insert_event_log'"
        ),
        "postgres",
        "the locker's change was rolled back when it was killed, and the fix's never happened"
    );
}

/// Starts a session that changes hdb_catalog.insert_event_log and does not commit for a minute;
/// returns once it holds the row.
fn hold_the_function(pg: &PgServer) -> std::process::Child {
    let locker = std::process::Command::new(support::pg::bin_dir().join("psql"))
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", "prefect", "-c"])
        .arg(
            "BEGIN; ALTER FUNCTION hdb_catalog.insert_event_log(text, text, text, text, json) \
             OWNER TO cloudsqladmin; SELECT pg_sleep(60);",
        )
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("PGAPPNAME", "locker")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start psql");
    wait_for(
        pg,
        "application_name = 'locker' AND query LIKE '%pg_sleep%' AND state = 'active'",
    );
    locker
}

/// Waits (30 s at the most) until a session matching `filter` is in pg_stat_activity.
fn wait_for(pg: &PgServer, filter: &str) {
    let started = std::time::Instant::now();
    while pg.sql_value(
        "postgres",
        &format!("SELECT count(*) > 0 FROM pg_stat_activity WHERE {filter}"),
    ) != "t"
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "no session where {filter}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_database_going_away_mid_plan_is_a_clear_result() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            hdb_function_owner: Some("postgres".into()),
            hdb_schema_owner: Some("cloudsqladmin".into()),
            ..Seed::healthy("prefect")
        },
    );
    let mut locker = hold_the_function(&pg);
    let url = pg.url(APP_USER, CANARY, "prefect");
    let admin = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/?sslmode=disable",
        pg.port
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("fix.jsonl");
    let run = {
        let journal = journal.display().to_string();
        std::thread::spawn(move || {
            fix_json(&[
                "--database-url",
                &url,
                "--only",
                "hasura.*",
                "--admin-url",
                &admin,
                "--timeout",
                "20s",
                "--apply",
                "--yes",
                "--journal",
                &journal,
            ])
        })
    };
    // The fix's ALTER FUNCTION waits for the locker; then its connection is cut.
    wait_for(
        &pg,
        "application_name = 'prefect-doctor' AND wait_event_type = 'Lock'",
    );
    pg.sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'prefect-doctor' AND wait_event_type = 'Lock';",
    );
    let (code, json) = run.join().expect("the fix run");
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(code, 1);
    assert_eq!(applied(&json, "hasura.schema-owner")["result"], "fixed");
    let a = applied(&json, "hasura.function-owner");
    assert_eq!(a["result"], "not applied", "{a:#}");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("terminating connection"),
        "{a:#}"
    );
    assert_eq!(
        pg.sql_value(
            "prefect",
            "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'insert_event_log'"
        ),
        "postgres"
    );
    let journal = std::fs::read_to_string(&journal).unwrap();
    assert!(journal.contains("\"result\":\"failed\""), "{journal}");
}

/// Two `fix --apply` on one database at once: whatever the race gives (one waits for the other,
/// PostgreSQL's "tuple concurrently updated" rolls one back, or one finds nothing left to change), a
/// run whose own change did not take never says `fixed`; when the re-check passes anyway it says
/// `fixed elsewhere`, and the state ends good.
#[test]
fn two_fixes_at_once_never_claim_what_the_other_did() {
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            db_timezone: Some("Europe/Paris".into()),
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        pg.sql(
            "postgres",
            "ALTER DATABASE prefect SET timezone TO 'Europe/Paris';",
        );
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    fix_json(&[
                        "--database-url",
                        &url,
                        "--only",
                        "db.timezone",
                        "--apply",
                        "--yes",
                    ])
                })
            })
            .collect();
        for r in runs {
            let (code, json) = r.join().unwrap();
            for o in json["applied"].as_array().unwrap() {
                let took = matches!(o["state"].as_str(), Some("committed" | "unknown"));
                let result = o["result"].as_str().unwrap().to_string();
                if !took {
                    assert_ne!(result, "fixed", "{o}");
                }
                if result == "fixed elsewhere" {
                    assert_eq!(o["recheck"], "pass", "{o}");
                    assert!(
                        o["hint"].as_str().unwrap().contains("another session"),
                        "{o}"
                    );
                }
                outcomes.push(result);
            }
            // The other run may also finish before this one plans: then there is nothing to change,
            // said as such (a blocked entry, exit 1), and nothing is claimed.
            let nothing_left = json["plan"].as_array().unwrap().iter().all(|e| {
                e["action"] == "blocked"
                    && e["blocked"]
                        .as_str()
                        .unwrap_or("")
                        .contains("nothing to change")
            });
            assert!(code == 0 || (code == 1 && nothing_left), "{json}");
        }
        assert_eq!(state(&pg).1, "TimeZone=UTC");
    }
    eprintln!("outcomes: {outcomes:?}");
}
