//! `.prefect-doctor.toml`: a team's standing choices for a CI gate. Found in the current directory or
//! given with `--config`. Unknown keys and unknown check ids are errors (a typo must not silently
//! change what the gate checks).
//!
//! ```toml
//! timeout = "10s"
//! namespace = "prefect"
//! release = "prefect"
//!
//! [skip]                      # check id = the reason, shown in the report
//! "db.timezone" = "our managed database sets UTC per session"
//!
//! db_size_warning = "10GB"    # db.size warns past this (Prefect's largest tables together)
//!
//! [severity]                  # check id = error | warning | info
//! "prefect.cli-config" = "info"
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::catalog::{Catalog, Severity};

pub const FILE_NAME: &str = ".prefect-doctor.toml";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub timeout: Option<String>,
    pub namespace: Option<String>,
    pub release: Option<String>,
    pub db_size_warning: Option<String>,
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    #[serde(default)]
    pub severity: BTreeMap<String, Severity>,
    /// User check files or folders, relative to the config file.
    #[serde(default)]
    pub checks: Vec<String>,
    /// What support bundles hide besides secrets.
    #[serde(default)]
    pub redact: Redact,
}

/// `[redact]`: regular expressions whose matches a support bundle replaces everywhere.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redact {
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// A loaded, validated configuration.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    /// Where it came from (`None`: no file).
    pub path: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub namespace: Option<String>,
    pub release: Option<String>,
    /// Bytes past which `db.size` warns.
    pub db_size_warning: Option<u64>,
    pub skip: BTreeMap<String, String>,
    pub severity: BTreeMap<String, Severity>,
    /// `[redact] patterns` (checked to compile when a bundle is made).
    pub redact: Vec<String>,
}

/// `db.size`'s threshold when the config file sets none.
pub const DEFAULT_DB_SIZE_WARNING: u64 = 10 * 1000 * 1000 * 1000;

/// A size such as `10GB`, `500 MB`, `2GiB` or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 10GB or 500MB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (B, KB, MB, GB, TB, KiB … TiB)"
            ));
        }
    };
    let bytes = num * mult;
    if !bytes.is_finite() || !(1.0..=1e18).contains(&bytes) {
        return Err(format!("{s:?} is not a sensible size"));
    }
    Ok(bytes as u64)
}

/// A size as the report says every size: decimal units as [`parse_size`] reads them (1 kB = 1,000
/// bytes), one decimal from a kilobyte up (`512 B`, `8.2 kB`, `1.5 MB`, `20.0 GB`), so a total and
/// its parts, or a size and its threshold, are in the same terms and never round to nothing.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    // 999.95 would print as 1000.0: move up a unit first.
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn unknown_id(catalog: &Catalog, id: &str, table: &str, shown: &str) -> String {
    let s = catalog.suggest(id);
    let hint = if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    };
    format!("{shown}: [{table}] names unknown check {id:?}{hint}")
}

/// The config file: `explicit`, else `./.prefect-doctor.toml` when it exists.
fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(FILE_NAME)).filter(|p| p.is_file()),
    }
}

/// The config file as read: where it is and its text.
pub struct File {
    pub path: PathBuf,
    pub text: String,
}

/// Reads `explicit`, else `./.prefect-doctor.toml` if it exists (`None`: no file).
pub fn read(explicit: Option<&Path>) -> Result<Option<File>, String> {
    let Some(path) = locate(explicit) else {
        return Ok(None);
    };
    let text = crate::bounded::read_text(&path, crate::bounded::MAX_CONFIG_FILE, "config file")
        .map_err(|e| e.to_string())?;
    Ok(Some(File { path, text }))
}

/// The file's `checks`, resolved against its folder; a file that does not parse gives none here and
/// its error from [`load`].
pub fn check_paths(file: Option<&File>) -> Vec<PathBuf> {
    let Some(file) = file else {
        return Vec::new();
    };
    let base = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    file.text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("checks").and_then(|c| c.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str())
        .map(|p| base.join(p))
        .collect()
}

