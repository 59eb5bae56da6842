//! What `fix` reports: the plan made from a check run and, with `--apply`, what became of it.

use serde::Serialize;

use super::{Conn, Step, apply::Applied};
use crate::report::{Report, Status};

/// What `fix` will do (or did) about one check that did not pass.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub check: String,
    pub title: String,
    /// The check's status in the run the plan was made from.
    pub status: Status,
    pub message: String,
    pub action: Action,
    /// Whom the statements run as (automatic and blocked entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<Conn>,
    /// Why that connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_why: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Why an automatic fix cannot be applied here and now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// The printed fix, for a fix that is not automatic or is blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Planned: `--apply` runs it.
    Automatic,
    /// Automatic, but not here and now (`blocked` says why).
    Blocked,
    /// Not automatic: the printed fix is for a person (passwords, values, Kubernetes objects).
    Manual,
}

/// What became of an applied entry.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub check: String,
    #[serde(flatten)]
    pub applied: Applied,
    /// The user the statements ran as, or the API's URL.
    pub user: String,
    /// `fixed`, `fixed elsewhere` (this run's change did not take, but the check passes now:
    /// another session made it), `still failing` or `not applied`.
    pub result: String,
    /// The check's status when run again (absent when it was not run again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck: Option<Status>,
    /// The check's message when run again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What to do next when it did not work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    pub schema_version: u32,
    pub command: &'static str,
    /// `dry-run` or `apply`.
    pub mode: &'static str,
    /// The check run the plan was made from (the JSON report `check` writes).
    pub report: Report,
    pub plan: Vec<Entry>,
    /// With `--apply`: one per automatic entry, in order (absent on a dry run, empty when
    /// declined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<Outcome>>,
    pub exit_code: i32,
}

impl FixReport {
    /// The number of statements `--apply` would run.
    pub fn changes(&self) -> usize {
        self.plan
            .iter()
            .filter(|e| e.action == Action::Automatic)
            .map(|e| e.steps.len())
            .sum()
    }

    /// Escapes the text that came from outside (server messages, names in statements) for display
    /// and caps it, as [`Report::sanitized`] does for the check run.
    pub fn sanitized(mut self) -> FixReport {
        use crate::untrusted::{MAX_FIX, MAX_MESSAGE, cap, escape_multiline, line};
        let one = |s: &mut String| *s = line(&crate::redact::scrub(s), MAX_MESSAGE);
        let many = |s: &mut String| *s = cap(&escape_multiline(&crate::redact::scrub(s)), MAX_FIX);
        self.report = self.report.sanitized();
        for e in &mut self.plan {
            one(&mut e.message);
            for s in &mut e.steps {
                one(&mut s.statement);
                for t in [&mut s.replaces, &mut s.undo].into_iter().flatten() {
                    one(t);
                }
            }
            for t in [&mut e.blocked, &mut e.connection_why]
                .into_iter()
                .flatten()
            {
                one(t);
            }
            if let Some(f) = &mut e.fix {
                many(f);
            }
        }
        for o in self.applied.iter_mut().flatten() {
            one(&mut o.user);
            for t in [&mut o.message, &mut o.hint].into_iter().flatten() {
                one(t);
            }
            match &mut o.applied {
                Applied::Committed => {}
                Applied::RolledBack { error, .. }
                | Applied::NotRun { error }
                | Applied::Unknown { error } => one(error),
            }
        }
        self
    }
}
