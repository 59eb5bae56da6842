//! The kubeconfig as kubectl finds it, read with bounds: the files it names are read here too and put
//! inline, so the client library reads no file itself, and every credential is registered for
//! scrubbing the moment it is read.

use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

/// Reads the kubeconfig as kubectl finds it (`--kubeconfig`, else every file in `KUBECONFIG`,
/// merged, else `~/.kube/config`) with bounded reads. The files it names (CA, client certificate and
/// key, token file) are read here too, with the same bounds, and put inline, so the client library
/// reads no file itself; every credential is registered for scrubbing. `Ok(None)`: no file; `Err`:
/// why the configuration cannot be loaded.
pub fn read_kubeconfig(explicit: Option<&Path>) -> Result<Option<Kubeconfig>, String> {
    Ok(read_kubeconfig_from(explicit)?.map(|(kc, _)| kc))
}

/// The file each context came from (the first that names it wins, as kubectl merges).
pub type ContextFiles = std::collections::BTreeMap<String, PathBuf>;

/// As [`read_kubeconfig`], with the file each context was read from.
pub fn read_kubeconfig_from(
    explicit: Option<&Path>,
) -> Result<Option<(Kubeconfig, ContextFiles)>, String> {
    let paths: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => match std::env::var_os("KUBECONFIG") {
            Some(v) if std::env::split_paths(&v).any(|p| !p.as_os_str().is_empty()) => {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            }
            _ => match std::env::var_os("HOME") {
                Some(h) => {
                    let p = Path::new(&h).join(".kube").join("config");
                    if !p.exists() {
                        return Ok(None);
                    }
                    vec![p]
                }
                None => return Ok(None),
            },
        },
    };
    let mut merged: Option<Kubeconfig> = None;
    let mut from = ContextFiles::new();
    for path in &paths {
        // As kubectl: a file the KUBECONFIG list names that does not exist is skipped (a shell that
        // sets KUBECONFIG for several clusters); an explicit --kubeconfig must exist.
        if explicit.is_none() && !path.exists() {
            continue;
        }
        let text = crate::bounded::read_text(path, crate::bounded::MAX_CONFIG_FILE, "kubeconfig")
            .map_err(|e| e.to_string())?;
        yaml11_strings(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut kc =
            Kubeconfig::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        inline_files(&mut kc, path.parent().unwrap_or(Path::new(".")))?;
        for c in &kc.contexts {
            from.entry(c.name.clone()).or_insert_with(|| path.clone());
        }
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        });
    }
    Ok(merged.map(|kc| (kc, from)))
}

/// kubectl reads a kube config as YAML 1.1 (sigs.k8s.io/yaml), where a plain `n`, `yes`, `off` or
/// `123` is a boolean or a number, not a string: a name, cluster, user, namespace or current
/// context written so is a type error to kubectl, which refuses the file. The doctor's YAML reader
/// would take it as text and reach a cluster kubectl never would; so the same file is refused here,
/// with the line and what to write instead.
fn yaml11_strings(text: &str) -> Result<(), String> {
    const KEYS: [&str; 6] = [
        "name",
        "cluster",
        "user",
        "namespace",
        "current-context",
        "server",
    ];
    let not_a_string = |v: &str| {
        let bool11 = matches!(
            v,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
        );
        let number = !v.is_empty()
            && v.trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
            && v.chars().any(|c| c.is_ascii_digit());
        bool11 || number
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        if KEYS.contains(&key.trim()) && not_a_string(value) {
            return Err(format!(
                "line {}: {} {value} is not a string to kubectl (YAML 1.1 reads it as a {}), so \
                 kubectl refuses this file; quote it: {}: \"{value}\"",
                i + 1,
                key.trim(),
                if value.chars().any(|c| c.is_ascii_digit()) {
                    "number"
                } else {
                    "boolean"
                },
                key.trim()
            ));
        }
    }
    Ok(())
}

/// Puts the files a kubeconfig names inline (bounded reads) and registers its credentials.
fn inline_files(kc: &mut Kubeconfig, dir: &Path) -> Result<(), String> {
    use base64::Engine as _;
    use secrecy::ExposeSecret as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let read = |p: &str, what: &'static str| -> Result<Vec<u8>, String> {
        let path = dir.join(p);
        crate::bounded::read_file(&path, crate::bounded::MAX_PEM_FILE, what)
            .map_err(|e| e.to_string())
    };
    for named in &mut kc.clusters {
        if let Some(c) = &mut named.cluster
            && let Some(p) = c.certificate_authority.take()
        {
            c.certificate_authority_data = Some(b64.encode(read(&p, "certificate file")?));
        }
        if let Some(c) = &named.cluster
            && let Some(proxy) = &c.proxy_url
        {
            crate::redact::register_url_credentials(proxy);
        }
    }
    for named in &mut kc.auth_infos {
        let Some(a) = &mut named.auth_info else {
            continue;
        };
        if let Some(p) = a.client_certificate.take() {
            a.client_certificate_data = Some(b64.encode(read(&p, "certificate file")?));
        }
        if let Some(p) = a.client_key.take() {
            let key = String::from_utf8_lossy(&read(&p, "key file")?).into_owned();
            a.client_key_data = Some(b64.encode(key.as_bytes()).into());
        }
        if let Some(p) = a.token_file.take() {
            let token = String::from_utf8_lossy(&read(&p, "token file")?)
                .trim()
                .to_string();
            a.token = Some(token.into());
        }
        if let Some(exec) = &mut a.exec
            && let Some(cmd) = &exec.command
            && cmd.contains(std::path::MAIN_SEPARATOR)
            && Path::new(cmd).is_relative()
        {
            exec.command = Some(dir.join(cmd).display().to_string());
        }
        for secret in [&a.token, &a.password, &a.client_key_data]
            .into_iter()
            .flatten()
        {
            let s = secret.expose_secret();
            crate::redact::register(s);
            crate::redact::register(s.trim());
            // The key as PEM, when it is given inline as base64.
            if let Ok(pem) = b64.decode(s.trim()) {
                for line in String::from_utf8_lossy(&pem).lines() {
                    if !line.starts_with("-----") {
                        crate::redact::register(line.trim());
                    }
                }
            }
        }
        if let Some(p) = &a.auth_provider {
            for (k, v) in &p.config {
                if k.contains("token") || k.contains("secret") {
                    crate::redact::register(v);
                }
            }
        }
    }
    Ok(())
}

