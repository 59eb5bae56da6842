//! The integration suite as one test binary (the layout cargo and rust-analyzer use for theirs): one
//! build and one link against the crate instead of one per area. A module per area; the helpers of
//! each real part (PostgreSQL, the Prefect services, the Kubernetes API, serving) in `tests/support/`.
//! Run one area with `cargo test --test testsuite AREA::`.

#[path = "../support/mod.rs"]
mod support;

mod api_ui;
mod browser;
mod bundles;
mod catalog;
mod ci_gate;
mod cli;
mod control_plane;
mod db_usage;
mod fix;
mod fleet;
mod hostile;
mod hostile_snippets;
mod house;
mod kube;
mod kube_apis;
mod metrics;
mod postgres_checks;
mod prefect_oracle;
mod preflight;
mod properties;
mod runs;
mod runs_stuck;
mod serve;
mod shell;
mod tls;
mod user_checks;
mod versions;
