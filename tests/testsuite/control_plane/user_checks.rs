//! A team's `[kube]` user check (examples/checks) through the real API server: it reads the
//! release's own objects, here the agent's Deployment as real Helm renders it from
//! `agent.prefectLabels`, for the label the team's flows need.

use super::*;

#[test]
fn a_kube_user_check_reads_the_releases_objects_through_the_real_api_server() {
    let cp = control_plane!();
    let examples = format!("{}/examples/checks", env!("CARGO_MANIFEST_DIR"));
    let on = |extra: &[&str]| -> (Value, String) {
        let ns = cp.namespace("sitecheck");
        let mut args = vec!["--set", "agent.enabled=true"];
        args.extend_from_slice(extra);
        cp.install(&ns, "prefect", &args);
        let (kc, user) = an_account_of_its_own(cp, &ns);
        let (_, report, _) = doctor(
            std::path::Path::new(&kc),
            &["--checks", &examples, "--only", "site.agent-k8s-label"],
        );
        // Only reads, the release's label part of the selector.
        let requests = only_reads(cp, &user);
        assert!(
            requests.iter().any(|(_, uri, _)| uri
                .contains(&format!("/apis/apps/v1/namespaces/{ns}/deployments"))
                && uri.contains("app.kubernetes.io%2Finstance%3Dprefect")),
            "the release's label is part of the selector: {requests:?}"
        );
        (result(&report, "site.agent-k8s-label"), ns)
    };
    let (r, ns) = on(&[]);
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(
        r["message"],
        "1 agent Deployment(s), none started with the k8s label"
    );
    assert!(
        r["fix"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("-n {ns}"))),
        "{r}"
    );
    let (r, _) = on(&["--set-json", r#"agent.prefectLabels=["k8s"]"#]);
    assert_eq!(r["status"], "pass", "{r}");
}
