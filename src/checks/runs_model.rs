//! What the runs checks know of the server's runs and agents, whether read from the database or
//! through the API: agents, late runs, and label lists as the server stores them.

use std::collections::BTreeSet;

use serde_json::Value;

/// A label list as the server stores it (JSON text): an array of strings; `Err` says what it is
/// instead.
pub(super) fn labels(text: &str, what: &str) -> Result<BTreeSet<String>, String> {
    match serde_json::from_str::<Value>(text) {
        // Said as the server wrote it.
        Ok(v) => label_list(&v, what).map_err(|_| not_labels(text, what)),
        Err(_) => Err(not_labels(text, what)),
    }
}

/// A label list as the API gives it: an array of strings; `Err` says what it is instead.
pub(super) fn label_list(v: &Value, what: &str) -> Result<BTreeSet<String>, String> {
    let bad = || not_labels(&v.to_string(), what);
    match v {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn not_labels(text: &str, what: &str) -> String {
    format!(
        "{what} holds {}, not a JSON array of strings; the server cannot match it to agents either",
        crate::untrusted::cap(text, 100)
    )
}

pub(super) struct Agent {
    pub name: String,
    pub labels: BTreeSet<String>,
    pub live: bool,
    /// Seconds since it last polled (`None`: never).
    pub idle: Option<i64>,
}

/// What the server's tables say about late runs, read from the database or through the API.
pub(super) struct Late {
    pub count: i64,
    /// Seconds the oldest late run is past its start.
    pub oldest: i64,
    /// The late runs' label sets, most runs first, with how many runs carry each.
    pub label_sets: Vec<(BTreeSet<String>, i64)>,
    pub agents: Vec<Agent>,
    /// Whether the server has an agent table at all.
    pub has_agents: bool,
    /// `sql` or `api`, and the words saying so.
    pub path: &'static str,
    pub whence: String,
}
