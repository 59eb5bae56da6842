//! The cluster reached as kubectl reaches it: TLS and client certificates, a proxy, the in-cluster
//! service account, and an API server that stops answering.

use super::*;

#[test]
fn an_api_server_that_stops_answering_mid_run_costs_one_timeout() {
    if cluster::shared().is_none() {
        return;
    }
    // A control plane of its own: this one is frozen and killed.
    let cp = ControlPlane::start();
    cp.install("default", "prefect", &["--set", "agent.enabled=true"]);
    let kc = cp.admin_kubeconfig.display().to_string();
    let args = [
        "check",
        "-o",
        "json",
        "--kubeconfig",
        kc.as_str(),
        "--timeout",
        "2s",
    ];
    // Frozen (SIGSTOP) as soon as the doctor's first request is logged: the connection stays
    // open and nothing answers, as behind a dead load balancer. Tried again if the run was over
    // before the freeze landed.
    let mut frozen_mid_run = false;
    for _ in 0..3 {
        let started = Instant::now();
        let child = support::doctor_process()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("doctor");
        let log = std::fs::read_to_string(&cp.audit_log).unwrap_or_default();
        let seen = log.lines().count();
        while std::fs::read_to_string(&cp.audit_log)
            .unwrap_or_default()
            .lines()
            .count()
            == seen
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        cp.signal_api_server(libc::SIGSTOP);
        let out = child.wait_with_output().expect("doctor");
        let took = started.elapsed();
        cp.signal_api_server(libc::SIGCONT);
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        let text = report.to_string();
        if !text.contains("did not answer within 2s") {
            continue;
        }
        frozen_mid_run = true;
        // One timeout for the dead server, not one per check: well under the 30-odd checks' 2 s each.
        assert!(took < Duration::from_secs(12), "took {took:?}");
        assert_ne!(out.status.code(), Some(2));
        break;
    }
    assert!(
        frozen_mid_run,
        "the API server was never frozen while the doctor ran"
    );
    // Killed: the port is closed; said as unreachable at once.
    cp.stop_api_server();
    let (code, report, _) = doctor(&cp.admin_kubeconfig, &[]);
    let r = result(&report, "kube.release");
    assert_ne!(code, 2);
    assert!(
        r["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("cannot reach the Kubernetes API at {}", cp.url)),
        "{r}"
    );
}

#[test]
fn tls_and_client_certificates_are_read_as_kubectl_reads_them() {
    use base64::Engine as _;
    let cp = control_plane!();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let read = |name: &str| std::fs::read_to_string(cp.dir().join(name)).expect(name);
    let other_ca = {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca")
            .pem()
    };
    let port = cp.url.rsplit(':').next().expect("port").to_string();
    let token = "    token: cluster-admin-token-3c1f\n".to_string();
    let ca_data = format!("    certificate-authority-data: {}\n", b64(&cp.ca_pem));
    let alice_data = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&read("alice.crt")),
        b64(&read("alice.key"))
    );
    // (what, server, cluster settings, user settings, files beside the kube config)
    type Case<'a> = (&'a str, String, String, String, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "the cluster CA as data",
            cp.url.clone(),
            ca_data.clone(),
            token.clone(),
            vec![],
        ),
        (
            "another CA",
            cp.url.clone(),
            format!("    certificate-authority-data: {}\n", b64(&other_ca)),
            token.clone(),
            vec![],
        ),
        (
            "no CA and insecure-skip-tls-verify",
            cp.url.clone(),
            "    insecure-skip-tls-verify: true\n".into(),
            token.clone(),
            vec![],
        ),
        (
            "no CA at all",
            cp.url.clone(),
            String::new(),
            token.clone(),
            vec![],
        ),
        (
            "the CA by a path relative to the kube config",
            cp.url.clone(),
            "    certificate-authority: certs/ca.crt\n".into(),
            token.clone(),
            vec![("certs/ca.crt", cp.ca_pem.clone())],
        ),
        (
            "tls-server-name the certificate names",
            cp.url.clone(),
            format!(
                "    certificate-authority-data: {}\n    tls-server-name: localhost\n",
                b64(&cp.ca_pem)
            ),
            token.clone(),
            vec![],
        ),
        (
            "tls-server-name the certificate does not name",
            cp.url.clone(),
            format!(
                "    certificate-authority-data: {}\n    tls-server-name: elsewhere.example\n",
                b64(&cp.ca_pem)
            ),
            token.clone(),
            vec![],
        ),
        (
            "localhost, named by the certificate",
            format!("https://localhost:{port}"),
            ca_data.clone(),
            token.clone(),
            vec![],
        ),
        (
            "a client certificate as data",
            cp.url.clone(),
            ca_data.clone(),
            alice_data.clone(),
            vec![],
        ),
        (
            "a client certificate by relative paths",
            cp.url.clone(),
            ca_data.clone(),
            "    client-certificate: id/alice.crt\n    client-key: id/alice.key\n".into(),
            vec![
                ("id/alice.crt", read("alice.crt")),
                ("id/alice.key", read("alice.key")),
            ],
        ),
        (
            "a client certificate of an untrusted CA",
            cp.url.clone(),
            ca_data.clone(),
            format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(&read("mallory.crt")),
                b64(&read("mallory.key"))
            ),
            vec![],
        ),
        (
            "a token beside a client certificate",
            cp.url.clone(),
            ca_data.clone(),
            format!("{alice_data}{token}"),
            vec![],
        ),
    ];
    // What each case is (kubectl's identity, or no connection): the matrix covers both.
    let meant = [
        Some("admin"),
        None,
        Some("admin"),
        None,
        Some("admin"),
        Some("admin"),
        None,
        Some("admin"),
        Some("alice"),
        Some("alice"),
        None,
        Some("alice"),
    ];
    assert_eq!(meant.len(), cases.len());
    let mut differ = Vec::new();
    for (i, (what, server, cluster_extra, user_extra, files)) in cases.iter().enumerate() {
        let ns = format!("tls-case-{i}");
        let dir = cp.dir().join(&ns);
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(p, text).expect("file");
        }
        std::fs::create_dir_all(&dir).expect("dir");
        let kc = dir.join("config");
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
                 server: {server}\n{cluster_extra}contexts:\n- name: c\n  context:\n    cluster: c\n    \
                 user: u\n    namespace: {ns}\nusers:\n- name: u\n  user:\n{user_extra}"
            ),
        )
        .expect("kubeconfig");
        // kubectl, from another directory: who it is, or that it could not connect.
        let out = Command::new(cp.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--request-timeout=10s",
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .current_dir("/")
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl");
        let kubectl = out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
        // The doctor, from another directory: who the API server saw list this case's namespace.
        let out = support::doctor_process()
            .args([
                "check",
                "-o",
                "json",
                "--timeout",
                "10s",
                "--only",
                "kube.release",
                "--kubeconfig",
            ])
            .arg(&kc)
            .current_dir("/")
            .output()
            .expect("doctor");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let seen: Vec<String> = std::fs::read_to_string(&cp.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["requestURI"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("/namespaces/{ns}/"))
                    // Authenticated: answered or refused by RBAC (403), not turned away (401).
                    && e["responseStatus"]["code"] != 401
            })
            .map(|e| e["user"]["username"].as_str().unwrap_or("?").to_string())
            .collect();
        let doctor = seen.first().cloned();
        assert_eq!(
            kubectl.as_deref(),
            meant[i],
            "{what}: the case is not what it says"
        );
        if kubectl != doctor {
            differ.push(format!(
                "{what}: kubectl {kubectl:?}, the doctor {doctor:?} ({})",
                report["results"][0]["message"]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "the doctor and kubectl differ:\n{}",
        differ.join("\n")
    );
}

/// An HTTP CONNECT proxy on loopback (as a corporate proxy is): every tunnel it opened, by target.
struct ConnectProxy {
    port: u16,
    tunnels: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy");
        let port = listener.local_addr().expect("addr").port();
        let tunnels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(client.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    // Drain the request's headers.
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let Some(target) = line
                        .strip_prefix("CONNECT ")
                        .and_then(|r| r.split(' ').next())
                    else {
                        return;
                    };
                    let Ok(upstream) = std::net::TcpStream::connect(target) else {
                        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    };
                    seen.lock().expect("tunnels").push(target.to_string());
                    let _ = (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let (mut c1, mut u1) = (
                        client.try_clone().expect("c"),
                        upstream.try_clone().expect("u"),
                    );
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c1, &mut u1);
                        let _ = u1.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut u2, mut c2) = (upstream, client);
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                    let _ = t.join();
                });
            }
        });
        ConnectProxy { port, tunnels }
    }
    fn tunnels(&self) -> usize {
        self.tunnels.lock().expect("tunnels").len()
    }
}

