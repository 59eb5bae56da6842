//! Hostile Kubernetes answers: oversized, garbage releases, endless discovery, odd replies.

use super::*;

#[test]
fn an_oversized_kubernetes_answer_is_cut_off() {
    // An "API server" whose every answer is 20 MiB.
    let huge = Server::start(|_| {
        let mut body =
            b"{\"kind\":\"SecretList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[".to_vec();
        body.extend(std::iter::repeat_n(b' ', 20 * 1024 * 1024));
        body.extend_from_slice(b"]}");
        Reply::new(200, "application/json", body)
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &huge.url, "", " {}");
    let run = check(
        &[
            "--timeout",
            "5s",
            "--kubeconfig",
            &kc,
            "--only",
            "kube.release",
        ],
        &[],
    );
    assert!(
        run.message("kube.release").contains("larger than 16 MiB"),
        "{}",
        run.message("kube.release")
    );
}

fn garbage_releases(n: usize) -> Cluster {
    let mut c = Cluster::default();
    for i in 0..n {
        c.objects.push(release_secret(
            &format!("junk{i}"),
            "default",
            1,
            "deployed",
            "H4sI////garbage%%%",
        ));
    }
    c
}

#[test]
fn release_discovery_is_bounded_in_requests_time_and_words() {
    // 3,000 unreadable releases: at most 50 are read, and the report says so in a short line.
    let server = garbage_releases(3_000).start();
    let kube_release = |server: &support::kube_server::KubeServer, timeout: &str| {
        let (_, out, err, elapsed) = run_once(&[
            "check",
            "-o",
            "json",
            "--timeout",
            timeout,
            "--kubeconfig",
            &server.kubeconfig(),
            "--only",
            "kube.release",
        ]);
        let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        let msg = support::result_in(&j, "kube.release")["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let reads = server
            .hits()
            .iter()
            .filter(|h| h.path.contains("/secrets/sh.helm.release"))
            .count();
        (msg, reads, elapsed)
    };
    let (msg, reads, _) = kube_release(&server, "5s");
    assert!(reads <= 50, "{reads} release reads");
    assert!(
        msg.contains("2950 more not read") && msg.len() < 2_100,
        "{msg}"
    );
    drop(server);
    // 30 releases that take a second each to read, under --timeout 2s: one deadline for them all.
    let mut c = garbage_releases(30);
    c.slow_release_reads = Some(Duration::from_secs(1));
    let server = c.start();
    let (msg, reads, elapsed) = kube_release(&server, "2s");
    assert!(msg.contains("not read within 2s"), "{msg}");
    // A deadline, not a benchmark: sequential reads would take 30 s.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    assert!(reads < 30, "{reads} release reads");
}

#[test]
fn clear_messages_for_odd_answers() {
    let apollo = Server::start(|hit| {
        if hit.method == "POST" {
            Reply::json(200, &json!(["not", "an", "object"]))
        } else {
            Reply::new(404, "text/plain", "no")
        }
    });
    let msg = api_reachable(&apollo.url);
    assert!(
        msg.contains("JSON that is not a GraphQL answer") && !msg.contains("not JSON"),
        "{msg}"
    );
    // Over 100 response headers.
    let crowded = Server::start(|_| {
        let mut r = Reply::json(200, &json!({"data": {"hello": "👋"}}));
        for i in 0..120 {
            r = r.header(&format!("x-h{i}"), "v");
        }
        r
    });
    let msg = api_reachable(&crowded.url);
    assert!(
        msg.contains("more than 100 headers") && !msg.contains("scheme"),
        "{msg}"
    );
    // HTML from the Kubernetes API (a login portal in front of it).
    let portal = Server::start(|_| {
        Reply::new(
            200,
            "text/html",
            "<html><head><title>Sign in</title></head></html>",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &portal.url, "", " {}");
    let run = check(
        &[
            "--timeout",
            "2s",
            "--kubeconfig",
            &kc,
            "--only",
            "kube.release",
        ],
        &[],
    );
    let msg = run.message("kube.release");
    assert!(
        msg.contains("not Kubernetes JSON") && !msg.contains("line 1 column 1"),
        "{msg}"
    );
    // A duplicate key in a values file: no parser-library advice.
    let dup = dir.path().join("dup.yaml");
    std::fs::write(&dup, "ui:\n  a: 1\n  a: 2\n").unwrap();
    let run = run_sub("preflight", &["-f", dup.to_str().unwrap()], &[]);
    let msg = run.message("values.parse");
    assert!(
        msg.contains("appears twice") && !msg.contains("Options"),
        "{msg}"
    );
}
