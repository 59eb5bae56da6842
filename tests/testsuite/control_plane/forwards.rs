//! The whole check through real port-forwards: healthy, the README's faults, forwards that fail,
//! servers that refuse behind them, and fix --apply through them.

use super::*;

#[test]
fn a_healthy_release_is_checked_through_real_port_forwards() {
    let cp = control_plane!();
    let r = running_release(cp, "healthy", Scenario::default());
    assert!(
        r.pods.contains(&"prefect-postgresql-0".to_string()),
        "{:?}",
        r.pods
    );
    let kc = r.kubeconfig.display().to_string();
    let run = checked(&kc, &[]);
    for (id, status) in [
        ("kube.release", "pass"),
        ("kube.pods", "pass"),
        ("kube.db-secret", "pass"),
        ("kube.chart-env", "pass"),
        ("kube.images", "warn"),
        ("kube.tenant-job", "skip"),
        ("agent.tenant-errors", "skip"),
        ("db.reachable", "pass"),
        ("db.password", "pass"),
        ("db.extensions", "pass"),
        ("hasura.function-owner", "pass"),
        ("api.reachable", "pass"),
        ("ui.settings-json", "pass"),
        ("ui.server-url", "pass"),
        ("tenant.exists", "pass"),
    ] {
        assert_eq!(run.status(id), status, "{id}: {}", run.text);
    }
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(
        run.message("kube.release")
            .contains("release prefect (chart prefect-server-2022.12.22"),
        "{}",
        run.message("kube.release")
    );
    // The chart's defect is named, as info.
    assert!(
        run.message("kube.chart-env")
            .contains("PREFECT_SERVER__DATABASE__USERNAME"),
        "{}",
        run.message("kube.chart-env")
    );
    assert!(run.message("kube.images").contains("latest"));
    assert!(run.fix("kube.images").contains("helm upgrade prefect"));
    // Where each part was reached, said in the report.
    let targets = run.json["targets"].to_string();
    assert!(
        targets.contains(&format!(
            "port-forward to pod {}/prefect-postgresql-0 port 5432",
            r.ns
        )),
        "{targets}"
    );
    assert!(
        targets.contains("service prefect-apollo is LoadBalancer with no external address yet"),
        "{targets}"
    );
    assert!(
        run.text.contains("checked through a port-forward"),
        "{}",
        run.text
    );
    assert_eq!(run.json["release"]["name"], "prefect");
    assert_eq!(run.json["release"]["namespace"], r.ns.as_str());
    // The metrics carry the release and its namespace.
    let (code, prom, _, _) = support::run_once_in(
        &Default::default(),
        &[
            "check",
            "-o",
            "prometheus",
            "--kubeconfig",
            &kc,
            "--timeout",
            "10s",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        prom.lines()
            .any(|l| l.starts_with("prefect_doctor_check_status{")
                && l.contains("check=\"kube.release\"")
                && l.contains("release=\"prefect\"")
                && l.contains(&format!("namespace=\"{}\"", r.ns))
                && l.ends_with(" 0")),
        "{prom}"
    );
    // The database saw only reads.
    let log = r.pg.log();
    assert!(
        !log.lines()
            .filter(|l| l.contains("prefect-doctor"))
            .any(|l| l.contains("statement:") && !l.contains("SELECT") && !l.contains("select")),
        "{log}"
    );
}

#[test]
fn the_readmes_faults_through_the_real_kubelet_side() {
    use support::prefect::Seed;
    let cp = control_plane!();
    let healthy = || Seed::healthy("prefect");
    let apollo_in_cluster = "http://prefect-apollo.default:4200/graphql".to_string();
    // (scenario, the check that must fail, words of its message)
    let cases: Vec<(Scenario, &str, &str)> = vec![
        (
            Scenario {
                seed: Seed {
                    tenant: false,
                    ..healthy()
                },
                tenants: Some(vec![]),
                ..Default::default()
            },
            "tenant.exists",
            "no tenant",
        ),
        (
            Scenario {
                secret_password: Some("not-the-password"),
                ..Default::default()
            },
            "db.password",
            "password",
        ),
        (
            Scenario {
                seed: Seed {
                    extensions: false,
                    ..healthy()
                },
                ..Default::default()
            },
            "db.extensions",
            "pg_trgm",
        ),
        (
            Scenario {
                seed: Seed {
                    hdb_function_owner: Some("postgres".into()),
                    ..healthy()
                },
                ..Default::default()
            },
            "hasura.function-owner",
            "not owned by Hasura's user",
        ),
        (
            Scenario {
                server_url: Some(apollo_in_cluster),
                ..Default::default()
            },
            "ui.server-url",
            "resolves only inside the cluster",
        ),
    ];
    for (scenario, id, words) in cases {
        let r = running_release(cp, "fault", scenario);
        let kc = r.kubeconfig.display().to_string();
        let run = support::check(
            &["--kubeconfig", &kc, "--timeout", "10s"],
            &[support::prefect::CANARY, "not-the-password"],
        );
        assert_eq!(run.status(id), "fail", "{id}: {}", run.text);
        assert!(run.message(id).contains(words), "{id}: {}", run.message(id));
        // Reached through the API server's port-forward, not found some other way.
        assert_eq!(run.status("kube.pods"), "pass", "{}", run.text);
        assert!(
            run.json["targets"]
                .to_string()
                .contains(&format!("port-forward to pod {}/", r.ns))
        );
        let _ = &r.pg;
    }
}

#[test]
fn port_forward_faults_are_clear_findings_within_the_timeout() {
    let cp = control_plane!();
    let r = running_release(cp, "pf", Scenario::default());
    let kc = r.kubeconfig.display().to_string();
    // The kubelet gone: the API server cannot open any forward. Said with the API server's reason
    // for the database, the API and the UI alike, within the timeout.
    drop(r.kubelet);
    let started = Instant::now();
    let (_, report, _) = doctor(&r.kubeconfig, &[]);
    let took = started.elapsed();
    for id in ["db.reachable", "api.reachable", "ui.settings-json"] {
        let res = result(&report, id);
        let m = res["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!("port-forward to pod {}/prefect-", r.ns))
                && m.contains("error dialing backend"),
            "{id}: {res}"
        );
    }
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let _ = (&r.pg, kc);
}

#[test]
fn fix_apply_goes_through_the_real_port_forwards_and_the_recheck_passes() {
    use support::{pg::SUPERUSER_PASSWORD, prefect::Seed};
    let cp = control_plane!();
    let r = running_release(
        cp,
        "fix",
        Scenario {
            seed: Seed {
                tenant: false,
                db_timezone: Some("Europe/Paris".into()),
                hdb_schema_owner: Some("cloudsqladmin".into()),
                ..Seed::healthy("prefect")
            },
            tenants: Some(vec![]),
            ..Default::default()
        },
    );
    let kc = r.kubeconfig.display().to_string();
    // The admin URL names only who: where is the release's database, through the same forward.
    let admin = format!("postgres://postgres:{SUPERUSER_PASSWORD}@/");
    let (code, out, err, _) = run_once(&[
        "fix",
        "-o",
        "json",
        "--kubeconfig",
        &kc,
        "--timeout",
        "10s",
        "--only",
        "db.timezone",
        "--only",
        "tenant.exists",
        "--only",
        "hasura.schema-owner",
        "--admin-url",
        &admin,
        "--apply",
        "--yes",
    ]);
    for secret in [support::prefect::CANARY, SUPERUSER_PASSWORD] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    for id in ["db.timezone", "tenant.exists", "hasura.schema-owner"] {
        let applied = json["applied"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["check"] == id))
            .unwrap_or_else(|| panic!("nothing applied for {id}: {json:#}"));
        assert_eq!(applied["result"], "fixed", "{id}: {json:#}");
    }
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["report"]["release"]["namespace"], json!(r.ns));
    // The database really changed: a plain check through the cluster passes them now.
    let (_, report, _) = doctor(
        &r.kubeconfig,
        &["--only", "db.timezone", "--only", "hasura.schema-owner"],
    );
    for id in ["db.timezone", "hasura.schema-owner"] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}: {report}");
    }
    let _ = &r.pg;
}

#[test]
fn servers_that_refuse_behind_working_port_forwards_are_clear_findings() {
    let cp = control_plane!();
    // The pods run, their servers do not listen (yet): the API server and the kubelet take the
    // forward, the kubelet's dial to the pod's port is refused.
    let r = running_release(
        cp,
        "refusing",
        Scenario {
            refusing: true,
            ..Default::default()
        },
    );
    let (_, report, _) = doctor(&r.kubeconfig, &[]);
    let db = result(&report, "db.reachable");
    assert_eq!(db["status"], "fail", "{db}");
    let m = db["message"].as_str().unwrap_or("");
    assert!(
        m.contains("the forward reached the pod, but its port 5432 did not take the connection")
            && m.contains("connection refused")
            && !m.contains("not as a PostgreSQL server"),
        "{db}"
    );
    // Apollo and the UI say the same, not a closed connection.
    for (id, port) in [("api.reachable", 4200), ("ui.settings-json", 8080)] {
        let r = result(&report, id);
        assert_eq!(r["status"], "fail", "{id}: {r}");
        let m = r["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!(
                "the forward reached the pod, but its port {port} did not take the connection"
            )) && m.contains("connection refused"),
            "{id}: {r}"
        );
    }
}