#[test]
fn a_proxy_url_is_used_as_kubectl_uses_it() {
    use base64::Engine as _;
    let cp = control_plane!();
    let proxy = ConnectProxy::start();
    let ca = base64::engine::general_purpose::STANDARD.encode(&cp.ca_pem);
    let dead = cluster::free_port();
    for (what, proxy_url, through) in [
        (
            "a CONNECT proxy",
            format!("http://127.0.0.1:{}", proxy.port),
            true,
        ),
        (
            "a proxy that is not there, with credentials",
            format!("http://someone:proxy-canary-5e1@127.0.0.1:{dead}"),
            false,
        ),
    ] {
        let ns = cp.unique("proxied");
        let kc = cp.dir().join(format!("{ns}.kubeconfig"));
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
                 server: {}\n    certificate-authority-data: {ca}\n    proxy-url: {proxy_url}\ncontexts:\n\
                 - name: c\n  context:\n    cluster: c\n    user: u\n    namespace: {ns}\nusers:\n- name: u\n  \
                 user:\n    token: cluster-admin-token-3c1f\n",
                cp.url
            ),
        )
        .expect("kubeconfig");
        let before = proxy.tunnels();
        let out = Command::new(cp.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--request-timeout=10s",
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl");
        let kubectl_tunnels = proxy.tunnels() - before;
        assert_eq!(
            out.status.success(),
            through,
            "{what}: kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let before = proxy.tunnels();
        let (_, report, stderr) = doctor(&kc, &["--only", "kube.release"]);
        let r = result(&report, "kube.release");
        let doctor_tunnels = proxy.tunnels() - before;
        if through {
            assert!(kubectl_tunnels >= 1, "kubectl went around the proxy");
            assert!(
                doctor_tunnels >= 1,
                "{what}: the doctor went around the proxy: {r}\n{stderr}"
            );
            assert_eq!(r["status"], "skip", "{what}: {r}");
            assert!(
                r["message"].as_str().unwrap_or("").contains(&format!(
                    "no Prefect Server (chart prefect-server) release in namespace {ns}"
                )),
                "{what}: {r}"
            );
        } else {
            assert_eq!(r["status"], "error", "{what}: {r}");
            assert!(
                r["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("through the proxy http://someone:****@127.0.0.1"),
                "{what}: {r}"
            );
            assert!(
                !report.to_string().contains("proxy-canary") && !stderr.contains("proxy-canary")
            );
        }
    }
}

#[test]
fn the_in_cluster_service_account_is_used_as_kubectl_uses_it() {
    let cp = control_plane!();
    // The files a pod's service account gets. Only where no real pod's are (a CI machine, not a
    // pod), and only if this test may write there (root).
    let sa_dir = std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount");
    if std::path::Path::new("/var/run/secrets").exists() || nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("SKIPPED: /var/run/secrets exists (a pod?) or this is not root");
        return;
    }
    let ns = cp.namespace("incluster");
    cp.install(&ns, "prefect", &[]);
    cp.apply(&deploy_in("rbac.yaml", &ns));
    let token = cp.service_account_token(&ns, "prefect-doctor");
    std::fs::create_dir_all(sa_dir).expect("service account dir");
    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all("/var/run/secrets");
        }
    }
    let _cleanup = Cleanup;
    std::fs::write(sa_dir.join("token"), &token).expect("token");
    std::fs::write(sa_dir.join("ca.crt"), &cp.ca_pem).expect("ca");
    std::fs::write(sa_dir.join("namespace"), &ns).expect("namespace");
    let port = cp.url.rsplit(':').next().expect("port").to_string();
    // kubectl with no kube config anywhere: the pod's account. (No --request-timeout: kubectl falls
    // back to the pod's account only while its flags leave the default configuration untouched.)
    let out = Command::new("timeout")
        .arg("30")
        .arg(cp.bin.join("kubectl"))
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("system:serviceaccount:{ns}:prefect-doctor"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The doctor likewise: the release of the pod's namespace, read as the pod's account.
    let out = support::doctor_process()
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "10s",
            "--only",
            "kube.release",
        ])
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output()
        .expect("doctor");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let r = result(&report, "kube.release");
    assert_eq!(r["status"], "pass", "{report}");
    assert_eq!(r["evidence"]["namespace"], json!(ns), "{report}");
    assert!(!report.to_string().contains(&token));
    let user = format!("system:serviceaccount:{ns}:prefect-doctor");
    assert!(
        requests_of(cp, &user)
            .iter()
            .any(|(v, uri, _)| v == "list" && uri.contains(&format!("/namespaces/{ns}/secrets"))),
        "the doctor's list of releases is not the pod account's"
    );
}
