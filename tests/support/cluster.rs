//! A real Kubernetes control plane for the tests: etcd and kube-apiserver (and kubectl and Helm)
//! built from their Go modules by `tests/cluster/build`, started on loopback with real TLS
//! (certificates from rcgen), token authentication, RBAC and an audit log of every request.
//!
//! One control plane serves a whole test binary ([`shared`]); each test works in namespaces of its
//! own and tells its requests apart in the audit log by its own identity (a ServiceAccount of its
//! namespace, whose token the API server issues). Tests that stop the API server start their own
//! ([`ControlPlane::start`]). The processes die with the test binary (a parent-death signal) and
//! are killed by pid when a [`ControlPlane`] is dropped.
//!
//! Without the binaries the tests skip, saying so, unless `PREFECT_DOCTOR_CLUSTER_REQUIRED` is set
//! (`.ci/run` builds them and sets it): then a missing binary fails the test.
#![allow(dead_code)]

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{cluster_pki::Pki, test_chart::test_chart};

/// The admin's token (group `system:masters`), in the API server's token file.
pub const ADMIN_TOKEN: &str = "cluster-admin-token-3c1f";
/// A user the token file knows with no group and no grants: every read is refused until a test
/// binds it a role.
pub const NOBODY_TOKEN: &str = "nobody-token-7b2e";
pub const NOBODY: &str = "nobody";
/// Another user with no grants of its own, for the one test that binds it (the audit log tells
/// its requests apart by name).
pub const TEAM_TOKEN: &str = "team-token-91ad";
pub const TEAM: &str = "team";

/// Where `tests/cluster/build` puts the binaries (it prints it with `--path`).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PREFECT_DOCTOR_CLUSTER_BIN") {
        return PathBuf::from(dir);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster/build");
    let out = Command::new(script)
        .arg("--path")
        .output()
        .expect("tests/cluster/build --path");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn required() -> bool {
    std::env::var_os("PREFECT_DOCTOR_CLUSTER_REQUIRED").is_some_and(|v| !v.is_empty())
}

/// The binary's control plane, started on first use; `None` (after saying why) when the binaries
/// are not built and the run does not require them.
pub fn shared() -> Option<&'static ControlPlane> {
    static SHARED: OnceLock<Option<ControlPlane>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let bin = bin_dir();
            let missing: Vec<&str> = ["etcd", "kube-apiserver", "kubectl", "helm"]
                .into_iter()
                .filter(|b| !bin.join(b).is_file())
                .collect();
            if !missing.is_empty() {
                let why = format!(
                    "the real control plane is not built ({} missing in {}; run tests/cluster/build)",
                    missing.join(", "),
                    bin.display()
                );
                assert!(!required(), "{why}");
                eprintln!("SKIPPED: {why}");
                return None;
            }
            Some(ControlPlane::start())
        })
        .as_ref()
}

