//! The first step of a run: `check`'s flags and the config file, read once into plain data. Nothing
//! here looks at anything.

use std::time::Duration;

use super::check::CheckInput;
use crate::{probes::kube::KubeOptions, targets::find::Ask};

/// What a run of `check` (and of `fix`, `bundle`, `serve`, a fleet's release) is asked, after the
/// config file has said its part.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// What to look at.
    pub(crate) ask: Ask,
    /// `--hasura-user`.
    pub(crate) hasura_user: Option<String>,
    pub(crate) insecure: bool,
    pub(crate) resolve: Vec<(String, std::net::SocketAddr)>,
    pub(crate) timeout: Duration,
    pub(crate) db_size_warning: u64,
}

impl Settings {
    /// `Err` is a usage error.
    pub(crate) fn of(
        args: &CheckInput,
        config: &crate::config::Loaded,
        timeout: Duration,
    ) -> Result<Settings, String> {
        let kube = KubeOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: match args.context.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                _ => return Err("several --context name a fleet: diagnose it with check".into()),
            },
            namespace: args.namespace.clone().or(config.namespace.clone()),
            all_namespaces: args.all_namespaces,
        };
        let explicit_kube = kube.kubeconfig.is_some()
            || kube.context.is_some()
            || args.namespace.is_some()
            || args.all_namespaces
            || args.release.is_some();
        Ok(Settings {
            ask: Ask {
                database_url: args.database_url.clone(),
                api_url: args.api_url.clone(),
                ui_url: args.ui_url.clone(),
                kube,
                release: args.release.clone().or(config.release.clone()),
                explicit_kube,
            },
            hasura_user: args.hasura_user.clone(),
            insecure: args.insecure,
            resolve: args.resolve.clone(),
            timeout,
            db_size_warning: config
                .db_size_warning
                .unwrap_or(crate::config::DEFAULT_DB_SIZE_WARNING),
        })
    }
}