/// What an exec credential plugin printed (`client.authentication.k8s.io` ExecCredential).
#[derive(serde::Deserialize)]
struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

/// The most a plugin may print.
const MAX_PLUGIN_OUTPUT: u64 = 1024 * 1024;

/// Runs the exec credential plugin of `context`'s user (the current context for `None`), as kubectl
/// would for that user, but under `timeout`: a plugin that hangs is killed at the deadline and one
/// that fails is said by name, instead of the client library running it later with no deadline
/// at all. Its credential (token, or client certificate and key) replaces the plugin in `kc`, and is
/// registered as a secret the moment it is read. A plugin that must ask the person
/// (`interactiveMode: Always`) is refused: prefect-doctor gives it no terminal.
pub async fn run_exec_plugin(
    kc: &mut Kubeconfig,
    context: Option<&str>,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use kube::config::ExecInteractiveMode;
    let Some(ctx_name) = context
        .map(str::to_string)
        .or_else(|| kc.current_context.clone())
    else {
        return Ok(());
    };
    let Some(ctx) = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
    else {
        return Ok(());
    };
    let Some(user) = ctx.user else {
        return Ok(());
    };
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone());
    let Some(auth) = kc
        .auth_infos
        .iter_mut()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.as_mut())
    else {
        return Ok(());
    };
    let Some(exec) = auth.exec.clone() else {
        return Ok(());
    };
    let command = exec.command.clone().unwrap_or_default();
    let shown = format!(
        "the exec credential plugin {} of user {}",
        crate::untrusted::line(&command, 200),
        crate::untrusted::line(&user, 100)
    );
    if command.is_empty() {
        return Err(format!("{shown} names no command"));
    }
    if exec.interactive_mode == Some(ExecInteractiveMode::Always) {
        return Err(format!(
            "{shown} must ask for input (interactiveMode: Always), and prefect-doctor runs it \
             without a terminal: log in with kubectl first, or use a token"
        ));
    }
    let mut spec = serde_json::json!({ "interactive": false });
    if exec.provide_cluster_info
        && let Some(c) = &cluster
    {
        spec["cluster"] = serde_json::json!({
            "server": c.server,
            "certificate-authority-data": c.certificate_authority_data,
            "insecure-skip-tls-verify": c.insecure_skip_tls_verify,
            "tls-server-name": c.tls_server_name,
            "proxy-url": c.proxy_url,
        });
    }
    let info = serde_json::json!({
        "apiVersion": exec.api_version.clone().unwrap_or_else(|| "client.authentication.k8s.io/v1".into()),
        "kind": "ExecCredential",
        "spec": spec,
    });
    let mut cmd = std::process::Command::new(&command);
    cmd.args(exec.args.clone().unwrap_or_default())
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for pair in exec.env.iter().flatten() {
        if let (Some(n), Some(v)) = (pair.get("name"), pair.get("value")) {
            cmd.env(n, v);
        }
    }
    let ran = tokio::task::spawn_blocking(move || run_bounded(cmd, timeout))
        .await
        .map_err(|e| format!("{shown} could not be run: {e}"))?;
    let (status, stdout, stderr) = ran.map_err(|why| format!("{shown} {why}"))?;
    if !status.success() {
        // Its error output is not shown: a credential plugin's words can hold what it guards.
        let _ = stderr;
        return Err(format!(
            "{shown} failed ({status}); run it yourself to see why (its own output is not shown, \
             as it may hold a credential)"
        ));
    }
    let cred: ExecCredential = serde_saphyr::from_slice(&stdout)
        .map_err(|_| format!("{shown} printed no ExecCredential"))?;
    let status = cred
        .status
        .ok_or_else(|| format!("{shown} printed an ExecCredential without a status"))?;
    for s in [&status.token, &status.client_key_data]
        .into_iter()
        .flatten()
    {
        crate::redact::register(s);
    }
    match (
        status.token,
        status.client_certificate_data,
        status.client_key_data,
    ) {
        (Some(token), _, _) => auth.token = Some(token.into()),
        (None, Some(cert), Some(key)) => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            auth.client_certificate_data = Some(b64.encode(cert));
            auth.client_key_data = Some(b64.encode(key).into());
        }
        _ => {
            return Err(format!(
                "{shown} printed neither a token nor a client certificate and key"
            ));
        }
    }
    auth.exec = None;
    Ok(())
}

/// Runs `cmd` to its end or `timeout`, whichever is first (then it is killed): its status and
/// output (each capped), or why not.
fn run_bounded(
    mut cmd: std::process::Command,
    timeout: std::time::Duration,
) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>), String> {
    use std::io::Read as _;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    // Read on threads of their own, waited for no longer than the deadline: a plugin that leaves
    // a process holding its output open cannot hold the run.
    let readers = [
        out.take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        err.take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .map(|r| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_PLUGIN_OUTPUT).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} and was stopped",
                    crate::untrusted::duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    let [o, e] = readers.map(|rx| {
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_default()
    });
    Ok((status, o, e))
}
