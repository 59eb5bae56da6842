//! `--journal FILE`: one JSON line per statement `fix --apply` ran (or meant to run), appended, so a
//! change can be audited and undone: when, which check, the statement, as whom, what became of it,
//! what it replaced and the statement that puts it back. Every string is scrubbed of secrets.

use std::{fs::File, io::Write, path::Path};

use serde::Serialize;
use serde_json::Value;

use super::{Conn, Step, apply::Applied};

/// An open journal file.
pub struct Journal {
    file: File,
    path: String,
}

/// One line of the journal.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// RFC 3339, UTC.
    pub time: String,
    pub check: &'a str,
    pub statement: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variables: Option<&'a Value>,
    pub connection: Conn,
    /// The database user it ran as, or the API's URL.
    pub user: &'a str,
    /// `applied`, `failed`, `rolled back`, `not run` or `unknown`.
    pub result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<&'a str>,
}

impl Journal {
    /// Opens `path` for appending (creating it); `Err` is a usage error, before anything is changed.
    pub fn open(path: &Path) -> Result<Journal, String> {
        let file = crate::bounded::open_for_write(path, true, "--journal")?.file;
        Ok(Journal {
            file,
            path: path.display().to_string(),
        })
    }

    /// Appends one line per step of a check that ended as `applied`.
    pub fn record(
        &mut self,
        check: &str,
        conn: Conn,
        user: &str,
        steps: &[Step],
        applied: &Applied,
    ) -> Result<(), String> {
        let time = jiff::Timestamp::now().to_string();
        let error = match applied {
            Applied::Committed => None,
            Applied::RolledBack { error, .. }
            | Applied::NotRun { error }
            | Applied::Unknown { error } => Some(error.as_str()),
        };
        let mut text = String::new();
        for (i, step) in steps.iter().enumerate() {
            let result = applied.step_result(i);
            let line = Line {
                time: time.clone(),
                check,
                statement: &step.statement,
                variables: step.variables.as_ref(),
                connection: conn,
                user,
                result,
                // The error belongs to the statement that failed, or to all when none did.
                error: match applied {
                    Applied::RolledBack { failed, .. } if *failed != i => None,
                    _ => error,
                },
                replaces: step.replaces.as_deref(),
                // Only a change that was (or may have been) made has something to undo.
                undo: step
                    .undo
                    .as_deref()
                    .filter(|_| matches!(result, "applied" | "unknown")),
            };
            let json = serde_json::to_string(&line).map_err(|e| e.to_string())?;
            text.push_str(&crate::redact::scrub(&json));
            text.push('\n');
        }
        // One write per check: lines of a check are never interleaved with another's.
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("cannot write the journal {}: {e}", self.path))
    }
}
