//! Several releases, namespaces, contexts and users in one run.

use super::*;

#[test]
fn a_fleet_across_namespaces_and_two_contexts_with_two_users() {
    let cp = control_plane!();
    let (a, b, c) = (
        cp.namespace("fleet-a"),
        cp.namespace("fleet-b"),
        cp.namespace("fleet-c"),
    );
    for (release, ns) in [("prefect", &a), ("prefect", &b), ("one", &c), ("two", &c)] {
        cp.install(ns, release, &[]);
    }
    // The fleet's ServiceAccount with deploy/rbac-fleet.yaml, in a namespace of its own.
    let home = cp.namespace("fleet-home");
    cp.apply(&deploy_in("rbac-fleet.yaml", &home));
    let fleet_token = cp.service_account_token(&home, "prefect-doctor");
    // A team's user with deploy/rbac.yaml's Role in its namespace only.
    cp.apply(&doctor_role_for_user(&b, cluster::TEAM));
    let ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem)
    };
    let kc = cp.dir().join(format!("fleet-{home}.kubeconfig"));
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fleet\nclusters:\n- name: real\n  \
             cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n\
             - name: fleet\n  context: {{cluster: real, user: fleet, namespace: {a}}}\n\
             - name: team\n  context: {{cluster: real, user: team, namespace: {b}}}\n\
             users:\n- name: fleet\n  user: {{token: {fleet_token}}}\n\
             - name: team\n  user: {{token: {team}}}\n",
            url = cp.url,
            team = cluster::TEAM_TOKEN
        ),
    )
    .expect("kubeconfig");
    let kc_arg = kc.display().to_string();
    let fleet_run = |args: &[&str]| -> Value {
        let mut all = vec![
            "check",
            "-o",
            "json",
            "--kubeconfig",
            kc_arg.as_str(),
            "--timeout",
            "10s",
        ];
        all.extend_from_slice(args);
        let (code, out, err, _) = run_once(&all);
        assert_ne!(code, 2, "{out}{err}");
        for secret in [fleet_token.as_str(), cluster::TEAM_TOKEN] {
            assert!(!out.contains(secret) && !err.contains(secret));
        }
        let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        support::assert_fixes_filled(&report);
        report
    };
    // "context/namespace/release" of each release diagnosed, and its kube.release verdict.
    let found = |report: &Value| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = report["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .map(|r| {
                let status = r["results"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|x| x["id"] == "kube.release"))
                    .map(|x| x["status"].clone())
                    .unwrap_or(Value::Null);
                let name = format!(
                    "{}/{}/{}",
                    r["context"].as_str().unwrap_or("?"),
                    r["namespace"].as_str().unwrap_or("?"),
                    r["release"].as_str().unwrap_or("?")
                );
                (name, status)
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let deployed = |names: &[String]| -> Vec<(String, Value)> {
        names.iter().map(|n| (n.clone(), json!("pass"))).collect()
    };

    // Every namespace, through the fleet's ClusterRole: these four (the other tests' releases too,
    // so only ours are compared).
    let report = fleet_run(&["-A", "--context", "fleet"]);
    // The other tests' releases are there too (some half-installed): only ours are compared.
    let ours: Vec<(String, Value)> = found(&report)
        .into_iter()
        .filter(|(r, _)| [&a, &b, &c].iter().any(|ns| r.contains(&format!("/{ns}/"))))
        .collect();
    assert_eq!(
        ours,
        deployed(&[
            format!("fleet/{a}/prefect"),
            format!("fleet/{b}/prefect"),
            format!("fleet/{c}/one"),
            format!("fleet/{c}/two"),
        ]),
        "{report}"
    );
    // Two contexts, two users, each in its context's namespace.
    let report = fleet_run(&["--context", "fleet", "--context", "team"]);
    assert_eq!(
        found(&report),
        deployed(&[format!("fleet/{a}/prefect"), format!("team/{b}/prefect")]),
        "{report}"
    );
    assert_eq!(report["unlisted"], json!([]), "{report}");
    // Both identities only read, and nothing they read was refused. (With -A the fleet's account
    // also reached the other tests' releases, some with their kubelet stopped: a port-forward
    // there is the API server's 500, not a refusal.)
    let sa = format!("system:serviceaccount:{home}:prefect-doctor");
    only_reads_in(cp, &sa, &[&a, &b, &c, &home]);
    only_reads(cp, cluster::TEAM);
}
