//! What prefect-doctor knows of the Prefect Server Helm chart: its releases as Helm stores them
//! ([`release`]: decoding, coalescing, the database wiring of both value generations), and its values
//! as `helm install` reads them ([`values`]: files with key locations, `--set`). No I/O.

pub mod facts;
pub mod release;
pub mod set;
pub mod values;
pub mod values_yaml;

/// The deepest nesting of values read (YAML files and `--set` paths alike).
pub const MAX_DEPTH: usize = 64;

/// Joins a path and a key the way findings print it (dots inside a key are escaped).
pub fn join(path: &str, key: &str) -> String {
    let key = key.replace('.', "\\.");
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Whether `v` nests at most `max` levels (walked without recursion).
pub fn depth_within(v: &serde_json::Value, max: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if depth > max {
            return false;
        }
        match v {
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (x, depth + 1))),
            serde_json::Value::Object(m) => stack.extend(m.values().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    true
}
