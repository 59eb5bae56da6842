//! The API and UI side, end to end on the built binary, against in-process servers that answer as
//! Prefect's Apollo and the UI's nginx do: one scenario per failure, and a healthy install.

use crate::support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::{
    check, doctor,
    http::{Apollo, Hit, Reply, Server, default_backend, nginx_404, spa_fallback, ui, ui_answer},
    result_of,
};

const CANARY: &str = "Canary-Basic-Auth-7f3e9c";

/// `--api-url`, `--ui-url` and the rest, with the database left out.
fn probe(api: Option<&str>, ui_url: Option<&str>, extra: &[&str]) -> support::Run {
    let mut args: Vec<&str> = vec!["--timeout", "2s"];
    if let Some(a) = api {
        args.extend(["--api-url", a]);
    }
    if let Some(u) = ui_url {
        args.extend(["--ui-url", u]);
    }
    args.extend_from_slice(extra);
    check(&args, &[CANARY])
}

fn graphql(s: &Server) -> String {
    format!("{}/graphql", s.url)
}

fn evidence<'a>(run: &'a support::Run, id: &str, key: &str) -> &'a Value {
    &run.result(id)["evidence"][key]
}

mod api;
mod prefect_cli;
mod ui;
