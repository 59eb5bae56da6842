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
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        });
    }
    Ok(merged)
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
