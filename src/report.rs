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
    /// `builtin`, or the file a user check was read from.
    pub source: String,
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
    /// The line as the user wrote it, with a caret under the column (`12 | text` then ` | ^`):
    /// built with its secrets masked ([`crate::redact::snippet`]); shown under the finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

/// A target the run looked at, shown in the report header (secrets already masked).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    /// When the run ended, in seconds since the Unix epoch; not part of the JSON either.
    #[serde(skip)]
    pub finished_unix: i64,
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
            finished_unix: jiff::Timestamp::now().as_second(),
        }
    }
}

impl Report {
    /// The report as renderers may see it: every string escaped ([`crate::untrusted::escape`]) and
    /// capped, every evidence list cut to [`crate::untrusted::MAX_LIST`] items. Renderers are only
    /// ever given a sanitized report, so no check can bring a server's raw bytes to a terminal or
    /// break a JUnit/SARIF document, and a report stays readable whatever a server sent.
    pub fn sanitized(self) -> Report {
        use crate::untrusted::{MAX_EVIDENCE_STRING, MAX_FIX, MAX_MESSAGE, escape_multiline};
        // Secrets are masked before anything is cut: a cut through one would leave a part that
        // no longer matches it.
        let line = |s: &str, max: usize| crate::untrusted::line(&crate::redact::scrub(s), max);
        let mut r = self;
        for t in &mut r.targets {
            t.kind = line(&t.kind, MAX_MESSAGE);
            t.address = line(&t.address, MAX_MESSAGE);
            t.source = line(&t.source, MAX_MESSAGE);
        }
        if let Some(rel) = &mut r.release {
            rel.name = line(&rel.name, MAX_EVIDENCE_STRING);
            rel.namespace = line(&rel.namespace, MAX_EVIDENCE_STRING);
        }
        for n in &mut r.notices {
            *n = line(n, MAX_MESSAGE);
        }
        for res in &mut r.results {
            res.message = line(&res.message, MAX_MESSAGE);
            res.fix = res.fix.as_ref().map(|f| {
                crate::untrusted::cap(&escape_multiline(&crate::redact::scrub(f)), MAX_FIX)
            });
            res.source = line(&res.source, MAX_EVIDENCE_STRING);
            if let Some(l) = &mut res.location {
                l.file = line(&l.file, MAX_EVIDENCE_STRING);
                // Lines of our own making (each starts with its gutter); their text was escaped
                // as they were built.
                l.snippet = l.snippet.as_ref().map(|s| {
                    crate::untrusted::cap(&escape_multiline(&crate::redact::scrub(s)), MAX_FIX)
                });
            }
            let evidence = std::mem::take(&mut res.evidence);
            res.evidence = match sanitize_value(Value::Object(evidence)) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
        }
        r
    }

    pub fn with_notices(mut self, notices: Vec<String>) -> Report {
        self.notices = notices;
        self
    }
}

