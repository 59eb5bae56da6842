//! User checks: a team's own checks, each a TOML file in the catalog's own format plus one probe table
//! and a CEL `expect`, run beside the built-in ones and reported like them.
//!
//! Loading validates everything before anything runs: the TOML (unknown keys refused), the id
//! (`area.name`, not a built-in's nor another file's), `requires` (known ids), the CEL expressions
//! (compiled), and the probe (SQL parsed to exactly one query that only reads). Every error names
//! `file:line:col` and what to change.

pub mod cel_budget;
mod file;
pub mod sql;
mod validate;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use crate::catalog::{Catalog, CheckSpec};
use file::{File, parse};
use validate::{cycle, validate};

/// User check files read at the most, and the size of one.
pub const MAX_FILES: usize = 1000;
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The folder read when it exists, relative to the working directory.
pub const DEFAULT_DIR: &str = ".prefect-doctor/checks";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpTarget {
    Api,
    Ui,
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
mod tests;
