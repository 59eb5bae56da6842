//! Helm values, read the way `helm install` reads them: the chart's defaults, then each `-f` file in
//! order, then `--set`/`--set-string`. Every key the user wrote keeps its `file:line:col` so a finding
//! can cite it.
//!
//! Input is hostile until parsed: files over [`MAX_FILE_BYTES`] are refused before parsing, and the
//! YAML parser runs with a budget (depth, nodes, aliases) so alias bombs and deep nesting end in an
//! error with bounded memory.

use serde_json::{Map, Value};

pub use super::join;
use super::set::{MAX_SET_SLOTS, Seg, SetKind, path_text, set_path};
pub use super::values_yaml::{Locations, MAX_FILE_BYTES, ParseError, parse};
use crate::{
    chart::{facts::Generation, release::coalesce},
    report::Location,
};

/// The chart's defaults of each generation.
pub const DEFAULTS_2022_05: &str = include_str!("../../chart/values-2022.05.yaml");
pub const DEFAULTS_2022_12: &str = include_str!("../../chart/values-2022.12.yaml");

/// The user's input, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// `-f` files: (name as given, contents or the read error).
    pub files: Vec<(String, Result<String, String>)>,
    /// `--set`, `--set-string`, `--set-json`, `--set-file`, `--set-literal` as given: (expression,
    /// flag). Applied in Helm's order of the flags, each flag's expressions in their order.
    pub sets: Vec<(String, SetKind)>,
    pub chart_version: Option<String>,
}

/// The values a preflight judges.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub generation: Generation,
    /// Why that generation (for the report).
    pub generation_reason: String,
    pub defaults: Value,
    /// What the user wrote, merged across files and --set.
    pub user: Value,
    /// `user` coalesced over the defaults: what the templates see.
    pub values: Value,
    pub locations: Locations,
    pub errors: Vec<ParseError>,
    pub files: Vec<String>,
}

impl Loaded {
    pub fn location(&self, path: &str) -> Option<&Location> {
        self.locations.get(path)
    }
}

/// Parses a chart version (`2022.09.21`, `v2022.12.22`, `0.0.0`) into the generation of its values.
pub fn generation_of_version(v: &str) -> Option<Generation> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    let (Some(Some(y)), Some(Some(m))) = (parts.next(), parts.next()) else {
        return None;
    };
    if y < 2000 {
        // Development charts (0.0.0) follow the repository's newest layout.
        return Some(Generation::Auth);
    }
    Some(if (y, m) >= (2022, 9) {
        Generation::Auth
    } else {
        Generation::Legacy
    })
}

/// Keys that exist in only one generation: (legacy key, new key).
pub const RENAMED: &[(&str, &str)] = &[
    ("postgresql.postgresqlPassword", "postgresql.auth.password"),
    ("postgresql.postgresqlUsername", "postgresql.auth.username"),
    ("postgresql.postgresqlDatabase", "postgresql.auth.database"),
    (
        "postgresql.existingSecret",
        "postgresql.auth.existingSecret",
    ),
    (
        "postgresql.servicePort",
        "postgresql.primary.service.ports.postgresql",
    ),
    (
        "postgresql.initdbScripts",
        "postgresql.primary.initdb.scripts",
    ),
    ("postgresql.initdbUser", "postgresql.primary.initdb.user"),
    ("postgresql.persistence", "postgresql.primary.persistence"),
];

/// A `--set-file` path's contents, as Helm reads them (a regular file, bounded; Helm would also
/// fetch a URL, which the doctor does not).
fn read_set_file(path: &str) -> Result<String, String> {
    if path.contains("://") {
        return Err(format!(
            "{:?} is a URL; the doctor reads no URL: download it and pass the file",
            crate::untrusted::cap(&crate::redact::scrub(path), 200)
        ));
    }
    crate::bounded::read_text(
        std::path::Path::new(path),
        MAX_FILE_BYTES as u64,
        "--set-file",
    )
    .map_err(|e| e.to_string())
}

