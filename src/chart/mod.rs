//! What prefect-doctor knows of the Prefect Server Helm chart: its releases as Helm stores them
//! ([`release`]: decoding, coalescing, the database wiring of both value generations), and its values
//! as `helm install` reads them ([`values`]: files with key locations, `--set`). No I/O.

pub mod facts;
pub mod release;
pub mod set;
pub mod values;

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