/// Escapes and caps every string in `v` (keys too) and cuts long lists, without recursion: a
/// server's deeply nested answer cannot exhaust the stack.
pub fn sanitize_value(v: Value) -> Value {
    use crate::untrusted::{MAX_EVIDENCE_STRING, MAX_LIST, line};
    fn leaf(v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(line(&crate::redact::scrub(&s), MAX_EVIDENCE_STRING)),
            other => other,
        }
    }
    // Post-order rebuild with an explicit stack of partly built containers.
    enum Frame {
        Arr(Vec<Value>, std::vec::IntoIter<Value>, usize),
        Obj(
            Map<String, Value>,
            serde_json::map::IntoIter,
            Option<String>,
        ),
    }
    let open = |v: Value| -> Result<Frame, Value> {
        match v {
            Value::Array(a) => {
                let extra = a.len().saturating_sub(MAX_LIST);
                let mut a = a;
                a.truncate(MAX_LIST);
                Ok(Frame::Arr(Vec::new(), a.into_iter(), extra))
            }
            Value::Object(m) => Ok(Frame::Obj(Map::new(), m.into_iter(), None)),
            other => Err(leaf(other)),
        }
    };
    let mut stack = match open(v) {
        Ok(f) => vec![f],
        Err(done) => return done,
    };
    let mut finished: Option<Value> = None;
    loop {
        let Some(top) = stack.last_mut() else {
            return finished.unwrap_or(Value::Null);
        };
        // Place the value just finished into its parent.
        if let Some(done) = finished.take() {
            match top {
                Frame::Arr(out, _, _) => out.push(done),
                Frame::Obj(out, _, key) => {
                    let k = key.take().unwrap_or_default();
                    out.insert(k, done);
                }
            }
        }
        let next = match top {
            Frame::Arr(_, it, _) => it.next(),
            Frame::Obj(_, it, key) => it.next().map(|(k, v)| {
                *key = Some(line(&k, MAX_EVIDENCE_STRING));
                v
            }),
        };
        match next {
            Some(child) => match open(child) {
                Ok(f) => stack.push(f),
                Err(done) => finished = Some(done),
            },
            None => {
                finished = Some(match stack.pop() {
                    Some(Frame::Arr(mut out, _, extra)) => {
                        if extra > 0 {
                            out.push(Value::String(format!("… and {extra} more")));
                        }
                        Value::Array(out)
                    }
                    Some(Frame::Obj(out, _, _)) => Value::Object(out),
                    None => Value::Null,
                });
            }
        }
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
            source: "builtin".into(),
            location: None,
        }
    }

    #[test]
    fn a_secret_across_the_cap_is_masked_before_the_cut() {
        crate::redact::register("zq-straddle-secret-zq");
        let mut r = result(Status::Fail);
        let pad = crate::untrusted::MAX_MESSAGE - 8;
        r.message = "x".repeat(pad) + "zq-straddle-secret-zq and more";
        r.evidence.insert(
            "e".into(),
            serde_json::json!("y".repeat(pad) + "zq-straddle-secret-zq"),
        );
        let report = Report::new("check", vec![], vec![r], false, 0).sanitized();
        let res = &report.results[0];
        assert!(
            !res.message.contains("zq-strad"),
            "{}",
            &res.message[pad - 4..]
        );
        assert!(res.message[pad..].starts_with("****"));
        assert!(!res.evidence["e"].to_string().contains("zq-strad"));
    }

    #[test]
    fn sanitized_reports_hold_no_control_character_and_stay_bounded() {
        let mut r = result(Status::Fail);
        r.message = "x\r\n✔ db.password forged\x1b]0;title\x07".to_string() + &"y".repeat(10_000);
        r.fix = Some("line 1\nline 2 \x1b[2J".to_string());
        let mut deep = serde_json::json!("leaf\x1b");
        // As deep as serde_json lets a server's answer be (its recursion limit is 128).
        for _ in 0..127 {
            deep = serde_json::json!([deep]);
        }
        r.evidence.insert("deep".into(), deep);
        r.evidence.insert(
            "list".into(),
            serde_json::json!((0..500).collect::<Vec<_>>()),
        );
        let report = Report::new("check", vec![], vec![r], false, 0).sanitized();
        let res = &report.results[0];
        assert!(
            res.message
                .starts_with("x\\r\\n✔ db.password forged\\x1b]0;title\\x07")
        );
        assert!(
            res.message.ends_with("bytes cut)"),
            "{}",
            &res.message[1900..]
        );
        assert_eq!(res.fix.as_deref(), Some("line 1\nline 2 \\x1b[2J"));
        assert_eq!(res.evidence["list"].as_array().map(Vec::len), Some(51));
        let text = serde_json::to_string(&res.evidence["list"]).unwrap();
        assert!(text.ends_with(r#""… and 450 more"]"#), "{text}");
        // Deep nesting survives (no recursion) and its leaf is escaped.
        let mut v = &res.evidence["deep"];
        while let Some(a) = v.as_array() {
            v = &a[0];
        }
        assert_eq!(v, "leaf\\x1b");
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
