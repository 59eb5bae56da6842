//! `runs.late` through the API when no database is given: Hasura's `flow_run` and `agent` fields as
//! Apollo serves them (the UI reads them so), with the same judgement as from SQL.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime},
};

use serde_json::Value;

use super::{
    Cx, Outcome,
    runs_model::{Agent, Late, label_list},
    web,
};
use crate::probes::http::Request;

/// Late runs read at most to group their labels (the count is the server's own).
const MAX_RUNS: usize = 1000;
/// Agents read at most.
const MAX_AGENTS: usize = 50;

/// RFC 3339 in UTC for `t`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds from a Hasura timestamp (`2026-12-04T16:10:00.123456+00:00`) to `now`.
fn seconds_since(stamp: &str, now: SystemTime) -> Option<i64> {
    let t: jiff::Timestamp = stamp.parse().ok()?;
    let now = jiff::Timestamp::try_from(now).ok()?;
    Some(now.as_second().checked_sub(t.as_second())?.max(0))
}

/// The query: late runs (count and labels), and the agents, most recent poll first.
fn query(before: &str) -> String {
    let late = format!(
        "where: {{state: {{_eq: \"Scheduled\"}}, scheduled_start_time: {{_lt: \"{before}\"}}}}"
    );
    format!(
        "query {{ late: flow_run_aggregate({late}) {{ aggregate {{ count }} }} \
         runs: flow_run({late}, order_by: {{scheduled_start_time: asc}}, limit: {MAX_RUNS}) \
         {{ labels scheduled_start_time }} \
         agents: agent(order_by: {{last_queried: desc_nulls_last}}, limit: {MAX_AGENTS}) \
         {{ name labels last_queried }} }}"
    )
}

pub(super) async fn from_api(cx: &Cx) -> Result<Late, Outcome> {
    let (url, _) = web::api_url(cx).await?;
    let before = SystemTime::now()
        .checked_sub(Duration::from_secs(60))
        .map(rfc3339)
        .ok_or_else(|| Outcome::error("the clock is before 1970"))?;
    let (resp, data) = web::graphql(cx, &Request::graphql(&url, &query(&before))).await;
    // "How long ago" is judged at the answer's arrival (a replayed bundle's answer arrived when it
    // was recorded), not when the judging runs.
    let now = resp.map_or_else(SystemTime::now, |r| r.at);
    let data = data.map_err(|f| {
        Outcome::error(format!(
            "no database given, and the API at {url} did not give the flow runs and agents \
             (Hasura's flow_run_aggregate, flow_run and agent fields): {f}"
        ))
        .with("failure", f.kind())
    })?;
    // Indexed as a Value: a missing field is null, never a panic.
    let data = Value::Object(data);
    let count = data["late"]["aggregate"]["count"].as_i64().ok_or_else(|| {
        Outcome::error(format!("the API at {url} gave no flow_run_aggregate count"))
    })?;
    let runs = data["runs"].as_array().cloned().unwrap_or_default();
    let oldest = runs
        .first()
        .and_then(|r| r["scheduled_start_time"].as_str())
        .and_then(|t| seconds_since(t, now))
        .unwrap_or(0);
    let mut label_sets: Vec<(BTreeSet<String>, i64)> = Vec::new();
    for r in runs.iter().take(MAX_RUNS) {
        let set = label_list(&r["labels"], "flow_run.labels").map_err(Outcome::error)?;
        match label_sets.iter_mut().find(|(s, _)| *s == set) {
            Some((_, n)) => *n += 1,
            None => label_sets.push((set, 1)),
        }
    }
    label_sets.sort_by_key(|s| std::cmp::Reverse(s.1));
    let has_agents = data["agents"].is_array();
    let mut agents = Vec::new();
    for a in data["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_AGENTS)
    {
        let idle = a["last_queried"]
            .as_str()
            .and_then(|t| seconds_since(t, now));
        agents.push(Agent {
            name: a["name"].as_str().unwrap_or_default().to_string(),
            labels: label_list(&a["labels"], "agent.labels").map_err(Outcome::error)?,
            live: idle.is_some_and(|s| s < 120),
            idle,
        });
    }
    let sampled = if count > runs.len() as i64 {
        format!(", labels from the oldest {}", runs.len())
    } else {
        String::new()
    };
    Ok(Late {
        count,
        oldest,
        label_sets,
        agents,
        has_agents,
        path: "api",
        whence: format!("read through the API at {url}{sampled}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasura_timestamps() {
        let now: SystemTime = humantime::parse_rfc3339("2026-12-04T16:12:00Z").unwrap();
        assert_eq!(
            seconds_since("2026-12-04T16:10:00.123456+00:00", now),
            Some(120)
        );
        assert_eq!(seconds_since("2026-12-04T17:11:00+01:00", now), Some(60));
        assert_eq!(seconds_since("not a time", now), None);
        assert!(query("2026-12-04T16:11:00Z").contains("_lt: \"2026-12-04T16:11:00Z\""));
    }
}