pub fn load(input: &Input) -> Result<Loaded, String> {
    let mut errors = Vec::new();
    let mut user = Value::Object(Map::new());
    let mut locations = Locations::new();
    let mut files = Vec::new();
    for (name, text) in &input.files {
        files.push(name.clone());
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                errors.push(ParseError {
                    location: None,
                    message: format!("cannot read {name}: {e}"),
                });
                continue;
            }
        };
        match parse(name, text) {
            Ok((v, locs)) => {
                user = crate::chart::release::merge(user, &v);
                // A later file's key wins, and so does its location.
                locations.extend(locs);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut slots = 0usize;
    let mut sets: Vec<&(String, SetKind)> = input.sets.iter().collect();
    // Stable: each flag's expressions keep their order.
    sets.sort_by_key(|(_, kind)| *kind);
    for (expr, kind) in sets {
        let flag = kind.flag();
        // Shown masked (a password's value) and capped; the parse error says where.
        let shown = || crate::untrusted::cap(&crate::redact::mask_assignments(expr), 200);
        let assignments = crate::chart::set::parse(expr, *kind, &mut read_set_file)
            .map_err(|e| format!("{flag} {:?}: {e}", shown()))?;
        for (path, value) in assignments {
            // `--set-json '{…}'` merges as a values file does.
            if path.is_empty() {
                user = crate::chart::release::merge(user, &value);
                continue;
            }
            slots += path
                .iter()
                .map(|s| match s {
                    Seg::Index(i) => i + 1,
                    Seg::Key(_) => 0,
                })
                .sum::<usize>();
            if slots > MAX_SET_SLOTS {
                return Err(format!(
                    "{flag} {:?}: the list indices create more than {MAX_SET_SLOTS} list entries",
                    shown()
                ));
            }
            // Every prefix of the path was written by this flag; the location names this one
            // assignment (not the whole expression), a secret's value masked.
            let shown_value = match &value {
                Value::String(s) => s.clone(),
                Value::Array(a) => format!(
                    "{{{}}}",
                    a.iter()
                        .map(|v| v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                other => other.to_string(),
            };
            let key = path_text(&path);
            let shown_value = if crate::redact::is_secret_key(&key) {
                crate::redact::MASK.to_string()
            } else {
                // Masked (a URL's password) before it is cut.
                crate::untrusted::cap(&crate::redact::scrub(&shown_value), 200)
            };
            let file = format!("{flag} {key}={shown_value}");
            set_path(&mut user, &path, value);
            let mut prefix = String::new();
            for seg in &path {
                match seg {
                    Seg::Key(k) => prefix = join(&prefix, k),
                    Seg::Index(i) => prefix.push_str(&format!("[{i}]")),
                }
                locations.insert(
                    prefix.clone(),
                    Location {
                        file: file.clone(),
                        line: 1,
                        column: 1,
                        snippet: None,
                    },
                );
            }
        }
    }
    let wrote = |k: &str| crate::chart::facts::lookup(&user, k).is_some();
    let (generation, generation_reason) = match &input.chart_version {
        Some(v) => match generation_of_version(v) {
            Some(g) => (g, format!("--chart-version {v}")),
            None => {
                return Err(format!(
                    "--chart-version {v:?} is not a chart version (e.g. 2022.09.21)"
                ));
            }
        },
        None => {
            let legacy = RENAMED.iter().find(|(old, _)| wrote(old)).map(|(o, _)| *o);
            let new = wrote("postgresql.auth") || wrote("postgresql.primary");
            match (legacy, new) {
                (Some(k), false) => (
                    Generation::Legacy,
                    format!("your values use {k}, a key of charts before 2022.09; pass --chart-version to check against another chart"),
                ),
                _ => (
                    Generation::Auth,
                    "the newest chart layout (2022.09 and later); pass --chart-version for an older chart".to_string(),
                ),
            }
        }
    };
    let defaults_text = match generation {
        Generation::Legacy => DEFAULTS_2022_05,
        Generation::Auth => DEFAULTS_2022_12,
    };
    let defaults = parse("chart defaults", defaults_text)
        .map(|(v, _)| v)
        .map_err(|e| format!("the embedded chart defaults do not parse: {e}"))?;
    let values = coalesce(&defaults, &user);
    crate::chart::release::register_secrets(&user);
    Ok(Loaded {
        generation,
        generation_reason,
        defaults,
        user,
        values,
        locations,
        errors,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Helm 4.3.2's `helm template` gives for the same file (tests/testsuite/preflight/helm_oracle.rs holds the
    /// doctor against Helm itself over many more).
    #[test]
    fn yaml_1_1_scalars_as_helm_reads_them() {
        let text = "r: 010\ns: 0o10\nt: 0x1F\nu: 1_000\nv: 190:20:30\nx: y\nz: 0b101\nk: 007.5\n\
                    i: +12\nh: 1e3\nn: n\nyy: Y\noo: 0777\nneg: -010\nq: '010'\n";
        let (v, _) = parse("f", text).expect("parses");
        assert_eq!(
            v,
            serde_json::json!({"false": false, "h": 1000.0, "i": 12, "k": 7.5, "neg": -8, "oo": 511,
                "r": 8, "s": 8, "t": 31, "u": 1000, "v": "190:20:30", "x": true, "yy": true, "z": 5,
                "q": "010"})
        );
    }

    #[test]
    fn locations_of_keys() {
        let (v, locs) = parse("v.yaml", "postgresql:\n  auth:\n    password: x\nui:\n  ingress:\n    hosts:\n      - a.example\n").expect("parse");
        assert_eq!(v["postgresql"]["auth"]["password"], "x");
        let l = &locs["postgresql.auth.password"];
        assert_eq!((l.line, l.column), (3, 5));
        assert_eq!(locs["ui.ingress.hosts[0]"].line, 7);
    }

    #[test]
    fn hostile_yaml_is_an_error() {
        let e = parse("v.yaml", "a: [1, 2\nb: }").expect_err("broken");
        assert!(e.location.is_some(), "{e}");
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(parse("bomb.yaml", bomb).is_err());
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse("deep.yaml", &deep).is_err());
        let huge = "a: b\n".repeat(MAX_FILE_BYTES / 4);
        assert!(
            parse("huge.yaml", &huge)
                .expect_err("huge")
                .message
                .contains("refused")
        );
        assert!(parse("list.yaml", "- a\n- b\n").is_err());
    }

    #[test]
    fn generation_by_version_and_keys() {
        assert_eq!(
            generation_of_version("2022.05.24"),
            Some(Generation::Legacy)
        );
        assert_eq!(generation_of_version("v2022.09.21"), Some(Generation::Auth));
        assert_eq!(generation_of_version("0.0.0"), Some(Generation::Auth));
        assert_eq!(generation_of_version("nope"), None);
        let l = load(&Input {
            sets: vec![(
                "postgresql.postgresqlPassword=s3cret-zz".into(),
                SetKind::Set,
            )],
            ..Input::default()
        })
        .expect("load");
        assert_eq!(l.generation, Generation::Legacy);
        assert_eq!(l.values["postgresql"]["postgresqlUsername"], "prefect");
        let d = load(&Input::default()).expect("defaults");
        assert_eq!(d.generation, Generation::Auth);
        assert_eq!(d.values["postgresql"]["auth"]["username"], "prefect");
    }
}
