//! Where the cluster is, as kubectl's flags say it, and whether a configuration exists to be tried.

use std::path::PathBuf;

use super::pg_env::Env;

/// How to find the cluster, as kubectl's flags say it.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
}

impl KubeOptions {
    /// Whether the user asked for Kubernetes on the command line.
    pub fn explicit(&self) -> bool {
        self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some()
            || self.all_namespaces
    }
}

/// Whether a cluster configuration exists to be tried: a kubeconfig (flag, `KUBECONFIG`,
/// `~/.kube/config`) or the in-cluster service account.
pub fn config_available(opts: &KubeOptions, env: &dyn Env) -> bool {
    if opts.kubeconfig.is_some() {
        return true;
    }
    if let Some(paths) = env.var("KUBECONFIG") {
        return std::env::split_paths(&paths).any(|p| p.is_file());
    }
    if env.var("HOME").is_some_and(|h| {
        std::path::Path::new(&h)
            .join(".kube")
            .join("config")
            .is_file()
    }) {
        return true;
    }
    env.var("KUBERNETES_SERVICE_HOST").is_some()
        && std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
}

/// Why no cluster configuration could be loaded, said as the places looked at (kubectl's order) and
/// what to pass; `incluster` is the client library's reason the in-cluster account failed.
pub(super) fn nowhere_found(incluster: &str) -> String {
    let kubeconfig = match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => format!(
            "KUBECONFIG ({}: no such file)",
            crate::untrusted::escape(&v.to_string_lossy())
        ),
        _ => "KUBECONFIG (not set)".to_string(),
    };
    let home = match std::env::var_os("HOME") {
        Some(h) => format!("{}/.kube/config (no such file)", h.to_string_lossy()),
        None => "~/.kube/config (HOME is not set)".to_string(),
    };
    let pod = if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        "not in a pod: KUBERNETES_SERVICE_HOST is not set".to_string()
    } else {
        incluster.to_string()
    };
    format!(
        "no kube config found: looked at {kubeconfig}, {home} and the in-cluster service account \
         ({pod}). Pass --kubeconfig FILE (and --context NAME), set KUBECONFIG, or give the targets \
         directly with --database-url, --api-url and --ui-url"
    )
}
