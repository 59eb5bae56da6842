//! Helm's releases as real Helm writes them, and the API versions a real server serves.

use super::*;

/// Helm's own view of a release: (status, revision).
fn helm_says(cp: &ControlPlane, ns: &str, release: &str) -> (String, u64) {
    let out = cp.helm_ok(&["status", release, "-n", ns, "-o", "json"]);
    let j: Value = serde_json::from_str(&out).expect("helm status json");
    (
        j["info"]["status"].as_str().unwrap_or("?").to_string(),
        j["version"].as_u64().unwrap_or(0),
    )
}

/// Runs `helm ARGS` until the release's newest Secret says `status`, then kills Helm, as a Helm
/// killed mid-operation (a CI job's timeout, a closed laptop) leaves a release.
fn interrupt_helm_at(cp: &ControlPlane, ns: &str, release: &str, status: &str, args: &[&str]) {
    let mut helm = cp
        .helm_command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("helm");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cp.kubectl_ok(&[
            "get",
            "secrets",
            "-n",
            ns,
            "-l",
            &format!("owner=helm,name={release},status={status}"),
            "-o",
            "name",
        ]);
        if !out.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "helm never reached {status} for {release}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = helm.kill();
    let _ = helm.wait();
}

#[test]
fn releases_real_helm_wrote_in_every_status_are_read_as_helm_reads_them() {
    let cp = control_plane!();
    let ns = cp.namespace("releases");
    let kc = cp.admin_in(&ns);
    let chart = cp.chart().display().to_string();

    // Installed, upgraded twice, rolled back: revision 4 deployed, the rest superseded.
    cp.install(&ns, "ok", &[]);
    for _ in 0..2 {
        cp.helm_ok(&[
            "upgrade",
            "ok",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--set",
            "ui.apolloApiUrl=http://prefect.example.com/graphql",
        ]);
    }
    cp.helm_ok(&["rollback", "ok", "1", "-n", &ns]);
    // Helm 4's default, server-side apply, refuses the chart's towel Deployment (the same env
    // variable twice in one container): the release is left failed.
    let out = cp.helm(&["install", "ssa", &chart, "-n", &ns, "--timeout", "60s"]);
    assert!(!out.status.success(), "server-side apply took the chart");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PREFECT_SERVER__HASURA__HOST"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Helm killed while it waits for the workloads (no controller manager: they never become
    // ready): pending-install, and pending-upgrade over a deployed revision.
    interrupt_helm_at(
        cp,
        &ns,
        "halfway",
        "pending-install",
        &[
            "install",
            "halfway",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--wait",
            "--timeout",
            "300s",
        ],
    );
    cp.install(&ns, "stuck", &[]);
    interrupt_helm_at(
        cp,
        &ns,
        "stuck",
        "pending-upgrade",
        &[
            "upgrade",
            "stuck",
            &chart,
            "-n",
            &ns,
            "--server-side=false",
            "--wait",
            "--timeout",
            "300s",
        ],
    );
    // Uninstalled, its history kept.
    cp.install(&ns, "gone", &[]);
    cp.helm_ok(&["uninstall", "gone", "-n", &ns, "--keep-history"]);

    // Without --release: every one of them is named, with the status Helm gives it.
    let (code, report, _) = doctor(&kc, &["--only", "kube.release"]);
    assert_eq!(code, 1);
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "fail", "{r}");
    let listed: Vec<String> = r["evidence"]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    for name in ["gone", "halfway", "ok", "ssa", "stuck"] {
        let (status, _) = helm_says(cp, &ns, name);
        let want = format!("{name} (namespace {ns}, chart 2022.12.22, {status})");
        assert!(listed.contains(&want), "{want} not in {listed:?}");
    }
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(
        r["fix"]
            .as_str()
            .is_some_and(|f| f.contains("--release NAME")),
        "{r}"
    );

    // Each by name: the revision and status Helm reports, and the verdict they deserve.
    for (name, verdict, words) in [
        ("ok", "pass", "is deployed"),
        ("ssa", "fail", "is failed"),
        ("halfway", "fail", "is stuck in pending-install"),
        ("stuck", "fail", "is stuck in pending-upgrade"),
        ("gone", "fail", "is uninstalled"),
    ] {
        let (status, revision) = helm_says(cp, &ns, name);
        let (_, report, stderr) = doctor(&kc, &["--only", "kube.release", "--release", name]);
        let r = result(&report, "kube.release");
        assert_eq!(r["status"], verdict, "{name}: {r}\n{stderr}");
        assert_eq!(r["evidence"]["status"], json!(status), "{name}: {r}");
        assert_eq!(r["evidence"]["revision"], json!(revision), "{name}: {r}");
        assert_eq!(r["evidence"]["chart_version"], "2022.12.22", "{r}");
        let m = r["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!(
                "release {name} (chart prefect-server-2022.12.22, app 2022.12.22) revision {revision} in namespace {ns} {words}"
            )),
            "{name}: {m}"
        );
        if name == "stuck" {
            let fix = r["fix"].as_str().unwrap_or("");
            assert!(
                fix.contains(&format!(
                    "helm rollback stuck <LAST DEPLOYED REVISION> -n {ns}"
                )),
                "{fix}"
            );
        }
    }
    assert_eq!(helm_says(cp, &ns, "ok"), ("deployed".to_string(), 4));
    assert_eq!(helm_says(cp, &ns, "stuck").1, 2);
}

