//! Validating a parsed user check: its id, `requires`, CEL expressions (compiled, within the
//! budget), and probe (SQL that only reads, one GraphQL query, a resource that is not Secrets).

use std::collections::BTreeSet;

use super::{HttpTarget, Probe, UserCheck, file::*};
use crate::catalog::{Catalog, CheckSpec, Mode};

/// `plural` or `plural.group` (`deployments.apps`), lower-case; never Secrets (their data would reach
/// CEL and the report).
pub(super) fn kube_resource(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if !ok || r.starts_with('.') || r.ends_with('.') {
        return Err(format!(
            "resource {r:?} is not a plural resource name (pods, deployments.apps, ingresses.networking.k8s.io)"
        ));
    }
    if r == "secrets" || r.starts_with("secrets.") {
        return Err(
            "user checks may not read Secrets (their data would reach the report)".to_string(),
        );
    }
    Ok(())
}

/// The GraphQL document as one read: one query (and fragments), no mutation or subscription.
pub(super) fn only_queries(text: &str) -> Result<(), String> {
    use graphql_parser::query::{Definition, OperationDefinition};
    let doc = graphql_parser::parse_query::<String>(text)
        .map_err(|e| format!("the query is not GraphQL: {}", e.to_string().trim()))?;
    let mut operations = 0;
    for d in &doc.definitions {
        match d {
            Definition::Operation(OperationDefinition::Mutation(_)) => {
                return Err("the document is a mutation: user checks may only read".to_string());
            }
            Definition::Operation(OperationDefinition::Subscription(_)) => {
                return Err("the document is a subscription: user checks may only read".to_string());
            }
            Definition::Operation(_) => operations += 1,
            Definition::Fragment(_) => {}
        }
    }
    if operations != 1 {
        return Err(format!(
            "the document holds {operations} operations; give exactly one query"
        ));
    }
    Ok(())
}

