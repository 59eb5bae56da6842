//! What only the in-test API server can be made to answer: release encodings real Helm does not
//! write (plain JSON) and a silent server.

use super::*;

#[test]
fn release_statuses_encodings_and_choices() {
    let install = Install::healthy();
    // A stuck upgrade: revision 2 pending over a deployed revision 1.
    let mut c = install.cluster(json!({}));
    let payload = helm_encode(&release_json(
        "prefect",
        "default",
        2,
        "pending-upgrade",
        json!({}),
    ));
    c.objects.push(release_secret(
        "prefect",
        "default",
        2,
        "pending-upgrade",
        &payload,
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "fail");
    assert!(
        run.message("kube.release")
            .contains("revision 2 in namespace default is stuck in pending-upgrade"),
        "{}",
        run.message("kube.release")
    );
    assert!(
        run.fix("kube.release")
            .contains("helm rollback prefect <LAST DEPLOYED REVISION> -n default")
    );
    assert_read_only(&server);
    drop(server);

    // An old, uncompressed release next to a garbage one: the garbage is passed over.
    let mut c = install.cluster(json!({}));
    c.remove("Secret", "sh.helm.release.v1.prefect.v1");
    let plain = b64(release_json("prefect", "default", 1, "deployed", json!({}))
        .to_string()
        .as_bytes());
    c.objects
        .push(release_secret("prefect", "default", 1, "deployed", &plain));
    c.objects.push(release_secret(
        "junk",
        "default",
        1,
        "deployed",
        "H4sI////garbage%%%",
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "pass", "{}", run.text);
    let run2 = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--release",
        "junk",
        "--only",
        "kube.release",
    ]);
    let j: Value = serde_json::from_str(&run2.1).expect("json");
    let r = support::result_in(&j, "kube.release");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("cannot read release junk"),
        "{r}"
    );
    assert_read_only(&server);
    drop(server);

    // Two Prefect releases: pick one.
    let mut c = install.cluster(json!({}));
    let payload = helm_encode(&release_json(
        "prefect2",
        "default",
        1,
        "deployed",
        json!({}),
    ));
    c.objects.push(release_secret(
        "prefect2", "default", 1, "deployed", &payload,
    ));
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.release"]);
    assert_eq!(run.status("kube.release"), "fail");
    assert!(
        run.message("kube.release")
            .contains("2 Prefect Server releases found: prefect (namespace default"),
        "{}",
        run.message("kube.release")
    );
    assert!(run.fix("kube.release").contains("--release NAME"));
    let run = run_once(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        &server.kubeconfig(),
        "--release",
        "prefect",
        "--only",
        "kube.release",
    ]);
    assert!(run.1.contains("\"status\": \"pass\""), "{}", run.1);
    assert_read_only(&server);
}

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
