//! Hostile input, end to end on the built binary: a canary secret in every place a secret can enter
//! (flags, values files, the UI's settings.json, redirects, proxies, kubeconfig exec plugins), servers
//! that send control characters, unbounded or malformed answers, and inputs meant to crash or exhaust
//! the program. Each class of the trust promises has its mechanism proven here, not each example.

use crate::support;

use std::{
    io::{Read as _, Write as _},
    time::Duration,
};

use serde_json::{Value, json};
use support::{
    check, doctor,
    http::{Apollo, Reply, Server, ui_answer},
    kube::{Cluster, release_secret},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
    run_once, run_sub,
};

/// A canary that only the run learns (from a server or a plugin), never given up front.
const LEARNED: &str = "learned-Secr3t-k4p2w";

fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every ESC in `out` starts an SGR colour sequence of our own; no other control character but
/// `\n` appears.
fn only_our_escapes(out: &str) {
    let mut rest = out;
    while let Some(i) = rest.find('\x1b') {
        let after = &rest[i + 1..];
        let sgr = after.starts_with('[')
            && after[1..].find('m').is_some_and(|m| {
                after[1..1 + m]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';')
            });
        assert!(
            sgr,
            "a raw escape sequence reached the output: {:?}",
            &after[..after.len().min(40)]
        );
        rest = after;
    }
    for c in out.chars() {
        assert!(
            c == '\n' || c == '\x1b' || !c.is_control(),
            "control character {c:?} in the output:\n{out}"
        );
    }
}

/// Writes a kubeconfig for the API server at `server` (cluster extra lines, user body) into `dir`.
fn kubeconfig(dir: &std::path::Path, server: &str, cluster_extra: &str, user: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n    server: {server}\n{cluster_extra}\
             contexts:\n- name: t\n  context:\n    cluster: t\n    user: t\nusers:\n- name: t\n  user:{user}\n"
        ),
    )
    .expect("kubeconfig");
    path.display().to_string()
}

/// The message of `api.reachable` for the API at `base`/graphql.
fn api_reachable(base: &str) -> String {
    let run = check(
        &[
            "--timeout",
            "2s",
            "--api-url",
            &format!("{base}/graphql"),
            "--only",
            "api.reachable",
        ],
        &[],
    );
    run.message("api.reachable").to_string()
}

mod kube_answers;
mod local;
mod secrets;
mod servers;