#[test]
fn api_versions_are_judged_by_what_the_real_server_serves() {
    if cluster::shared().is_none() {
        return;
    }
    // A control plane of its own: its API server is started again serving less.
    let cp = ControlPlane::start();
    cp.install("default", "prefect", &["--set", "testExtras.hpa=true"]);
    let manifest = cp.helm_ok(&["get", "manifest", "prefect", "-n", "default"]);
    let objects: Vec<(String, String, String)> = serde_saphyr::from_multiple::<Value>(&manifest)
        .expect("manifest")
        .into_iter()
        .filter(|d| d.is_object())
        .map(|d| {
            let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
            (
                s(&d["kind"]),
                s(&d["metadata"]["name"]),
                s(&d["apiVersion"]),
            )
        })
        .collect();
    let judge = |cp: &ControlPlane| {
        // kubectl's discovery is the oracle of what is served.
        let served = cp.kubectl_ok(&["api-versions"]);
        let served: Vec<&str> = served.lines().collect();
        let stale: Vec<Value> = objects
            .iter()
            .filter(|(_, _, api)| !served.contains(&api.as_str()))
            .map(|(k, n, a)| json!({"kind": k, "name": n, "apiVersion": a, "replacement": null}))
            .collect();
        let (_, report, stderr) = doctor(&cp.admin_kubeconfig, &["--only", "kube.api-versions"]);
        let r = result(&report, "kube.api-versions");
        if stale.is_empty() {
            assert_eq!(r["status"], "pass", "{r}\n{stderr}");
            assert!(
                r["message"].as_str().unwrap_or("").contains(&format!(
                    "all {} objects of release prefect's manifest use API versions this cluster \
                     (v1.36.3) serves",
                    objects.len()
                )),
                "{r}"
            );
        } else {
            assert_eq!(r["status"], "warn", "{r}\n{stderr}");
            assert_eq!(r["evidence"]["objects"], json!(stale), "{r}");
        }
        stale.len()
    };
    assert_eq!(judge(&cp), 0);
    // The cluster stops serving autoscaling/v2 (as 1.26 stopped serving autoscaling/v2beta2).
    cp.restart_api_server(&["--runtime-config=autoscaling/v2=false"]);
    assert_eq!(judge(&cp), 1);
    // What the finding says next is true: Helm cannot upgrade the release any more.
    let chart = cp.chart().display().to_string();
    let out = cp.helm(&[
        "upgrade",
        "prefect",
        &chart,
        "-n",
        "default",
        "--server-side=false",
        "--reuse-values",
    ]);
    assert!(
        !out.status.success(),
        "helm upgraded a release whose manifest is not served"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("autoscaling/v2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Release Secrets real Helm does not write but a cluster can hold (a Helm 2-era tool, a hand
/// edit): a release stored as plain JSON, not gzipped, is read; one whose payload is garbage, asked
/// for by name, is said as unreadable; neither stops the other.
#[test]
fn a_plain_json_release_and_a_garbage_one_as_the_api_server_keeps_them() {
    let cp = control_plane!();
    let ns = cp.namespace("encodings");
    let plain = support::kube::b64(
        support::kube::release_json("prefect", &ns, 1, "deployed", json!({}))
            .to_string()
            .as_bytes(),
    );
    for secret in [
        support::kube::release_secret("prefect", &ns, 1, "deployed", &plain),
        support::kube::release_secret("junk", &ns, 1, "deployed", "H4sI////garbage%%%"),
    ] {
        cp.create(&secret.to_string());
    }
    let kc = cp.admin_in(&ns);
    let (_, report, _) = doctor(&kc, &["--only", "kube.release", "--release", "prefect"]);
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "pass", "{r}");
    let (_, report, _) = doctor(&kc, &["--only", "kube.release", "--release", "junk"]);
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot read release junk")),
        "{r}"
    );
}
