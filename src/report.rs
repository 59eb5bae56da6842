//! The report model: plain data produced by the engine and turned into text/JSON (and later JUnit and
//! SARIF) by the renderers in `src/render/`.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Severity;

/// The JSON report's schema version. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }

    /// Did the check succeed well enough for checks that depend on it to run?
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's result, as it appears in every report format.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub area: String,
    pub severity: Severity,
    pub status: Status,
    pub message: String,
    pub evidence: Map<String, Value>,
    /// The catalog fix with placeholders filled; only on warn and fail.
    pub fix: Option<String>,
    pub docs: String,
    pub duration_ms: u64,
    /// Where in the user's files the finding is (preflight findings in a values file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A place in a file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
                Status::Error => s.error += 1,
            }
        }
        s
    }

    /// The exit-code contract: 0 = no fail and no error (warnings allowed); 1 = any fail or error, or
    /// any warn with `--strict`.
    pub fn exit_code(&self, strict: bool) -> i32 {
        if self.fail > 0 || self.error > 0 || (strict && self.warn > 0) {
            1
        } else {
            0
        }
    }
}

/// The Helm release the report is about, when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

/// A target the run looked at, shown in the report header (secrets already masked).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub kind: String,
    pub address: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    pub targets: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// Things the reader must know about how the run was made (`--insecure` …).
    pub notices: Vec<String>,
    pub results: Vec<CheckResult>,
    pub summary: Summary,
    pub exit_code: i32,
    /// Wall time of the run; not part of the JSON (it would make reports unstable to diff).
    #[serde(skip)]
    pub elapsed_ms: u64,
    /// Warnings fail the run (`--strict`).
    #[serde(skip)]
    pub strict: bool,
}

impl Report {
    pub fn new(
        command: &str,
        targets: Vec<Target>,
        results: Vec<CheckResult>,
        strict: bool,
        elapsed_ms: u64,
    ) -> Report {
        let summary = Summary::of(&results);
        Report {
            schema_version: SCHEMA_VERSION,
            command: command.to_string(),
            targets,
            notices: Vec::new(),
            release: None,
            exit_code: summary.exit_code(strict),
            results,
            summary,
            elapsed_ms,
            strict,
        }
    }
}

impl Report {
    pub fn with_notices(mut self, notices: Vec<String>) -> Report {
        self.notices = notices;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status) -> CheckResult {
        CheckResult {
            id: "x".into(),
            title: "x".into(),
            area: "database".into(),
            severity: Severity::Error,
            status,
            message: String::new(),
            evidence: Map::new(),
            fix: None,
            docs: String::new(),
            duration_ms: 0,
            location: None,
        }
    }

    #[test]
    fn exit_code_contract_over_every_status_combination() {
        use Status::*;
        let all = [Pass, Warn, Fail, Skip, Error];
        // Every subset of statuses, with and without --strict.
        for mask in 0u32..(1 << all.len()) {
            let statuses: Vec<Status> = (0..all.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| all[i])
                .collect();
            let results: Vec<CheckResult> = statuses.iter().map(|s| result(*s)).collect();
            let summary = Summary::of(&results);
            let bad = statuses.contains(&Fail) || statuses.contains(&Error);
            let warn = statuses.contains(&Warn);
            assert_eq!(summary.exit_code(false), i32::from(bad), "{statuses:?}");
            assert_eq!(
                summary.exit_code(true),
                i32::from(bad || warn),
                "{statuses:?} strict"
            );
        }
    }
}
