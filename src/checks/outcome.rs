//! How a check ends: a [`Verdict`] and its words, evidence and fix placeholders ([`Outcome`]). The
//! engine turns an outcome into a reported result with the catalog's severity and fix.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How a check ended, before the engine applies the catalog's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A degraded state worth a warning whatever the check's severity.
    Warn,
    /// The check found the fault it looks for: `fail`, `warn` or `pass` by the catalog's severity.
    Finding,
    Skip,
    /// The check could not decide (a query failed, a time-out …).
    Error,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub message: String,
    pub evidence: Map<String, Value>,
    /// Which of the catalog's fixes applies (`None`: the default `fix`).
    pub fix_variant: Option<&'static str>,
    /// Extra placeholder values for the fix.
    pub vars: BTreeMap<String, String>,
    /// Where in the user's files the finding is.
    pub location: Option<crate::report::Location>,
}

impl Outcome {
    fn new(verdict: Verdict, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            message: message.into(),
            evidence: Map::new(),
            fix_variant: None,
            vars: BTreeMap::new(),
            location: None,
        }
    }
    pub fn pass(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Pass, m)
    }
    pub fn warn(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Warn, m)
    }
    pub fn finding(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Finding, m)
    }
    pub fn skip(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Skip, m)
    }
    pub fn error(m: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Error, m)
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Outcome {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
    pub fn fix(mut self, variant: &'static str) -> Outcome {
        self.fix_variant = Some(variant);
        self
    }
    pub fn at(mut self, location: Option<&crate::report::Location>) -> Outcome {
        if let Some(l) = location {
            self.location = Some(l.clone());
        }
        self
    }
    /// A placeholder value for the fix: one line, control characters escaped, capped.
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Outcome {
        let v = crate::untrusted::line(&value.into(), crate::untrusted::MAX_VAR);
        self.vars.insert(key.to_string(), v);
        self
    }
    /// A multi-line placeholder value: each line escaped on its own, so no outside text can add a
    /// line to the fix; at most `max` lines, then "-- … and N more".
    pub fn var_lines(mut self, key: &str, lines: &[String], max: usize) -> Outcome {
        let mut v: Vec<String> = lines
            .iter()
            .take(max)
            .map(|l| crate::untrusted::line(l, crate::untrusted::MAX_VAR))
            .collect();
        if lines.len() > max {
            v.push(format!("-- … and {} more", lines.len() - max));
        }
        self.vars.insert(key.to_string(), v.join("\n"));
        self
    }
}

/// A Kubernetes read that failed, as the check's outcome: `skip` when RBAC refused it.
pub fn kube_failed(what: &str, e: &crate::probes::kube::KubeError) -> Outcome {
    let o = match e {
        crate::probes::kube::KubeError::Forbidden { .. } => {
            Outcome::skip(format!("cannot {what}: {e}"))
        }
        _ => Outcome::error(format!("cannot {what}: {e}")),
    };
    o.with("kube_error", e.kind())
}
