//! The SARIF 2.1.0 report: one rule per catalog entry (help = the fix, helpUri = the docs), one result
//! per warning, failure and error. A finding in a values file carries its region (file, line, column);
//! a finding on the live install is attached to the Helm release when it is known, else to the target
//! the check looked at.

use serde_json::{Value, json};

use crate::{
    catalog::{Catalog, Severity},
    report::{CheckResult, Report, Status},
};

pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Which of the report's targets a check area looks at.
fn target_kind(area: &str) -> Option<&'static str> {
    match area {
        "database" | "hasura" => Some("database"),
        "api" | "tenant" => Some("api"),
        "ui" => Some("ui"),
        _ => None,
    }
}

fn region(loc: &crate::report::Location) -> Value {
    let mut region = json!({ "startLine": loc.line.max(1), "startColumn": loc.column.max(1) });
    if let Some(snippet) = &loc.snippet {
        region["snippet"] = json!({ "text": snippet });
    }
    region
}

fn locations(r: &CheckResult, report: &Report) -> Value {
    if let Some(loc) = &r.location {
        return json!([{
            "physicalLocation": {
                "artifactLocation": { "uri": loc.file },
                "region": region(loc)
            }
        }]);
    }
    if let Some(rel) = &report.release {
        return json!([{
            "logicalLocations": [{
                "name": rel.name,
                "fullyQualifiedName": format!("{}/{}", rel.namespace, rel.name),
                "kind": "resource"
            }]
        }]);
    }
    let target = target_kind(&r.area)
        .and_then(|k| report.targets.iter().find(|t| t.kind == k))
        .or_else(|| report.targets.first());
    match target {
        Some(t) => json!([{
            "logicalLocations": [{
                "name": t.address,
                "fullyQualifiedName": format!("{}:{}", t.kind, t.address),
                "kind": "resource"
            }]
        }]),
        None => json!([]),
    }
}

/// One SARIF run for `report`.
fn run_of(report: &Report, catalog: &Catalog, automation_id: Option<String>) -> Value {
    let rules: Vec<Value> = catalog
        .entries()
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "name": e.id.replace(['.', '-'], "_"),
                "shortDescription": { "text": e.title },
                "fullDescription": { "text": format!("{}\n\n{}", e.symptom.trim(), e.cause.trim()) },
                "help": { "text": e.fix.trim() },
                "helpUri": e.docs,
                "defaultConfiguration": { "level": level(e.severity) },
                "properties": { "area": e.area, "tags": [e.area.clone()] }
            })
        })
        .collect();
    let index = |id: &str| catalog.entries().iter().position(|e| e.id == id);
    let results: Vec<Value> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Warn | Status::Fail | Status::Error))
        .map(|r| {
            let (lvl, text) = match r.status {
                Status::Warn => ("warning", r.message.clone()),
                Status::Fail => (level(r.severity), r.message.clone()),
                _ => ("error", format!("could not check: {}", r.message)),
            };
            let mut v = json!({
                "ruleId": r.id,
                "level": lvl,
                "kind": if r.status == Status::Error { "open" } else { "fail" },
                "message": { "text": text },
                "locations": locations(r, report),
                "properties": { "status": r.status.as_str(), "evidence": r.evidence, "docs": r.docs },
            });
            if let Some(i) = index(&r.id) {
                v["ruleIndex"] = json!(i);
            }
            if let Some(fix) = &r.fix {
                v["properties"]["fix"] = json!(fix);
            }
            v
        })
        .collect();
    let notifications: Vec<Value> = report
        .notices
        .iter()
        .map(|n| json!({ "level": "warning", "message": { "text": n } }))
        .collect();
    let mut run = json!({
            "tool": { "driver": {
                "name": "prefect-doctor",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/PrefectHQ/server/blob/master/helm/prefect-server/README.md#troubleshooting",
                "rules": rules
            }},
            "invocations": [{
                "executionSuccessful": true,
                "exitCode": report.exit_code,
                "commandLine": format!("prefect-doctor {}", report.command),
                "toolExecutionNotifications": notifications
            }],
            "results": results
    });
    if let Some(id) = automation_id {
        run["automationDetails"] = json!({ "id": id });
    }
    run
}

fn document(runs: Vec<Value>) -> String {
    let sarif = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": runs
    });
    let mut s = serde_json::to_string_pretty(&sarif).unwrap_or_default();
    s.push('\n');
    s
}

pub fn render(report: &Report, catalog: &Catalog) -> String {
    document(vec![run_of(report, catalog, None)])
}

/// Several releases: one run each, its `automationDetails.id` the release's `context/namespace/release`.
/// `not_diagnosed` (where, why): what the run could not list or read, one more run (its id
/// `not-diagnosed`) whose invocation did not succeed, with an error notification for each.
pub fn render_many<'a>(
    reports: impl IntoIterator<Item = (String, &'a Report)>,
    catalog: &Catalog,
    not_diagnosed: &[(String, String)],
) -> String {
    let mut runs: Vec<Value> = reports
        .into_iter()
        .map(|(name, r)| run_of(r, catalog, Some(name)))
        .collect();
    if !not_diagnosed.is_empty() {
        let notifications: Vec<Value> = not_diagnosed
            .iter()
            .map(|(place, why)| {
                json!({ "level": "error", "message": { "text": format!("not diagnosed in {place}: {why}") } })
            })
            .collect();
        runs.push(json!({
            "tool": { "driver": { "name": "prefect-doctor", "version": env!("CARGO_PKG_VERSION") } },
            "invocations": [{
                "executionSuccessful": false,
                "commandLine": "prefect-doctor check",
                "toolExecutionNotifications": notifications
            }],
            "results": [],
            "automationDetails": { "id": "not-diagnosed" }
        }));
    }
    document(runs)
}
