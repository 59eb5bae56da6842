//! `preflight` end to end on the built binary: a values fixture per finding (both chart generations),
//! `--set` parsing, `file:line:col` of every finding, hostile YAML, and an external database on the
//! real test PostgreSQL (the cluster prerequisites are on the real API server: `control_plane/`).

use crate::support;

use std::path::PathBuf;

use serde_json::Value;
use support::{
    pg::PgServer,
    prefect::{APP_USER, CANARY, create_app_role},
    run_once, run_sub,
};

const SET_CANARY: &str = "Set-Canary-Pw-4d2c8b";

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("tempdir"))
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p: PathBuf = self.0.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
}

fn preflight(args: &[&str]) -> support::Run {
    run_sub("preflight", args, &[CANARY, SET_CANARY])
}

fn at(run: &support::Run, id: &str) -> (String, u64, u64) {
    let l = &run.result(id)["location"];
    assert!(l.is_object(), "{id} has no location: {}", run.result(id));
    (
        l["file"].as_str().unwrap_or_default().to_string(),
        l["line"].as_u64().unwrap_or(0),
        l["column"].as_u64().unwrap_or(0),
    )
}

mod cluster;
mod helm_oracle;
mod values;
