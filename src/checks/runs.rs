//! Flow runs, as Prefect Server's own tables show them (read-only SQL).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use serde_json::json;

use super::{
    Cx, Outcome, db_session, query_failed,
    runs_model::{Agent, Late, labels},
};

/// Beyond this many late runs the scheduler and agents fall behind (a known limit of Prefect Server).
const BACKLOG: i64 = 750;
/// Label sets and agents read at most.
const MAX_ROWS: i64 = 50;
/// Late runs: in `Scheduled` more than a minute past their start time (the database's clock).
const LATE: &str = "state = 'Scheduled' AND scheduled_start_time < now() - interval '1 minute'";

fn shown(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "no labels".to_string()
    } else {
        format!("[{}]", set.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// Late runs: from the database when one is given and has Prefect's tables, else through the API
/// (Hasura's `flow_run` and `agent` fields, as the UI reads them); the report says which.
pub async fn runs_late(cx: Arc<Cx>) -> Outcome {
    let db = if cx.pg.is_ready() {
        Some(from_sql(&cx).await)
    } else {
        None
    };
    match db {
        Some(Ok(late)) => judge(late),
        Some(Err(o)) if !cx.api.is_ready() => o,
        Some(Err(db_outcome)) => match super::runs_api::from_api(&cx).await {
            Ok(mut late) => {
                late.whence = format!(
                    "{}; the database gave no answer: {}",
                    late.whence, db_outcome.message
                );
                judge(late)
            }
            Err(_) => db_outcome,
        },
        None if !cx.api.is_ready() => Outcome::skip(
            "no database or API given: pass --database-url (or --api-url, to read the runs through the API)",
        ),
        None => match super::runs_api::from_api(&cx).await {
            Ok(late) => judge(late),
            Err(o) => o,
        },
    }
}

async fn from_sql(cx: &Cx) -> Result<Late, Outcome> {
    let s = db_session(cx).await?;
    let tables = match s
        .query(
            "SELECT pg_catalog.to_regclass('public.flow_run') IS NOT NULL, \
                    pg_catalog.to_regclass('public.agent') IS NOT NULL",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(query_failed("look for the flow_run and agent tables", e)),
    };
    let (has_runs, has_agents) = tables
        .first()
        .map(|r| {
            (
                r.try_get::<_, bool>(0).unwrap_or(false),
                r.try_get::<_, bool>(1).unwrap_or(false),
            )
        })
        .unwrap_or((false, false));
    if !has_runs {
        return Err(Outcome::skip(format!(
            "database {:?} has no flow_run table: Prefect Server's schema is not there (see db.schema)",
            s.database
        )));
    }
    if !has_agents {
        // Which agents poll is read from public.agent: without it, no cause can be named.
        return Err(Outcome::skip(format!(
            "database {:?} has no agent table, so which agents poll the API cannot be read \
             (see db.schema)",
            s.database
        )));
    }
    let late = match s
        .query(
            &format!(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(scheduled_start_time))::bigint, 0) \
                 FROM public.flow_run WHERE {LATE}"
            ),
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(query_failed("count the late flow runs", e)),
    };
    let (count, oldest) = late
        .first()
        .map(|r| {
            (
                r.try_get::<_, i64>(0).unwrap_or(0),
                r.try_get::<_, i64>(1).unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let whence = format!("read from database {:?}", s.database);
    if count == 0 {
        return Ok(Late {
            count,
            oldest,
            label_sets: Vec::new(),
            agents: Vec::new(),
            has_agents,
            path: "sql",
            whence,
        });
    }
    let sets = match s
        .query(
            &format!(
                "SELECT labels::text, count(*) FROM public.flow_run WHERE {LATE} \
                 GROUP BY labels ORDER BY count(*) DESC LIMIT {MAX_ROWS}"
            ),
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(query_failed("group the late flow runs by labels", e)),
    };
    let mut label_sets: Vec<(BTreeSet<String>, i64)> = Vec::new();
    for r in &sets {
        let text: String = r.try_get(0).unwrap_or_default();
        match labels(&text, "flow_run.labels") {
            Ok(l) => label_sets.push((l, r.try_get(1).unwrap_or(0))),
            Err(why) => return Err(Outcome::error(why)),
        }
    }
    let mut agents: Vec<Agent> = Vec::new();
    if has_agents {
        let rows = match s
            .query(
                &format!(
                    "SELECT coalesce(name, ''), labels::text, \
                            coalesce(last_queried > now() - interval '2 minutes', false), \
                            extract(epoch FROM now() - last_queried)::bigint \
                     FROM public.agent ORDER BY last_queried DESC NULLS LAST LIMIT {MAX_ROWS}"
                ),
                &[],
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(query_failed("read the agents", e)),
        };
        for r in &rows {
            let text: String = r.try_get(1).unwrap_or_default();
            let labels = match labels(&text, "agent.labels") {
                Ok(l) => l,
                Err(why) => return Err(Outcome::error(why)),
            };
            agents.push(Agent {
                name: r.try_get(0).unwrap_or_default(),
                labels,
                live: r.try_get(2).unwrap_or(false),
                idle: r.try_get(3).ok(),
            });
        }
    }
    Ok(Late {
        count,
        oldest,
        label_sets,
        agents,
        has_agents,
        path: "sql",
        whence,
    })
}

/// Why the late runs are late, from what the server's tables show.
fn judge(late: Late) -> Outcome {
    let Late {
        count,
        oldest,
        label_sets,
        agents,
        has_agents,
        path,
        whence,
    } = late;
    if count == 0 {
        return Outcome::pass(format!(
            "no flow run in Scheduled is past its start time ({whence})"
        ))
        .with("late", 0)
        .with("path", path);
    }
    let age = crate::untrusted::duration(Duration::from_secs(u64::try_from(oldest).unwrap_or(0)));
    let evidence = |o: Outcome| {
        o.with("late", count)
            .with("path", path)
            .with("source", whence.as_str())
            .with("oldest_seconds", oldest)
            .with(
                "label_sets",
                label_sets
                    .iter()
                    .map(|(l, n)| json!({"labels": l, "runs": n}))
                    .collect::<Vec<_>>(),
            )
            .with(
                "agents",
                agents
                    .iter()
                    .map(|a| json!({"name": a.name, "labels": a.labels, "live": a.live, "idle_seconds": a.idle}))
                    .collect::<Vec<_>>(),
            )
    };
    let through = if path == "api" {
        format!(", {whence}")
    } else {
        String::new()
    };
    let head = format!(
        "{count} flow run{} late (the oldest by {age}{through})",
        if count == 1 { " is" } else { "s are" }
    );
    if count > BACKLOG {
        return evidence(
            Outcome::finding(format!(
                "{head}: more than {BACKLOG}, a backlog the scheduler and agents fall behind on"
            ))
            .fix("backlog"),
        );
    }
    let live: Vec<&Agent> = agents.iter().filter(|a| a.live).collect();
    if live.is_empty() {
        let last = agents
            .iter()
            .find(|a| a.idle.is_some())
            .map(|a| {
                format!(
                    "; the last poll was by agent {:?}, {} ago",
                    a.name,
                    crate::untrusted::duration(Duration::from_secs(
                        u64::try_from(a.idle.unwrap_or(0)).unwrap_or(0)
                    ))
                )
            })
            .unwrap_or_else(|| {
                if has_agents {
                    "; no agent has ever registered with this server".to_string()
                } else {
                    "; this server's schema has no agent table".to_string()
                }
            });
        return evidence(
            Outcome::finding(format!(
                "{head} and no agent has polled the API in the last 2 minutes{last}"
            ))
            .fix("no_agent"),
        );
    }
    // A run is served by a live agent whose labels include all of the run's.
    let unserved: Vec<&(BTreeSet<String>, i64)> = label_sets
        .iter()
        .filter(|(l, _)| !live.iter().any(|a| l.is_subset(&a.labels)))
        .collect();
    let Some((set, runs)) = unserved.first() else {
        return evidence(Outcome::finding(format!(
            "{head}, yet {} live agent{} poll{} and cover{} their labels",
            live.len(),
            if live.len() == 1 { "" } else { "s" },
            if live.len() == 1 { "s" } else { "" },
            if live.len() == 1 { "s" } else { "" },
        )));
    };
    // The live agent that has most of the labels, and what it lacks.
    let closest = live
        .iter()
        .max_by_key(|a| a.labels.intersection(set).count())
        .copied();
    let (missing, wanted, closest_text) = match closest {
        Some(a) => {
            let missing: BTreeSet<String> = set.difference(&a.labels).cloned().collect();
            let wanted: BTreeSet<String> = a.labels.union(set).cloned().collect();
            (
                missing.clone(),
                wanted,
                format!(
                    "; the closest live agent, {:?} with {}, lacks {}",
                    a.name,
                    shown(&a.labels),
                    shown(&missing)
                ),
            )
        }
        None => (set.clone(), set.clone(), String::new()),
    };
    let other_sets = unserved.len() - 1;
    evidence(
        Outcome::finding(format!(
            "{head}; {runs} of them carry {} and no live agent has all of those labels{closest_text}{}",
            shown(set),
            if other_sets == 1 {
                " (1 more label set is not served either)".to_string()
            } else if other_sets > 1 {
                format!(" ({other_sets} more label sets are not served either)")
            } else {
                String::new()
            }
        ))
        .fix("labels")
        .var(
            "unserved_labels",
            missing.iter().cloned().collect::<Vec<_>>().join(", "),
        )
        .var(
            "agent_labels",
            wanted.iter().cloned().collect::<Vec<_>>().join(","),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_must_be_an_array_of_strings() {
        assert_eq!(
            labels(r#"["k8s","gpu"]"#, "x").ok(),
            Some(BTreeSet::from(["gpu".to_string(), "k8s".to_string()]))
        );
        for bad in [r#"{"a":1}"#, r#"[1]"#, "not json", "null"] {
            let why = labels(bad, "flow_run.labels").unwrap_err();
            assert!(why.contains("not a JSON array of strings"), "{bad}: {why}");
        }
    }
}