/// The settings of a file [`read`] (defaults without one), validated against `catalog`.
pub fn load(file: Option<File>, catalog: &Catalog) -> Result<Loaded, String> {
    let Some(File { path, text }) = file else {
        return Ok(Loaded::default());
    };
    let shown = path.display().to_string();
    parse(&text, &shown, catalog).map(|mut l| {
        l.path = Some(path);
        l
    })
}

pub fn parse(text: &str, shown: &str, catalog: &Catalog) -> Result<Loaded, String> {
    let c: Config = toml::from_str(text).map_err(|e| {
        let e: toml::de::Error = e;
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        format!("{shown}{at}: {}", e.message().trim())
    })?;
    for (id, reason) in &c.skip {
        if catalog.get(id).is_none() {
            return Err(unknown_id(catalog, id, "skip", shown));
        }
        if reason.trim().is_empty() {
            return Err(format!(
                "{shown}: [skip] {id:?} needs a reason (it is shown in the report)"
            ));
        }
    }
    for id in c.severity.keys() {
        if catalog.get(id).is_none() {
            return Err(unknown_id(catalog, id, "severity", shown));
        }
    }
    let timeout = match &c.timeout {
        Some(t) => Some(
            crate::bounded::parse_timeout(t).map_err(|e| format!("{shown}: timeout {t:?}: {e}"))?,
        ),
        None => None,
    };
    let db_size_warning = match &c.db_size_warning {
        Some(s) => Some(parse_size(s).map_err(|e| format!("{shown}: db_size_warning: {e}"))?),
        None => None,
    };
    Ok(Loaded {
        path: None,
        timeout,
        db_size_warning,
        namespace: c.namespace,
        release: c.release,
        skip: c.skip,
        severity: c.severity,
        redact: c.redact.patterns,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn sizes_are_said_in_one_unit_rule() {
        use super::human_size;
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(8_192), "8.2 kB");
        assert_eq!(human_size(999_960), "1.0 MB");
        assert_eq!(human_size(1_500_000), "1.5 MB");
        assert_eq!(human_size(20_000_000_000), "20.0 GB");
        // What parse_size reads back is what was said.
        assert_eq!(
            super::parse_size(&human_size(1_500_000)).unwrap(),
            1_500_000
        );
    }

    use super::*;

    fn p(text: &str) -> Result<Loaded, String> {
        parse(text, "cfg.toml", Catalog::builtin())
    }

    #[test]
    fn a_full_file() {
        let l = p("timeout = \"10s\"\nnamespace = \"prefect\"\nrelease = \"prod\"\n\
                   [skip]\n\"db.timezone\" = \"managed\"\n[severity]\n\"prefect.cli-config\" = \"info\"\n")
        .unwrap();
        assert_eq!(l.timeout, Some(Duration::from_secs(10)));
        assert_eq!(l.skip["db.timezone"], "managed");
        assert_eq!(l.severity["prefect.cli-config"], Severity::Info);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1.5 MiB"), Ok(1_572_864));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(
            parse_size("10 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("0").is_err());
        assert!(
            p("db_size_warning = \"lots\"")
                .unwrap_err()
                .contains("db_size_warning")
        );
        assert_eq!(
            p("db_size_warning = \"2GB\"").unwrap().db_size_warning,
            Some(2_000_000_000)
        );
    }

    #[test]
    fn mistakes_are_errors() {
        let e = p("timeuot = \"1s\"").unwrap_err();
        assert!(e.contains("unknown field `timeuot`"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        let e = p("[skip]\n\"db.pasword\" = \"x\"").unwrap_err();
        assert!(e.contains("did you mean db.password?"), "{e}");
        let e = p("[skip]\n\"db.password\" = \"  \"").unwrap_err();
        assert!(e.contains("needs a reason"), "{e}");
        let e = p("[severity]\n\"db.password\" = \"fatal\"").unwrap_err();
        assert!(e.contains("fatal"), "{e}");
        let e = p("timeout = \"soon\"").unwrap_err();
        assert!(e.contains("timeout \"soon\""), "{e}");
    }
}