/// Validates one parsed file: `taken` are the user ids loaded before it, `all_ids` every user
/// file's id (a check may require any other).
pub(super) fn validate(
    file: &str,
    text: &str,
    f: File,
    builtin: &Catalog,
    taken: &BTreeSet<String>,
    all_ids: &BTreeSet<String>,
) -> Result<UserCheck, String> {
    // Every problem of the file is said, not only the first.
    let mut errs: Vec<String> = Vec::new();
    let id = f.id.get_ref().clone();
    if !valid_id(&id) {
        errs.push(format!(
            "{}: id {id:?} is not `area.name` (lower-case letters, digits, - and _; e.g. site.late-runs)",
            at(file, text, &f.id)
        ));
    }
    if builtin.get(&id).is_some() {
        errs.push(format!(
            "{}: id {id:?} is a built-in check's; give yours another (e.g. site.{})",
            at(file, text, &f.id),
            id.split_once('.').map(|(_, n)| n).unwrap_or("name")
        ));
    }
    if taken.contains(&id) {
        errs.push(format!(
            "{}: id {id:?} is already another user check's",
            at(file, text, &f.id)
        ));
    }
    let area = id
        .split_once('.')
        .map(|(a, _)| a)
        .unwrap_or("site")
        .to_string();
    if f.area != default_area() && f.area != area {
        errs.push(format!(
            "{file}: area {:?} is not the id's ({area})",
            f.area
        ));
    }
    let tables = [
        f.sql.is_some(),
        f.values.is_some(),
        f.graphql.is_some(),
        f.http.is_some(),
        f.kube.is_some(),
    ]
    .iter()
    .filter(|t| **t)
    .count();
    if tables != 1 {
        errs.push(format!(
            "{file}: a user check needs exactly one probe table: [sql] (the Prefect database), [graphql] \
             (Apollo), [http] (a GET to the API or the UI), [kube] (the release's objects) or [values] \
             (preflight's Helm values); it has {tables}"
        ));
    }
    let probe = (|| -> Result<_, String> {
        Ok(if let Some(sql) = f.sql {
            let query = super::sql::one_select(sql.query.get_ref())
                .map_err(|e| format!("{}: {e}", at(file, text, &sql.query)))?;
            (Probe::Sql(query), sql.expect, sql.message)
        } else if let Some(g) = f.graphql {
            only_queries(g.query.get_ref())
                .map_err(|e| format!("{}: {e}", at(file, text, &g.query)))?;
            (
                Probe::Graphql(g.query.get_ref().clone()),
                g.expect,
                g.message,
            )
        } else if let Some(h) = f.http {
            let target = match h.target.get_ref().as_str() {
                "api" => HttpTarget::Api,
                "ui" => HttpTarget::Ui,
                other => {
                    return Err(format!(
                        "{}: target {other:?} is not \"api\" or \"ui\"",
                        at(file, text, &h.target)
                    ));
                }
            };
            let path = h.path.get_ref().clone();
            if path.contains("://") || path.starts_with("//") {
                return Err(format!(
                    "{}: path {path:?} is not a path: it is read relative to the {} target",
                    at(file, text, &h.path),
                    h.target.get_ref()
                ));
            }
            (Probe::Http { target, path }, h.expect, h.message)
        } else if let Some(k) = f.kube {
            kube_resource(k.resource.get_ref())
                .map_err(|e| format!("{}: {e}", at(file, text, &k.resource)))?;
            if k.name.is_some() && k.selector.is_some() {
                return Err(format!(
                    "{}: give name or selector, not both",
                    at(file, text, &k.resource)
                ));
            }
            (
                Probe::Kube {
                    resource: k.resource.get_ref().clone(),
                    name: k.name,
                    selector: k.selector,
                },
                k.expect,
                k.message,
            )
        } else if let Some(v) = f.values {
            (Probe::Values, v.expect, v.message)
        } else {
            return Err(format!("{file}: no probe table"));
        })
    })();
    let (probe, expect, message) = match probe {
        Ok(p) => p,
        Err(e) => {
            errs.push(e);
            return Err(errs.join("\n"));
        }
    };
    if matches!(probe, Probe::Values) && f.modes.iter().any(|m| *m != Mode::Preflight) {
        errs.push(format!(
            "{file}: a [values] check runs in preflight only: set modes = [\"preflight\"]"
        ));
    }
    if !matches!(probe, Probe::Values) && f.modes.iter().any(|m| *m != Mode::Check) {
        errs.push(format!(
            "{file}: an [sql], [graphql], [http] or [kube] check runs in check only: set modes = [\"check\"]"
        ));
    }
    let expect_text = expect.get_ref().clone();
    if let Err(e) = compile(file, text, &expect, "expect") {
        errs.push(e);
    }
    let message_text = message.as_ref().map(|m| m.get_ref().clone());
    if let Some(Err(e)) = message.as_ref().map(|m| compile(file, text, m, "message")) {
        errs.push(e);
    }
    let mut requires = Vec::new();
    for r in &f.requires {
        let known = builtin.get(r.get_ref()).is_some()
            || (all_ids.contains(r.get_ref()) && *r.get_ref() != id);
        if !known {
            let s = builtin.suggest(r.get_ref());
            errs.push(format!(
                "{}: requires {:?}, which is no check{}",
                at(file, text, r),
                r.get_ref(),
                if s.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", s.join(", "))
                }
            ));
            continue;
        }
        requires.push(r.get_ref().clone());
    }
    if !errs.is_empty() {
        return Err(errs.join("\n"));
    }
    let spec = CheckSpec {
        id,
        title: f.title,
        area: area.clone(),
        modes: f.modes,
        severity: f.severity,
        symptom: f.symptom,
        cause: f.cause,
        fix: f.fix,
        fixes: Default::default(),
        docs: f.docs,
        automatic: None,
        source: Some(file.to_string()),
    };
    Ok(UserCheck {
        spec,
        requires,
        probe,
        expect_text,
        message_text,
        file: file.to_string(),
        text: text.to_string(),
    })
}

/// A circle of `requires` among user checks (ids in order, the first again at the end), if any.
pub(super) fn cycle(checks: &[UserCheck]) -> Option<Vec<String>> {
    let of = |id: &str| checks.iter().find(|c| c.spec.id == id);
    for start in checks {
        // Depth-first with an explicit stack of (check, next requirement to follow).
        let mut path: Vec<(&UserCheck, usize)> = vec![(start, 0)];
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        while let Some((c, next)) = path.last_mut() {
            let Some(r) = c.requires.get(*next) else {
                path.pop();
                continue;
            };
            *next += 1;
            if r == &start.spec.id {
                let mut ids: Vec<String> = path.iter().map(|(c, _)| c.spec.id.clone()).collect();
                ids.push(start.spec.id.clone());
                return Some(ids);
            }
            if let Some(d) = of(r)
                && seen.insert(d.spec.id.as_str())
            {
                path.push((d, 0));
            }
        }
    }
    None
}
