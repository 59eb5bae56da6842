//! User checks: a team's own checks, each a TOML file in the catalog's own format plus one probe table
//! and a CEL `expect`, run beside the built-in ones and reported like them.
//!
//! Loading validates everything before anything runs: the TOML (unknown keys refused), the id
//! (`area.name`, not a built-in's nor another file's), `requires` (known ids), the CEL expressions
//! (compiled), and the probe (SQL parsed to exactly one query that only reads). Every error names
//! `file:line:col` and what to change.

pub mod cel_budget;
pub mod sql;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{Catalog, CheckSpec, Mode, Severity};

/// User check files read at the most, and the size of one.
pub const MAX_FILES: usize = 1000;
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The folder read when it exists, relative to the working directory.
pub const DEFAULT_DIR: &str = ".prefect-doctor/checks";

/// One user check file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    id: Spanned<String>,
    title: String,
    #[serde(default = "default_area")]
    area: String,
    #[serde(default = "default_modes")]
    modes: Vec<Mode>,
    #[serde(default = "default_severity")]
    severity: Severity,
    #[serde(default)]
    symptom: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    fix: String,
    #[serde(default)]
    docs: String,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    sql: Option<SqlTable>,
    values: Option<ValuesTable>,
    graphql: Option<GraphqlTable>,
    http: Option<HttpTable>,
    kube: Option<KubeTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KubeTable {
    resource: Spanned<String>,
    name: Option<String>,
    selector: Option<String>,
    expect: Spanned<String>,
    message: Option<Spanned<String>>,
}

