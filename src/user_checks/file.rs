//! A user check file as written: the TOML schema (unknown keys refused), read with the places of its
//! values for errors.

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{Mode, Severity};

/// One user check file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    pub(super) id: Spanned<String>,
    pub(super) title: String,
    #[serde(default = "default_area")]
    pub(super) area: String,
    #[serde(default = "default_modes")]
    pub(super) modes: Vec<Mode>,
    #[serde(default = "default_severity")]
    pub(super) severity: Severity,
    #[serde(default)]
    pub(super) symptom: String,
    #[serde(default)]
    pub(super) cause: String,
    #[serde(default)]
    pub(super) fix: String,
    #[serde(default)]
    pub(super) docs: String,
    #[serde(default)]
    pub(super) requires: Vec<Spanned<String>>,
    pub(super) sql: Option<SqlTable>,
    pub(super) values: Option<ValuesTable>,
    pub(super) graphql: Option<GraphqlTable>,
    pub(super) http: Option<HttpTable>,
    pub(super) kube: Option<KubeTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KubeTable {
    pub(super) resource: Spanned<String>,
    pub(super) name: Option<String>,
    pub(super) selector: Option<String>,
    pub(super) expect: Spanned<String>,
    pub(super) message: Option<Spanned<String>>,
}

pub(super) fn default_area() -> String {
    "site".to_string()
}
pub(super) fn default_modes() -> Vec<Mode> {
    vec![Mode::Check]
}
pub(super) fn default_severity() -> Severity {
    Severity::Error
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SqlTable {
    pub(super) query: Spanned<String>,
    pub(super) expect: Spanned<String>,
    pub(super) message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GraphqlTable {
    pub(super) query: Spanned<String>,
    pub(super) expect: Spanned<String>,
    pub(super) message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpTable {
    pub(super) target: Spanned<String>,
    #[serde(default = "root")]
    pub(super) path: Spanned<String>,
    pub(super) expect: Spanned<String>,
    pub(super) message: Option<Spanned<String>>,
}

pub(super) fn root() -> Spanned<String> {
    Spanned::new(0..0, "/".to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValuesTable {
    pub(super) expect: Spanned<String>,
    pub(super) message: Option<Spanned<String>>,
}

/// The file as written, or the TOML error at its place.
pub(super) fn parse(file: &str, text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| place(file, text, s.start))
            .unwrap_or_else(|| file.to_string());
        format!("{at}: {}", e.message().trim())
    })
}

/// A file's place for an error: `file:line:col`.
pub(super) fn place(file: &str, text: &str, offset: usize) -> String {
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

pub(super) fn at<T>(file: &str, text: &str, s: &Spanned<T>) -> String {
    place(file, text, s.span().start)
}

/// Whether `expr` compiles and fits the CEL budget, or the error naming where it is.
pub(super) fn compile(
    file: &str,
    text: &str,
    expr: &Spanned<String>,
    what: &str,
) -> Result<(), String> {
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
    super::cel_budget::within(&program)
        .map_err(|why| format!("{}: {what} is refused: {why}", at(file, text, expr)))
}

/// Is `id` `area.name` (lower-case letters, digits, `-` and `_`)?
pub(super) fn valid_id(id: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    matches!(id.split_once('.'), Some((a, n)) if ok(a) && ok(n) && !n.contains('.'))
}
