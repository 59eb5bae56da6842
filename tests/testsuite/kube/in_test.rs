//! What only the in-test API server can be made to answer: a rendered manifest's password defect,
//! the old chart's Secret, plain-JSON encodings, a silent server.

use super::*;

#[test]
fn the_rendered_manifests_password_defect_is_caught() {
    // As rendered: postgres-password (superuser) differs from password (user prefect's). The database
    // holds prefect's password; the chart hands every service the superuser's.
    let install = Install::healthy();
    let mut c = install.cluster(json!({}));
    c.set_secret_key(
        "prefect-postgresql",
        "postgres-password",
        MANIFEST_SUPERUSER_PW,
    );
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.*", "--only", "db.*"]);
    assert_eq!(run.status("kube.db-secret"), "fail", "{}", run.text);
    assert!(
        run.message("kube.db-secret")
            .contains("the postgres superuser's password) to user prefect"),
        "{}",
        run.message("kube.db-secret")
    );
    let fix = run.fix("kube.db-secret");
    assert!(fix.contains("--set postgresql.auth.password=<PASSWORD> --set postgresql.auth.postgresPassword=<PASSWORD>"), "{fix}");
    assert!(
        fix.contains("helm upgrade prefect prefecthq/prefect-server -n default"),
        "{fix}"
    );
    // What the services see: "bad password".
    assert_eq!(run.status("db.password"), "fail", "{}", run.text);
    assert!(
        run.fix("db.password").contains("helm upgrade prefect"),
        "{}",
        run.fix("db.password")
    );
    assert_eq!(run.code, 1);
    assert_read_only(&server);
}

#[test]
fn a_secret_of_the_old_chart() {
    // (Here because the real path's test chart renders one Secret name; the missing Secret is
    // `a_missing_database_secret_is_named_with_its_fix_on_a_real_cluster`.)
    let install = Install::healthy();
    // A secret made for the chart before 2022.07: only `postgresql-password`.
    // What the chart renders with `postgresql.auth.existingSecret=my-db-secret`: every secretKeyRef
    // names that secret.
    let manifest = reference("manifest-rendered.yaml").replace(
        "name: prefect-postgresql\n                  key: postgres-password",
        "name: my-db-secret\n                  key: postgres-password",
    );
    assert!(manifest.contains("name: my-db-secret"));
    let mut c = install.cluster_rendered(
        json!({"postgresql": {"auth": {"existingSecret": "my-db-secret"}}}),
        &manifest,
    );
    c.objects.push(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "my-db-secret", "namespace": "default"},
        "data": {"postgresql-password": b64(CANARY.as_bytes())}}),
    );
    let server = c.start();
    let run = doctor_on(&server, &["--only", "kube.db-secret"]);
    assert_eq!(run.status("kube.db-secret"), "fail", "{}", run.text);
    assert!(
        run.message("kube.db-secret")
            .contains("postgresql-password but not postgres-password")
    );
    assert!(
        run.fix("kube.db-secret")
            .contains("postgres-password=<the password of prefect>")
    );
    assert_read_only(&server);
}

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
