//! What only the in-test API server can be made to answer: a server that accepts the connection
//! and never says a word.

use super::*;

#[test]
fn a_silent_api_server_costs_one_timeout() {
    let server = Cluster {
        hang: true,
        ..Cluster::default()
    }
    .start();
    let (code, out, err, took) = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--timeout",
        "1s",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let r = support::result_in(&j, "kube.release");
    assert_eq!(r["status"], "error", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1s"),
        "{r}"
    );
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // Found only through KUBECONFIG (not asked for): fall back to the local defaults, say so.
    let through = |kubeconfig: &str| -> Value {
        let out = support::doctor()
            .env("KUBECONFIG", kubeconfig)
            .args([
                "check",
                "-o",
                "json",
                "--timeout",
                "1s",
                "--only",
                "kube.release",
            ])
            .output()
            .expect("run");
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let j = through(&server.kubeconfig());
    assert_eq!(
        support::result_in(&j, "kube.release")["status"],
        "skip",
        "{j}"
    );
    assert!(j["notices"].to_string().contains("out of reach"), "{j}");
    // A KUBECONFIG list naming a file that does not exist: kubectl skips it and reads the rest;
    // so does the doctor (it reaches the same, silent, API server).
    let j = through(&format!("/nonexistent/none:{}", server.kubeconfig()));
    let notices = j["notices"].to_string();
    assert!(
        notices.contains("out of reach") && !notices.contains("cannot load"),
        "{j}"
    );
}