fn default_area() -> String {
    "site".to_string()
}
fn default_modes() -> Vec<Mode> {
    vec![Mode::Check]
}
fn default_severity() -> Severity {
    Severity::Error
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlTable {
    query: Spanned<String>,
    expect: Spanned<String>,
    message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphqlTable {
    query: Spanned<String>,
    expect: Spanned<String>,
    message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpTable {
    target: Spanned<String>,
    #[serde(default = "root")]
    path: Spanned<String>,
    expect: Spanned<String>,
    message: Option<Spanned<String>>,
}

fn root() -> Spanned<String> {
    Spanned::new(0..0, "/".to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValuesTable {
    expect: Spanned<String>,
    message: Option<Spanned<String>>,
}

/// What a user check asks.
#[derive(Debug)]
pub enum Probe {
    /// One query, as re-written from its parse (so it is exactly one statement).
    Sql(String),
    /// The merged Helm values (preflight).
    Values,
    /// Apollo: one GraphQL query (never a mutation or subscription).
    Graphql(String),
    /// A GET relative to the API or the UI.
    Http { target: HttpTarget, path: String },
    /// The release's objects of one resource in its namespace: the one named, or those matching the
    /// selector and the release's label.
    Kube {
        resource: String,
        name: Option<String>,
        selector: Option<String>,
    },
}

/// `plural` or `plural.group` (`deployments.apps`), lower-case; never Secrets (their data would reach
/// CEL and the report).
fn kube_resource(r: &str) -> Result<(), String> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpTarget {
    Api,
    Ui,
}

/// The GraphQL document as one read: one query (and fragments), no mutation or subscription.
fn only_queries(text: &str) -> Result<(), String> {
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

/// A loaded, validated user check.
#[derive(Debug)]
pub struct UserCheck {
    pub spec: CheckSpec,
    pub requires: Vec<String>,
    pub probe: Probe,
    /// `expect` and `message` as written: validated and held to the CEL budget at load, compiled
    /// again where they are evaluated (`cel_budget::evaluate`, a child process).
    pub expect_text: String,
    pub message_text: Option<String>,
    /// The file it came from, as given.
    pub file: String,
    /// That file's text: what the check was made from (two loads of the same files make the same
    /// checks, which a long-running `serve` or a fleet run makes once).
    pub text: String,
}

/// A file's place for an error: `file:line:col`.
fn place(file: &str, text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count() + 1)
        .unwrap_or(1);
    format!("{file}:{line}:{col}")
}

fn at<T>(file: &str, text: &str, s: &Spanned<T>) -> String {
    place(file, text, s.span().start)
}

/// Whether `expr` compiles and fits the CEL budget, or the error naming where it is.
fn compile(file: &str, text: &str, expr: &Spanned<String>, what: &str) -> Result<(), String> {
    let program = cel::Program::compile(expr.get_ref()).map_err(|e| {
        let first = e.errors.first();
        let why = match first {
            // The parser's own limit comes back as a debug structure: said in words.
            Some(p) if p.msg.contains("RecursionLimit") || p.msg.contains("OtherError") => {
                format!(
                    "it nests deeper than the parser allows (line {}, column {} of the expression); \
                     split it or use fewer parentheses",
                    p.pos.0, p.pos.1
                )
            }
            Some(p) => p.msg.clone(),
            None => e.to_string(),
        };
        format!(
            "{}: {what} is not a CEL expression: {}",
            at(file, text, expr),
            crate::untrusted::cap(&why, 300)
        )
    })?;
    cel_budget::within(&program)
        .map_err(|why| format!("{}: {what} is refused: {why}", at(file, text, expr)))
}

/// Is `id` `area.name` (lower-case letters, digits, `-` and `_`)?
fn valid_id(id: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    matches!(id.split_once('.'), Some((a, n)) if ok(a) && ok(n) && !n.contains('.'))
}

/// Parses and validates one file (the unit tests' way in).
#[cfg(test)]
fn load_one(
    file: &str,
    text: &str,
    builtin: &Catalog,
    taken: &BTreeSet<String>,
    all_ids: &BTreeSet<String>,
) -> Result<UserCheck, String> {
    validate(file, text, parse(file, text)?, builtin, taken, all_ids)
}

/// The file as written, or the TOML error at its place.
fn parse(file: &str, text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| place(file, text, s.start))
            .unwrap_or_else(|| file.to_string());
        format!("{at}: {}", e.message().trim())
    })
}

/// Validates one parsed file: `taken` are the user ids loaded before it, `all_ids` every user
/// file's id (a check may require any other).
fn validate(
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
            let query = sql::one_select(sql.query.get_ref())
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
fn cycle(checks: &[UserCheck]) -> Option<Vec<String>> {
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

/// The `*.toml` files `path` names: itself, or those in the folder (sorted, not recursive).
fn files_of(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        // A FIFO, a device or a socket: refused with what it is, never opened.
        return Err(crate::bounded::open_regular(path).err().map_or_else(
            || format!("{}: not a file or a folder", path.display()),
            |e| e.to_string(),
        ));
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Loads every user check of `paths` (files or folders). All errors are collected; any makes the
/// whole load fail (nothing runs on a half-read set).
pub fn load(paths: &[PathBuf], builtin: &Catalog) -> Result<Vec<UserCheck>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match files_of(p) {
            Ok(f) => files.extend(f),
            Err(e) => errors.push(e),
        }
    }
    if files.len() > MAX_FILES {
        errors.push(format!(
            "{} user check files; at most {MAX_FILES} are read",
            files.len()
        ));
        files.truncate(MAX_FILES);
    }
    // Two passes: every id first, so that `requires` may name a check of a later file.
    let mut texts = Vec::new();
    for f in &files {
        let shown = f.display().to_string();
        match crate::bounded::read_text(f, MAX_FILE_BYTES, "user check file") {
            Ok(t) => texts.push((shown, t)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let parsed: Vec<Result<File, String>> = texts.iter().map(|(f, t)| parse(f, t)).collect();
    // Every file's id may be required by another (a file that does not parse still names its id
    // for the others); an id is taken by the first file that has it.
    let all_ids: BTreeSet<String> = parsed
        .iter()
        .zip(&texts)
        .filter_map(|(p, (_, text))| match p {
            Ok(f) => Some(f.id.get_ref().clone()),
            Err(_) => text
                .parse::<toml::Table>()
                .ok()
                .and_then(|t| t.get("id").and_then(|v| v.as_str()).map(str::to_string)),
        })
        .collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut loaded: Vec<UserCheck> = Vec::new();
    for (p, (file, text)) in parsed.into_iter().zip(&texts) {
        match p.and_then(|f| validate(file, text, f, builtin, &taken, &all_ids)) {
            Ok(c) => {
                taken.insert(c.spec.id.clone());
                loaded.push(c);
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(cycle) = cycle(&loaded) {
        errors.push(format!(
            "user checks require each other in a circle: {}",
            cycle.join(" → ")
        ));
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

/// Where user checks come from for a run: `--checks` paths, the config file's `checks`, and
/// [`DEFAULT_DIR`] when it exists.
pub fn sources(flags: &[PathBuf], from_config: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = flags.iter().chain(from_config).cloned().collect();
    let default = PathBuf::from(DEFAULT_DIR);
    if default.is_dir() && !out.contains(&default) {
        out.push(default);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<UserCheck, String> {
        load_one(
            "c.toml",
            text,
            Catalog::builtin(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        )
    }

    const LATE: &str = "id = \"site.late-runs\"\ntitle = \"At most 100 late\"\nrequires = [\"db.schema\"]\n\
        [sql]\nquery = \"SELECT count(*)::int AS late FROM flow_run\"\nexpect = \"rows[0].late <= 100\"\n\
        message = \"string(rows[0].late) + ' flow runs are late'\"\n";

    #[test]
    fn a_good_check_loads() {
        let c = one(LATE).unwrap();
        assert_eq!(c.spec.id, "site.late-runs");
        assert_eq!(c.spec.area, "site");
        assert!(matches!(c.probe, Probe::Sql(ref q) if q.starts_with("SELECT count(*)")));
    }

    #[test]
    fn bad_files_name_the_place() {
        for (text, want) in [
            (
                "id = \"x\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
                "c.toml:1:6: id \"x\" is not `area.name`",
            ),
            (
                "id = \"db.password\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
                "is a built-in check's",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\nbogus = 1\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
                "c.toml:3:1: unknown field `bogus`",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"rows[0] <=\"\n",
                "c.toml:5:10: expect is not a CEL expression",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"DELETE FROM tenant\"\nexpect = \"true\"\n",
                "c.toml:4:9: the query is not a SELECT: user checks may only read",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1; DELETE FROM tenant\"\nexpect = \"true\"\n",
                "holds 2 statements",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"WITH d AS (DELETE FROM tenant RETURNING *) SELECT * FROM d\"\nexpect = \"true\"\n",
                "writes",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT * FROM tenant FOR UPDATE\"\nexpect = \"true\"\n",
                "locks rows",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\nrequires = [\"db.schemma\"]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
                "c.toml:3:13: requires \"db.schemma\", which is no check; did you mean db.schema",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n",
                "needs exactly one probe table",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[graphql]\nquery = \"mutation { create_tenant(input: {name: \\\"x\\\", slug: \\\"x\\\"}) { id } }\"\nexpect = \"true\"\n",
                "c.toml:4:9: the document is a mutation: user checks may only read",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[graphql]\nquery = \"subscription { hello }\"\nexpect = \"true\"\n",
                "subscription",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[http]\ntarget = \"db\"\nexpect = \"true\"\n",
                "c.toml:4:10: target \"db\" is not",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[http]\ntarget = \"ui\"\npath = \"http://evil.example.com/\"\nexpect = \"true\"\n",
                "is not a path",
            ),
            (
                "id = \"site.a\"\ntitle = \"t\"\n[values]\nexpect = \"true\"\n",
                "preflight only",
            ),
        ] {
            let e = one(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn requires_reach_later_files_and_circles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, id: &str, req: &str| {
            std::fs::write(
                dir.path().join(name),
                format!("id = \"{id}\"\ntitle = \"t\"\nrequires = [{req}]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n"),
            )
            .unwrap();
        };
        file("a.toml", "site.a", "\"site.b\"");
        file("b.toml", "site.b", "\"db.schema\"");
        let paths = vec![dir.path().to_path_buf()];
        let loaded = load(&paths, Catalog::builtin()).unwrap();
        assert_eq!(loaded.len(), 2);
        file("b.toml", "site.b", "\"site.a\"");
        let e = load(&paths, Catalog::builtin()).unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.contains("require each other in a circle: site.a → site.b → site.a")),
            "{e:?}"
        );
        file("b.toml", "site.b", "\"site.b\"");
        let e = load(&paths, Catalog::builtin()).unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.contains("requires \"site.b\", which is no check")),
            "{e:?}"
        );
    }

    #[test]
    fn ids() {
        assert!(valid_id("site.late-runs"));
        assert!(valid_id("team_a.x1"));
        assert!(!valid_id("Site.x") && !valid_id("site") && !valid_id("a.b.c") && !valid_id(".x"));
    }
}
