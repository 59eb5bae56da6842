//! The targets of one run, found once and returned as plain data: the Helm release's database, API
//! and UI when Kubernetes is asked for (or a kube config is found and nothing was given directly),
//! each direct flag winning over what the release gives; else the flags, the user's configuration
//! and the local defaults ([`super::resolve`]).

use std::time::Duration;

use super::{
    Given, Targets,
    reach::{KubeRun, Unreached},
};
use crate::probes::{
    kube::{KubeOptions, config_available},
    pg_target::Env,
    prefect_config::PrefectConfig,
    tape::TapeMode,
};

/// What a run asks to look at, as its flags and config file say it.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub database_url: Option<String>,
    pub api_url: Option<String>,
    pub ui_url: Option<String>,
    /// How to find the cluster (kubectl's flags; the namespace may be the config file's).
    pub kube: KubeOptions,
    /// The release to diagnose (`--release`, else the config file's).
    pub release: Option<String>,
    /// Kubernetes was asked for on the command line: a cluster out of reach is the run's error or
    /// finding, never silently replaced by the local defaults.
    pub explicit_kube: bool,
}

impl Ask {
    /// The direct flags.
    pub fn given(&self) -> Given<'_> {
        Given {
            database_url: self.database_url.as_deref(),
            api_url: self.api_url.as_deref(),
            ui_url: self.ui_url.as_deref(),
        }
    }

    /// Whether a target was given directly (then a found kube config is not looked at unless asked).
    fn direct(&self) -> bool {
        self.database_url.is_some() || self.api_url.is_some() || self.ui_url.is_some()
    }
}

/// What [`find`] found.
pub struct Found {
    /// The cluster side, when one was looked at: its client and what discovery found.
    pub kube: Option<KubeRun>,
    pub targets: Targets,
    /// Why a part of the release could not be reached.
    pub unreached: Unreached,
    /// (release, namespace) of the release found.
    pub release: Option<(String, String)>,
    /// What the report's top says of the cluster (the targets' own notices are in `targets`).
    pub notices: Vec<String>,
}

/// Finds the run's targets. `kube`, when given, is the cluster side made already (a fleet's listing);
/// else one is made when asked for or available. `Err` is a usage error: a flag's bad value, or a
/// cluster asked for on the command line whose kube config cannot be used.
pub async fn find(
    ask: &Ask,
    prefect: &PrefectConfig,
    env: &dyn Env,
    kube: Option<KubeRun>,
    timeout: Duration,
    tape: &TapeMode,
) -> Result<Found, String> {
    let given = ask.given();
    let mut notices = Vec::new();
    let want_kube = ask.explicit_kube || (!ask.direct() && config_available(&ask.kube, env));
    let kube = match kube {
        Some(k) => Some(k),
        None if want_kube => {
            match KubeRun::start(&ask.kube, ask.release.as_deref(), timeout, tape).await {
                Ok(k) => Some(k),
                Err(e) if ask.explicit_kube => return Err(e.to_string()),
                Err(e) => {
                    notices.push(format!(
                        "not looking at a cluster ({e}); checking the local defaults"
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let reached = match &kube {
        Some(k) => Some(k.reach(&given, ask.explicit_kube).await),
        None => None,
    };
    let targets = match &reached {
        Some(r) if r.use_release => r.targets(&given, env)?,
        _ => super::resolve(&given, env, prefect)?,
    };
    let (unreached, release) = match reached {
        Some(r) => {
            notices.extend(r.notices);
            (r.unreached, r.release)
        }
        None => (Unreached::default(), None),
    };
    Ok(Found {
        kube,
        targets,
        unreached,
        release,
        notices,
    })
}
