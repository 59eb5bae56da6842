//! The kube path on the real control plane (kube-apiserver, etcd, Helm, and kwok as the kubelet;
//! `tests/cluster/build`): `prefect-doctor check` of a Helm release, beside the chart README's
//! Troubleshooting section done by hand against the same release: `kubectl get secret` and a
//! base64 decode, `kubectl port-forward` to the database, one `psql` per query, `kubectl
//! port-forward` to Apollo and the UI and a `curl` of each. Both as whole processes, paired in each
//! round (by hand, then the doctor), on the same release.
//!
//!     cargo bench --bench kube_vs_by_hand
//!
//! Prints the mean of each and the ratio (target, issue 34: the doctor at most 0.2 of by hand).

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    cluster,
    kubelet::{Scenario, running_release},
    pg::bin_dir,
    prefect::APP_USER,
};

/// The README's queries, one psql each, as a user types them.
const QUERIES: &[&str] = &[
    "SELECT version();",
    "SELECT extname, extversion FROM pg_extension WHERE extname IN ('pgcrypto', 'pg_trgm');",
    "SHOW timezone;",
    "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'hdb_catalog';",
    "SELECT proname, proowner::regrole FROM pg_proc WHERE pronamespace::regnamespace::text = 'hdb_catalog';",
    "SELECT count(*) FROM tenant;",
];

/// `kubectl port-forward` in the background until it says it listens; its local port.
fn port_forward(kubectl: &Command, target: &str, port: u16) -> (Child, u16) {
    let mut cmd = Command::new(kubectl.get_program());
    cmd.args(kubectl.get_args())
        .args(["port-forward", target, &format!(":{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("kubectl port-forward");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("kubectl port-forward says where it listens");
    // "Forwarding from 127.0.0.1:41234 -> 5432"
    let local: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("kubectl port-forward said {line:?}"));
    (child, local)
}

fn by_hand(kubectl: &Command, psql: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new(kubectl.get_program())
            .args(kubectl.get_args())
            .args(args)
            .output()
            .expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?}");
        out.stdout
    };
    let b64 = run(&[
        "get",
        "secret",
        "prefect-postgresql",
        "-o",
        "jsonpath={.data.password}",
    ]);
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(&b64)?;
            c.wait_with_output()
        })
        .expect("base64 -d");
    let password = String::from_utf8(decoded.stdout).expect("password");
    let (mut db, db_port) = port_forward(kubectl, "svc/prefect-postgresql", 5432);
    for q in QUERIES {
        let status = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &db_port.to_string(),
                "-U",
                APP_USER,
                "-d",
                "prefect",
                "-Atc",
                q,
            ])
            .env("PGPASSWORD", &password)
            .stdout(Stdio::null())
            .status()
            .expect("psql");
        assert!(status.success(), "psql {q}");
    }
    let _ = db.kill();
    let _ = db.wait();
    let (mut api, api_port) = port_forward(kubectl, "svc/prefect-apollo", 4200);
    let status = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"query":"query { hello }"}"#,
            &format!("http://127.0.0.1:{api_port}/graphql"),
        ])
        .status()
        .expect("curl");
    assert!(status.success(), "curl the API");
    let _ = api.kill();
    let _ = api.wait();
    let (mut ui, ui_port) = port_forward(kubectl, "svc/prefect-ui", 8080);
    let status = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{ui_port}/settings.json"),
        ])
        .status()
        .expect("curl");
    assert!(status.success(), "curl settings.json");
    let _ = ui.kill();
    let _ = ui.wait();
}

fn main() {
    let iterations: u32 = if std::env::args().any(|a| a == "--bench") {
        10
    } else {
        1
    };
    let Some(cp) = cluster::shared() else {
        println!("kube_vs_by_hand: no real control plane built (tests/cluster/build); skipped");
        return;
    };
    let r = running_release(cp, "bench", Scenario::default());
    let mut kubectl = Command::new(cp.bin.join("kubectl"));
    kubectl.arg("--kubeconfig").arg(&r.kubeconfig);
    let psql = bin_dir().join("psql");
    let psql = if psql.is_file() { psql } else { "psql".into() };
    let kc = r.kubeconfig.display().to_string();
    let doctor = || {
        let out = Command::new(env!("CARGO_BIN_EXE_prefect-doctor"))
            .args(["check", "-o", "json", "--kubeconfig", &kc])
            .env("HOME", "/nonexistent")
            .output()
            .expect("prefect-doctor");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    // Warm-up of both.
    by_hand(&kubectl, &psql);
    let _ = Command::new(env!("CARGO_BIN_EXE_prefect-doctor"))
        .args(["check", "-o", "json", "--kubeconfig", &kc])
        .output();
    let (mut hand, mut doc) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let t = Instant::now();
        by_hand(&kubectl, &psql);
        hand += t.elapsed();
        let t = Instant::now();
        doctor();
        doc += t.elapsed();
    }
    let (hand, doc) = (hand / iterations, doc / iterations);
    println!(
        "by hand (kubectl get secret, 3 kubectl port-forwards, {} psql, 2 curl): {:>8.1} ms (mean of {iterations})",
        QUERIES.len(),
        hand.as_secs_f64() * 1000.0
    );
    println!(
        "prefect-doctor check --kubeconfig (every check):              {:>8.1} ms",
        doc.as_secs_f64() * 1000.0
    );
    println!(
        "ratio doctor / by hand: {:.3} (target ≤ 0.2)",
        doc.as_secs_f64() / hand.as_secs_f64()
    );
    let _ = &r.pg;
}
