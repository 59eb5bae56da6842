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
    // As the deployed ServiceAccount, whose every request the audit log then shows was a read.
    let (kc, user) = as_the_deployed_account(cp, &r.ns);
    let kc = kc.display().to_string();
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
    assert_eq!(json["report"]["release"]["name"], "prefect");
    let applied_by = |id: &str| {
        json["applied"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["check"] == id))
            .map(|e| e["user"].clone())
    };
    assert_eq!(applied_by("hasura.schema-owner"), Some(json!("postgres")));
    // The tenant made through Apollo's mutation, once.
    assert_eq!(*r.tenants_created.lock().unwrap(), ["default"]);
    // The cluster itself was only read (the port-forwards are reads that upgrade).
    only_reads(cp, &user);
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

/// Whether the API server's audit log holds a port-forward to pod `pod` of `ns`.
fn forwarded_to(cp: &ControlPlane, ns: &str, pod: &str) -> bool {
    let uri = format!("/api/v1/namespaces/{ns}/pods/{pod}/portforward");
    std::fs::read_to_string(&cp.audit_log)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&uri))
}

/// Pods that go while `check --wait` waits, as a Deployment replaces one (a rollout, a restart)
/// under a new name: Apollo's pod replaced, the UI's deleted with nothing after it. The run's
/// forwards follow Apollo's service to the new pod, and the report is the replaced install's; the
/// UI's forward says its pod is gone and that no pod is behind its service now.
#[test]
fn pods_replaced_during_a_wait_are_followed_through_their_service() {
    let cp = control_plane!();
    let (old, new) = (
        "prefect-apollo-6d4b9c7f5-x2x9k",
        "prefect-apollo-6d4b9c7f5-r7k2p",
    );
    let ui = "prefect-ui-6d4b9c7f5-x2x9k";
    let r = running_release(
        cp,
        "follow",
        Scenario {
            refusing_pods: vec![old, ui],
            spares: vec![(new, 4200, old)],
            ..Default::default()
        },
    );
    let kc = r.kubeconfig.display().to_string();
    let child = support::doctor_process()
        .args(["check", "-o", "json", "--kubeconfig", &kc])
        .args(["--timeout", "5s", "--wait", "20s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the doctor starts");
    // Once the run has found both pods and tried them (the API server's audit log says so), they go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(forwarded_to(cp, &r.ns, old) && forwarded_to(cp, &r.ns, ui)) {
        assert!(
            Instant::now() < deadline,
            "the doctor never forwarded to {old} and {ui}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cp.replace_pod(&r.ns, old, Some(new));
    cp.replace_pod(&r.ns, ui, None);
    let out = child.wait_with_output().expect("the doctor ends");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    support::assert_fixes_filled(&report);
    assert_eq!(out.status.code(), Some(1), "the UI still fails: {report}");
    // Apollo: through its new pod; the forward opened at the start (to the old pod) followed.
    for id in ["api.reachable", "api.version", "tenant.exists"] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}: {report}");
    }
    assert!(forwarded_to(cp, &r.ns, new), "a forward went to {new}");
    // The UI: gone, and nothing behind its service, each said.
    let m = message(&report, "ui.settings-json");
    assert!(
        m.contains(&format!("pod {}/{ui} is gone", r.ns))
            && m.contains("no running pod behind service prefect-ui"),
        "{m}"
    );
    let _ = &r.pg;
}

/// The database's pod dies mid-run, under the doctor's session (its connections reset through the
/// real port-forward, its port closed after): the checks that had run keep their verdicts, the
/// ones after say the connection ended and where, and the run ends within its timeout.
#[test]
fn a_database_pod_dying_mid_run_is_a_clear_finding() {
    let cp = control_plane!();
    let r = running_release(
        cp,
        "dies",
        Scenario {
            db_dies_on: Some("pg_catalog.pg_extension"),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "db.*", "--only", "hasura.*"]);
    let took = started.elapsed();
    assert!(r.dying.as_ref().is_some_and(|d| d.died()), "{report}");
    for id in ["db.reachable", "db.password", "db.version"] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}: {report}");
    }
    // The check whose statement the pod died at, and every check that asked after it (they run
    // at once: which asked before is the scheduler's), say where the connection went and what that
    // means, not a bare "connection closed".
    let route = format!(
        "through the port-forward to pod {}/prefect-postgresql-0 port 5432 closed during the run",
        r.ns
    );
    let mut after = 0;
    for id in [
        "db.extensions",
        "db.timezone",
        "db.schema",
        "hasura.schema-owner",
        "hasura.function-owner",
    ] {
        let res = result(&report, id);
        let m = res["message"].as_str().unwrap_or("");
        if id == "db.extensions" || res["status"] == "error" {
            assert!(
                res["status"] == "error" && m.contains(&route) && m.contains("kube.pods"),
                "{id}: {res}"
            );
            after += 1;
        } else {
            assert_eq!(res["status"], "pass", "asked before the death: {id}: {res}");
        }
    }
    assert!(
        after >= 2,
        "the death was met by more than the check that caused it: {report}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // The next run: the pod's port is closed now; said with the kubelet's word, within the timeout.
    let started = Instant::now();
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", "db.*"]);
    let m = message(&report, "db.reachable");
    assert!(
        m.contains(&format!(
            "through the port-forward to pod {}/prefect-postgresql-0 port 5432: error \
             communicating with the server: the forward reached the pod, but its port 5432 did not \
             take the connection",
            r.ns
        )) && m.contains("connection refused"),
        "{m}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = &r.pg;
}

/// The port-forward's stream closed under the doctor's session, mid-query, by the API server: the
/// node's kubelet gone while the database had not answered yet (a node lost, a kubelet restarted).
/// Said as a connection that ended, through which forward, within the timeout; the next run says
/// the API server's own reason.
#[test]
fn a_forward_stream_closed_mid_query_is_a_clear_finding() {
    let cp = control_plane!();
    let Running {
        kubelet,
        dying,
        ns,
        kubeconfig,
        pg,
        ..
    } = running_release(
        cp,
        "stream",
        Scenario {
            db_holds_on: Some("pg_catalog.pg_extension"),
            ..Default::default()
        },
    );
    let dying = dying.expect("a holding relay");
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dying.died() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The kubelet goes while the statement waits for its answer.
        drop(kubelet);
        dying
    });
    let started = Instant::now();
    let (_, report, _) = doctor(&kubeconfig, &["--only", "db.*"]);
    let took = started.elapsed();
    let dying = killer.join().expect("the kubelet stopped");
    assert!(dying.died(), "{report}");
    for id in ["db.reachable", "db.password"] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}: {report}");
    }
    let res = result(&report, "db.extensions");
    let m = res["message"].as_str().unwrap_or("");
    assert!(
        res["status"] == "error"
            && m.contains(&format!(
                "through the port-forward to pod {ns}/prefect-postgresql-0 port 5432 closed during \
                 the run"
            ))
            && m.contains("stream"),
        "{res}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // The next run: no kubelet to forward to; the API server's reason.
    let (_, report, _) = doctor(&kubeconfig, &["--only", "db.*"]);
    let m = message(&report, "db.reachable");
    assert!(
        m.contains(&format!("port-forward to pod {ns}/prefect-postgresql-0"))
            && m.contains("error dialing backend"),
        "{m}"
    );
    let _ = (&pg, dying);
}
