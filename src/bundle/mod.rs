//! Support bundles: what a `check` run saw, recorded at the probe boundary, redacted, in one gzip'd
//! tar, and re-analysed anywhere by the same checks (`check --from`). [`write`] makes one, [`read`]
//! opens one (as hostile input).

pub mod people;
pub mod read;
mod redacting;
pub mod write;

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    probes::pg_target::DbTarget,
    report::{Release, Target},
    targets::{ApiTarget, UiTarget, reach::Unreached},
};

/// The bundle format this program writes and reads. A newer one is refused.
pub const FORMAT: u32 = 1;

/// Default `--max-size`.
pub const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;

/// What a replay needs besides the tape: the run's targets and the names its fixes are filled with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub targets: Vec<Target>,
    pub notices: Vec<String>,
    pub release: Option<Release>,
    /// The database target, without its password.
    pub db: Option<DbTarget>,
    pub unreached: Unreached,
    pub api: Option<ApiTarget>,
    pub ui: Option<UiTarget>,
    pub hasura_user: String,
    pub vars: BTreeMap<String, String>,
    /// The cluster the recorded run looked at.
    pub kube: Option<KubeReplay>,
    pub db_size_warning: u64,
    pub timeout: Duration,
    pub insecure: bool,
}

/// The recorded run's cluster: its probe and what discovery looked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KubeReplay {
    pub probe: crate::probes::kube::KubeSnap,
    pub release: Option<String>,
    pub explicit: bool,
}

/// `manifest.json`: what the bundle is and holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub doctor_version: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The command line, secrets masked.
    pub command_line: Vec<String>,
    /// Each file and what it holds.
    pub collected: Vec<Collected>,
    /// What was not collected, and why.
    pub left_out: Vec<LeftOut>,
    /// What was cut to keep under `--max-size`.
    #[serde(default)]
    pub cut: Vec<String>,
    /// How many `--redact`/`[redact]` patterns were applied (the patterns themselves may name
    /// what they hide).
    #[serde(default)]
    pub redact_patterns: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collected {
    pub file: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeftOut {
    pub what: String,
    pub why: String,
}