/// Spawns every control-plane process from one thread that lives as long as the test binary:
/// the children's parent-death signal is tied to the thread that forked them, so a test thread
/// (which ends with its test) must not be the one.
pub fn spawn_tied(mut cmd: Command) -> Child {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                use std::os::unix::process::CommandExt as _;
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    cmd.stdin(Stdio::null());
    spawner
        .lock()
        .expect("spawner")
        .send((cmd, tx))
        .expect("spawner thread");
    rx.recv().expect("spawner reply").expect("spawn")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct ControlPlane {
    dir: PathBuf,
    pub bin: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub ca_pem: String,
    /// The admin's kube config (kubectl and Helm use it).
    pub admin_kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    children: Mutex<Vec<Child>>,
    api_args: Vec<String>,
    /// How long etcd and the API server took to answer `/readyz`.
    pub started_in: Duration,
    names: AtomicU32,
    chart: OnceLock<PathBuf>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver on free loopback ports and waits until `/readyz` says ready
    /// (a port taken in between: started again on others).
    pub fn start() -> ControlPlane {
        let bin = bin_dir();
        reap_stale_dirs();
        let mut last = String::new();
        for _ in 0..3 {
            match ControlPlane::try_start(&bin) {
                Ok(cp) => return cp,
                Err(e) => last = e,
            }
        }
        panic!("the control plane did not start:\n{last}");
    }

    fn try_start(bin: &Path) -> Result<ControlPlane, String> {
        let started = Instant::now();
        let dir = std::env::temp_dir().join(format!(
            "prefect-doctor-cp-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let pki = Pki::new();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("control plane file");
            p
        };
        let ca = file("ca.crt", &pki.ca_pem);
        file("alice.crt", &pki.alice.0);
        file("alice.key", &pki.alice.1);
        file("mallory.crt", &pki.mallory.0);
        file("mallory.key", &pki.mallory.1);
        let cert = file("apiserver.crt", &pki.server_cert_pem);
        let key = file("apiserver.key", &pki.server_key_pem);
        let sa_key = file("sa.key", &pki.sa_key_pem);
        let sa_pub = file("sa.pub", &pki.sa_public_pem);
        let tokens = file(
            "tokens.csv",
            &format!(
                "{ADMIN_TOKEN},admin,uid-admin,\"system:masters\"\n{NOBODY_TOKEN},{NOBODY},uid-nobody\n{TEAM_TOKEN},{TEAM},uid-team\n"
            ),
        );
        let policy = file(
            "audit-policy.yaml",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        );
        let audit_log = dir.join("audit.log");
        let (etcd_client, etcd_peer, api_port) = (free_port(), free_port(), free_port());
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");

        let mut etcd = Command::new(bin.join("etcd"));
        etcd.args([
            "--data-dir",
            &dir.join("etcd").display().to_string(),
            "--listen-client-urls",
            &format!("http://127.0.0.1:{etcd_client}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{etcd_client}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{etcd_peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{etcd_peer}"),
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{etcd_peer}"),
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
        ])
        .stdout(log("etcd.log"))
        .stderr(log("etcd.err"));
        let mut children = vec![spawn_tied(etcd)];

        let api_args: Vec<String> = [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            &format!("--secure-port={api_port}"),
            &format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
            &format!("--tls-cert-file={}", cert.display()),
            &format!("--tls-private-key-file={}", key.display()),
            &format!("--client-ca-file={}", ca.display()),
            "--service-account-issuer=https://kubernetes.default.svc",
            &format!("--service-account-key-file={}", sa_pub.display()),
            &format!("--service-account-signing-key-file={}", sa_key.display()),
            &format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", audit_log.display()),
            "--audit-log-mode=blocking",
            &format!("--cert-dir={}", dir.join("certs").display()),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        children.push(spawn_api_server(bin, &dir, &api_args, &[]));

        let url = format!("https://127.0.0.1:{api_port}");
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(
            &admin_kubeconfig,
            kubeconfig_text(&url, &pki.ca_pem, "admin", ADMIN_TOKEN, "default"),
        )
        .map_err(|e| e.to_string())?;
        let mut cp = ControlPlane {
            dir,
            bin: bin.to_path_buf(),
            url,
            ca_pem: pki.ca_pem,
            admin_kubeconfig,
            audit_log,
            children: Mutex::new(children),
            api_args,
            started_in: Duration::ZERO,
            names: AtomicU32::new(0),
            chart: OnceLock::new(),
        };
        cp.wait_ready()?;
        cp.started_in = started.elapsed();
        Ok(cp)
    }

    /// Waits until the API server says it is ready; `Err` with the logs' tails when it exits or
    /// takes a minute.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                return Ok(());
            }
            let exited = self
                .children
                .lock()
                .expect("children")
                .iter_mut()
                .any(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                let tail = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
                return Err(format!(
                    "not ready (exited: {exited}): {}\netcd: {}\napiserver: {}",
                    String::from_utf8_lossy(&out.stderr),
                    last_lines(&tail("etcd.err"), 10),
                    last_lines(&tail("apiserver.err"), 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the API server again over the same etcd with `extra` flags (e.g.
    /// `--runtime-config=autoscaling/v2=false`: a cluster upgraded to a version that no longer
    /// serves an API), and waits until it is ready.
    pub fn restart_api_server(&self, extra: &[&str]) {
        self.stop_api_server();
        let api = spawn_api_server(&self.bin, &self.dir, &self.api_args, extra);
        // The old one was waited for by stop_api_server; the new one is waited for in stop.
        self.children.lock().expect("children")[1] = api;
        self.wait_ready().expect("the API server did not come back");
    }

    /// Kills etcd and the API server (the API server first).
    pub fn stop(&self) {
        if let Ok(mut children) = self.children.lock() {
            for c in children.iter_mut().rev() {
                let _ = c.kill();
                let _ = c.wait();
            }
            children.clear();
        }
    }

    /// Kills the API server only: etcd stays (a client's next request meets a closed port).
    pub fn stop_api_server(&self) {
        if let Ok(mut children) = self.children.lock()
            && let Some(api) = children.get_mut(1)
        {
            let _ = api.kill();
            let _ = api.wait();
        }
    }

    /// Sends `signal` to the API server (SIGSTOP freezes it: connections stay open, nothing
    /// answers; SIGCONT thaws it).
    pub fn signal_api_server(&self, signal: i32) {
        if let Ok(children) = self.children.lock()
            && let Some(api) = children.get(1)
        {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(api.id() as i32, signal);
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A name no other test of this binary has: `PREFIX-N`.
    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// kubectl as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl")
    }

    /// kubectl as the admin; panics unless it succeeds; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply` of `yaml` (several documents) as the admin.
    pub fn apply(&self, yaml: &str) {
        self.kubectl_stdin(&["apply", "-f", "-"], yaml);
    }

    /// `kubectl create` of one object as the admin: the object the API server returns.
    /// `kubectl get KIND NAME -n NS -o json`, as JSON.
    pub fn get_json(&self, kind: &str, ns: &str, name: &str) -> Value {
        let out = self.kubectl_ok(&["get", kind, name, "-n", ns, "-o", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl get {kind} {name}: {e}"))
    }

    pub fn create(&self, yaml: &str) -> Value {
        let out = self.kubectl_stdin(&["create", "-o", "json", "-f", "-"], yaml);
        serde_json::from_str(&out).expect("kubectl create -o json")
    }

    /// kubectl as the admin with `input` on its stdin; panics unless it succeeds; its stdout.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> String {
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("kubectl stdin");
        let out = child.wait_with_output().expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n{input}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new namespace `PREFIX-N`.
    pub fn namespace(&self, prefix: &str) -> String {
        let ns = self.unique(prefix);
        self.kubectl_ok(&["create", "namespace", &ns]);
        // The controller manager would create it; pods that name no account run as it.
        self.kubectl_ok(&["create", "serviceaccount", "default", "-n", &ns]);
        ns
    }

    /// A token the API server issues for ServiceAccount `sa` of `ns` (created when missing), valid
    /// for an hour: its user is `system:serviceaccount:NS:SA`.
    pub fn service_account_token(&self, ns: &str, sa: &str) -> String {
        let _ = self.kubectl(&["create", "serviceaccount", sa, "-n", ns]);
        self.kubectl_ok(&["create", "token", sa, "-n", ns, "--duration=1h"])
            .trim()
            .to_string()
    }

    /// Writes a kube config naming this server (with its CA) to `path`: context `ctx`, user
    /// `user` with `token`, namespace `ns`.
    pub fn write_kubeconfig(&self, path: &Path, user: &str, token: &str, ns: &str) {
        std::fs::write(
            path,
            kubeconfig_text(&self.url, &self.ca_pem, user, token, ns),
        )
        .expect("kubeconfig");
    }

    /// Helm as the admin, with its caches and configuration in this control plane's directory.
    pub fn helm(&self, args: &[&str]) -> Output {
        self.helm_command(args).output().expect("helm")
    }

    /// Helm as the admin; panics unless it succeeds.
    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.helm(args);
        assert!(
            out.status.success(),
            "helm {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn helm_command(&self, args: &[&str]) -> Command {
        let home = self.dir.join("helm");
        let mut cmd = Command::new(self.bin.join("helm"));
        cmd.args(args)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null());
        cmd
    }

    /// The chart every release of the tests installs (see [`test_chart`]), written once.
    pub fn chart(&self) -> PathBuf {
        self.chart
            .get_or_init(|| {
                let dir = self.dir.join("chart-prefect-server");
                test_chart(&dir);
                dir
            })
            .clone()
    }

    /// `helm install RELEASE` of the test chart into `ns` (client-side apply: see docs/testing.md),
    /// with `extra` flags.
    pub fn install(&self, ns: &str, release: &str, extra: &[&str]) {
        let chart = self.chart().display().to_string();
        let mut args = vec![
            "install",
            release,
            chart.as_str(),
            "-n",
            ns,
            "--server-side=false",
            "--timeout",
            "60s",
        ];
        args.extend_from_slice(extra);
        self.helm_ok(&args);
    }

    /// The admin's kube config with `ns` as the context's namespace.
    pub fn admin_in(&self, ns: &str) -> PathBuf {
        let path = self.dir.join(format!("admin-{ns}.kubeconfig"));
        let text = std::fs::read_to_string(&self.admin_kubeconfig)
            .expect("admin kubeconfig")
            .replace("namespace: default", &format!("namespace: {ns}"));
        std::fs::write(&path, text).expect("kubeconfig");
        path
    }

    /// Every audit event (stage ResponseComplete or Panic) of requests made as `user`, in order.
    /// Waits until two reads a moment apart agree: the log is written as requests complete.
    pub fn audit_of(&self, user: &str) -> Vec<Value> {
        let read = || -> Vec<Value> {
            std::fs::read_to_string(&self.audit_log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["user"]["username"] == user && e["stage"] != "ResponseStarted")
                .collect()
        };
        let mut last = read();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(150));
            let now = read();
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
        last
    }
}

fn spawn_api_server(bin: &Path, dir: &Path, args: &[String], extra: &[&str]) -> Child {
    let log = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .expect("log file")
    };
    let mut api = Command::new(bin.join("kube-apiserver"));
    api.args(args)
        .args(extra)
        .stdout(log("apiserver.log"))
        .stderr(log("apiserver.err"));
    spawn_tied(api)
}

fn kubeconfig_text(url: &str, ca_pem: &str, user: &str, token: &str, ns: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: real\nclusters:\n- name: real\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: real\n  context:\n    cluster: real\n    user: {user}\n    namespace: {ns}\nusers:\n- name: {user}\n  user:\n    token: {token}\n"
    )
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Removes the directories of control planes whose test binary is gone (a binary that was killed
/// leaves its etcd data behind).
fn reap_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("prefect-doctor-cp-") else {
            continue;
        };
        let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
        // SAFETY: kill with signal 0 only asks whether the process exists.
        if let Some(pid) = pid
            && unsafe { libc::kill(pid, 0) } != 0
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
