//! `versions.skew`: the parts' versions against each other, from every source the run reaches: the
//! release's chart and the Hasura image its pod runs (cluster), the layout of `hdb_catalog` and the
//! agents' Prefect versions (database), and the server's Prefect Core (API).

use std::sync::Arc;

use serde_json::json;

use super::{
    Cx, Outcome,
    cluster_cx::{component_image, image_tag, release},
    db_session, query_failed, web,
};
use crate::targets::release::Found;

/// The numbers a version starts with: `v2.1.1` → [2, 1, 1], `1.4.0-python3.7` → [1, 4, 0],
/// `0.15.9+12.gabc` → [0, 15, 9]; `latest` → [].
fn numbers(v: &str) -> Vec<u64> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    let mut out = Vec::new();
    for part in v.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse() {
            Ok(n) => out.push(n),
            Err(_) => break,
        }
        if digits.len() != part.len() {
            break;
        }
    }
    out
}

/// The Hasura image the release's chart was built for: its own default (`hasura.image`), else what
/// the chart's version implies (1.3.x up to 2021.11.30, 2.x from 2022.01.12).
fn expected_hasura(f: &Found) -> Option<(u64, String)> {
    let image = &f.release.chart_values["hasura"]["image"];
    if let (Some(name), Some(t)) = (image["name"].as_str(), image["tag"].as_str())
        && let Some(major) = numbers(t).first()
    {
        return Some((*major, format!("{name}:{t}")));
    }
    let date = numbers(&f.release.chart_version);
    match date.as_slice() {
        [y, m, d, ..] if *y >= 2000 && (*y, *m, *d) <= (2021, 11, 30) => {
            Some((1, "hasura/graphql-engine:v1.3.3".to_string()))
        }
        [y, m, d, ..] if *y >= 2000 && (*y, *m, *d) >= (2022, 1, 12) => {
            Some((2, "hasura/graphql-engine:v2.1.1".to_string()))
        }
        _ => None,
    }
}

/// Which Hasura wrote `hdb_catalog`: 1.3 keeps its metadata in `hdb_table` and friends, 2.x in
/// `hdb_metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Catalog {
    Missing,
    Hasura1,
    Hasura2,
    Other,
}

impl Catalog {
    fn text(self) -> &'static str {
        match self {
            Catalog::Missing => "no hdb_catalog yet",
            Catalog::Hasura1 => "Hasura 1.3's hdb_catalog (hdb_table, no hdb_metadata)",
            Catalog::Hasura2 => "Hasura 2.x's hdb_catalog (hdb_metadata)",
            Catalog::Other => "an hdb_catalog of neither layout",
        }
    }
}

struct Finding {
    text: String,
    fix: &'static str,
}

