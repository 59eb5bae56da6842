//! prefect-doctor: diagnoses self-hosted Prefect 1 Server installs (Helm chart) and prints the chart
//! README's fix, filled in with the names it discovered.
//!
//! - [`catalog`]: the words of every check (`checks/*.toml`).
//! - [`checks`]: the logic of every check, one function per id.
//! - [`probes`]: shared connections (PostgreSQL, HTTP), opened once per run.
//! - [`targets`]: what a run looks at (database, API, UI) and where each came from.
//! - [`engine`]: runs checks concurrently with prerequisites and deadlines.
//! - [`report`] and [`render`]: the report model and its renderers (text, JSON, JUnit, SARIF,
//!   Prometheus).
//! - [`endpoint`]: the HTTP endpoint `serve` answers on (the only door *in*).

pub mod bounded;
pub mod bundle;
pub mod catalog;
pub mod chart;
pub mod checks;
pub mod cli;
pub mod config;
pub mod docs;
pub mod endpoint;
pub mod engine;
pub mod fix;
pub mod fleet_report;
pub mod http_url;
pub mod probes;
pub mod redact;
pub mod render;
pub mod report;
pub mod session;
pub mod targets;
pub mod untrusted;
pub mod user_checks;