pub async fn versions_skew(cx: Arc<Cx>) -> Outcome {
    let mut compared: Vec<String> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut unseen: Vec<String> = Vec::new();
    let mut o = Outcome::pass("");

    // The cluster: the chart's Hasura and the running one.
    let mut hasura_major: Option<u64> = None;
    let mut expected: Option<(u64, String)> = None;
    match release(&cx) {
        Ok((k, f)) => {
            expected = expected_hasura(f);
            let running = match k.pods(f).await {
                Ok(pods) => component_image(pods, "hasura", "hasura"),
                Err(skip) => {
                    unseen.push(format!("the release's pods ({})", skip.message));
                    None
                }
            };
            o = o.with("chart_version", f.release.chart_version.as_str());
            if let Some(image) = &running {
                o = o.with("hasura_image", image.as_str());
                hasura_major = numbers(image_tag(image)).first().copied();
            }
            match (&running, &expected, hasura_major) {
                (Some(image), Some((want, chart_image)), Some(have)) if have != *want => {
                    findings.push(Finding {
                        text: format!(
                            "Hasura runs {image}, but chart prefect-server {} of release {} was built \
                             for Hasura {want}.x ({chart_image})",
                            f.release.chart_version, f.release.name
                        ),
                        fix: "hasura_tag",
                    });
                }
                (Some(image), Some((want, _)), Some(_)) => {
                    compared.push(format!("Hasura {image} is the {want}.x the chart expects"));
                }
                (Some(image), _, _) => unseen.push(format!(
                    "which Hasura the chart expects (Hasura runs {image})"
                )),
                _ => unseen.push("the Hasura pod's image".to_string()),
            }
        }
        Err(_) => unseen.push("the cluster (the chart and its Hasura image)".to_string()),
    }
    if let Some((_, image)) = &expected {
        o = o
            .var("hasura_expected", image.as_str())
            .var("hasura_expected_tag", image_tag(image));
    }

    // The database: the catalog's layout and the agents' versions.
    let mut agents: Vec<(String, String)> = Vec::new();
    match db_session(&cx).await {
        Ok(s) => {
            let rows = match s
                .query(
                    "SELECT pg_catalog.to_regnamespace('hdb_catalog') IS NOT NULL, \
                            pg_catalog.to_regclass('hdb_catalog.hdb_metadata') IS NOT NULL, \
                            pg_catalog.to_regclass('hdb_catalog.hdb_table') IS NOT NULL, \
                            pg_catalog.to_regclass('public.agent') IS NOT NULL",
                    &[],
                )
                .await
            {
                Ok(r) => r,
                Err(e) => return query_failed("look up hdb_catalog and the agent table", e),
            };
            let flag = |i: usize| {
                rows.first()
                    .and_then(|r| r.try_get::<_, bool>(i).ok())
                    .unwrap_or(false)
            };
            let catalog = match (flag(0), flag(1), flag(2)) {
                (false, _, _) => Catalog::Missing,
                (true, true, _) => Catalog::Hasura2,
                (true, false, true) => Catalog::Hasura1,
                (true, false, false) => Catalog::Other,
            };
            o = o.with("catalog", catalog.text());
            match (catalog, hasura_major) {
                (Catalog::Hasura1, Some(m)) if m >= 2 => findings.push(Finding {
                    text: format!(
                        "Hasura {m}.x runs, but the database holds {}: Hasura has not upgraded it",
                        catalog.text()
                    ),
                    fix: "catalog",
                }),
                (Catalog::Hasura2, Some(1)) => findings.push(Finding {
                    text: format!(
                        "Hasura 1.x runs on {}, which Hasura 2.x wrote and 1.x cannot read",
                        catalog.text()
                    ),
                    fix: "hasura_tag",
                }),
                (Catalog::Hasura1 | Catalog::Hasura2, Some(m)) => {
                    compared.push(format!("{} fits Hasura {m}.x", catalog.text()));
                }
                _ => {}
            }
            if flag(3) {
                let rows = match s
                    .query(
                        "SELECT coalesce(name, ''), core_version FROM public.agent \
                         WHERE core_version IS NOT NULL AND last_queried > now() - interval '1 hour' \
                         ORDER BY last_queried DESC LIMIT 50",
                        &[],
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return query_failed("read the agents' versions", e),
                };
                agents = rows
                    .iter()
                    .map(|r| {
                        (
                            r.try_get(0).unwrap_or_default(),
                            r.try_get(1).unwrap_or_default(),
                        )
                    })
                    .collect();
            }
        }
        Err(_) => unseen.push("the database (the catalog and the agents)".to_string()),
    }

    // The API: the server's Prefect Core.
    let server_core = match web::server_versions(&cx).await {
        Some((url, versions)) => {
            let core = versions.and_then(|v| v.core_version);
            if core.is_none() {
                unseen.push(format!("the server's Prefect Core (from {url})"));
            }
            core
        }
        None => {
            unseen.push("the API (the server's Prefect Core)".to_string());
            None
        }
    };
    o = o.with("server_core", server_core.clone()).with(
        "agents",
        agents
            .iter()
            .map(|(n, v)| json!({"name": n, "core_version": v}))
            .collect::<Vec<_>>(),
    );
    if let Some(core) = &server_core {
        let server = numbers(core);
        let old: Vec<String> = agents
            .iter()
            .filter(|(_, v)| {
                let mine = numbers(v);
                !mine.is_empty() && !server.is_empty() && mine < server
            })
            .map(|(n, v)| {
                format!(
                    "{} on Prefect {v}",
                    if n.is_empty() { "an unnamed agent" } else { n }
                )
            })
            .collect();
        if !old.is_empty() {
            findings.push(Finding {
                text: format!(
                    "{} live agent{} older than the server's Prefect Core {core}: {}; the API \
                     rejects an older agent's queries (GRAPHQL_VALIDATION_FAILED)",
                    old.len(),
                    if old.len() == 1 { " is" } else { "s are" },
                    crate::untrusted::list(&old, 5)
                ),
                fix: "agent_version",
            });
            o = o.var("old_agents", crate::untrusted::list(&old, 5));
        } else if !agents.is_empty() {
            compared.push(format!(
                "{} live agent{} on Prefect {core} or newer",
                agents.len(),
                if agents.len() == 1 { "" } else { "s" }
            ));
        }
        o = o.var("server_core", core.as_str());
    }

    if let Some(first) = findings.first() {
        let fix = first.fix;
        let text = findings
            .iter()
            .map(|f| f.text.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Outcome {
            verdict: super::Verdict::Finding,
            message: text,
            ..o
        }
        .fix(fix);
    }
    if compared.is_empty() {
        return Outcome::skip(format!(
            "nothing to compare; not looked at: {}",
            unseen.join(", ")
        ));
    }
    let not_seen = if unseen.is_empty() {
        String::new()
    } else {
        format!(" (not compared: {})", unseen.join(", "))
    };
    Outcome {
        message: format!("{}{not_seen}", compared.join("; ")),
        ..o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_tags() {
        assert_eq!(numbers("v2.1.1"), vec![2, 1, 1]);
        assert_eq!(numbers("1.4.0-python3.7"), vec![1, 4, 0]);
        assert_eq!(numbers("0.15.9+12.gabc"), vec![0, 15, 9]);
        assert!(numbers("latest").is_empty());
        assert!(numbers("0.15.9") < numbers("1.4.0"));
        assert!(numbers("1.4.1") > numbers("1.4"));
        assert_eq!(image_tag("hasura/graphql-engine:v1.3.3"), "v1.3.3");
        assert_eq!(image_tag("registry:5000/hasura/graphql-engine"), "latest");
        assert_eq!(
            image_tag("hasura/graphql-engine:v2.1.1@sha256:abc"),
            "v2.1.1"
        );
    }
}
