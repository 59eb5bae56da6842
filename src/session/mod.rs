//! Sessions: from the parsed arguments to "what this run looks at" (targets, the fixes' placeholder
//! values, notices, the check context) and a report. A run of an install is assembled in one place,
//! [`run`], step after step; `preflight.rs` builds its own context; [`Setup`] runs either through the
//! engine.

pub mod bundle;
pub mod check;
pub mod context;
pub mod fix;
pub mod fleet;
pub mod preflight;
pub mod run;
pub mod serve;
pub mod settings;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    catalog::{Catalog, Mode},
    checks::{CheckDef, Checks, Cx},
    engine::{self, RunOptions, Selection, rounds::Progress},
    report::CheckResult,
};

/// What every reporting session takes, whatever the command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Common {
    /// Run only the checks whose id matches (repeatable), e.g. --only 'db.*'.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Do not run the checks whose id matches (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Deadline for each check and each connection, e.g. 5s, 500ms, 1m [default: 5s, or the config
    /// file's timeout].
    #[arg(long, value_name = "DUR", value_parser = crate::bounded::parse_timeout)]
    pub timeout: Option<Duration>,
    /// The config file [default: ./.prefect-doctor.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// User checks: a file or a folder of *.toml (repeatable); also the config file's `checks` and
    /// ./.prefect-doctor/checks when it exists.
    #[arg(long, value_name = "PATH")]
    pub checks: Vec<PathBuf>,
}

/// The checks of a run: the built-in ones and the user checks of `flags`, the config file's `checks`
/// and the default folder. `Err`: every problem of the user check files (a usage error).
pub fn assemble(flags: &[PathBuf], config: Option<&crate::config::File>) -> Result<Checks, String> {
    let from_config = crate::config::check_paths(config);
    let paths = crate::user_checks::sources(flags, &from_config);
    if paths.is_empty() {
        return Ok(Checks::builtin());
    }
    crate::user_checks::load(&paths, Catalog::builtin())
        .map(Checks::with_user)
        .map_err(|errors| errors.join("\n"))
}

/// What a run is made of before it looks at anything: the config file (read once: it names user
/// checks, and its ids may be theirs), the checks and the selection. A fleet run makes it once for
/// all its releases.
#[derive(Clone)]
pub(crate) struct Assembly {
    config: crate::config::Loaded,
    timeout: Duration,
    checks: Checks,
    selected: Vec<&'static CheckDef>,
}

impl Assembly {
    /// Reads the config file and the user checks and selects; `Err` is a usage error.
    pub(crate) fn new(common: &Common, mode: Mode) -> Result<Assembly, String> {
        let file = crate::config::read(common.config.as_deref())?;
        let checks = assemble(&common.checks, file.as_ref())?;
        let catalog = checks.catalog;
        let config = crate::config::load(file, catalog)?;
        let timeout = common
            .timeout
            .or(config.timeout)
            .unwrap_or(Duration::from_secs(5));
        let selected = engine::select(
            catalog,
            checks.registry,
            mode,
            &Selection {
                only: common.only.clone(),
                skip: common
                    .skip
                    .iter()
                    .cloned()
                    .chain(config.skip.keys().cloned())
                    .collect(),
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Assembly {
            config,
            timeout,
            checks,
            selected,
        })
    }
}

/// What both reporting commands set up before looking at anything.
pub(crate) struct Setup {
    started: Instant,
    pub(crate) config: crate::config::Loaded,
    pub(crate) timeout: Duration,
    pub(crate) checks: Checks,
    selected: Vec<&'static CheckDef>,
    pub(crate) runtime: Runtime,
}

/// The runtime a session's probes run on: its own, or a fleet run's (whose Kubernetes clients, made
/// on it for the listing, every release's run shares: their connection pools' tasks live there).
pub(crate) enum Runtime {
    Own(tokio::runtime::Runtime),
    Shared(tokio::runtime::Handle),
}

impl Runtime {
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Runtime::Own(r) => r.block_on(f),
            Runtime::Shared(h) => h.block_on(f),
        }
    }

    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        match self {
            Runtime::Own(r) => r.enter(),
            Runtime::Shared(h) => h.enter(),
        }
    }

    /// Stops an own runtime without waiting for stuck name lookups or connections; a shared one is
    /// its owner's to stop.
    fn shutdown_background(self) {
        if let Runtime::Own(r) = self {
            r.shutdown_background();
        }
    }
}

impl Setup {
    /// Reads the config file and the selection and starts the runtime; `Err` is a usage error.
    pub(crate) fn new(common: &Common, mode: Mode) -> Result<Setup, String> {
        Setup::on(common, mode, None)
    }

    /// As [`Setup::new`], on `shared` when given (a fleet run's runtime) instead of a new one.
    pub(crate) fn on(
        common: &Common,
        mode: Mode,
        shared: Option<tokio::runtime::Handle>,
    ) -> Result<Setup, String> {
        let started = Instant::now();
        Setup::of(Assembly::new(common, mode)?, shared, started)
    }

    /// A setup from what was assembled already (a fleet's, made once for all its releases).
    pub(crate) fn of(
        assembly: Assembly,
        shared: Option<tokio::runtime::Handle>,
        started: Instant,
    ) -> Result<Setup, String> {
        let Assembly {
            config,
            timeout,
            checks,
            selected,
        } = assembly;
        let runtime = match shared {
            Some(h) => Runtime::Shared(h),
            None => Runtime::Own(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))?,
            ),
        };
        Ok(Setup {
            started,
            config,
            timeout,
            checks,
            selected,
            runtime,
        })
    }

    /// Runs the selected checks (rounds with `wait`) and adds the config file's skips; returns the
    /// results and the run's wall time in milliseconds.
    pub(crate) fn run_checks(
        self,
        make_cx: &(dyn Fn() -> Arc<Cx> + Sync),
        wait: Option<Duration>,
        progress: &dyn Progress,
    ) -> (Vec<CheckResult>, u64) {
        let results = self.run_some(None, make_cx, wait, progress);
        self.finish(results)
    }

    /// Runs the selected checks, or only those of them named in `ids`; the runtime stays up.
    pub(crate) fn run_some(
        &self,
        ids: Option<&[&str]>,
        make_cx: &(dyn Fn() -> Arc<Cx> + Sync),
        wait: Option<Duration>,
        progress: &dyn Progress,
    ) -> Vec<CheckResult> {
        let opts = RunOptions {
            timeout: self.timeout,
            severity_overrides: self.config.severity.clone(),
        };
        let selected: Vec<&'static CheckDef> = self
            .selected
            .iter()
            .copied()
            .filter(|d| ids.is_none_or(|ids| ids.contains(&d.id)))
            .collect();
        self.runtime.block_on(engine::rounds::run_rounds(
            self.checks,
            &selected,
            &opts,
            make_cx,
            wait,
            progress,
        ))
    }

    /// Ends the run: stops the runtime and adds the config file's skips to `results`; returns them
    /// and the run's wall time in milliseconds.
    pub(crate) fn finish(self, results: Vec<CheckResult>) -> (Vec<CheckResult>, u64) {
        let catalog = self.checks.catalog;
        // Do not wait for stuck name lookups or connections: everything needed is in `results`.
        self.runtime.shutdown_background();
        let results =
            engine::with_config_skips(results, &self.config, catalog, self.checks.registry);
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        (results, elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve` assembles the checks every interval and a fleet run once per release: the same files
    /// make the same (program-long) checks, not a leaked copy each time; a changed file makes new ones.
    #[test]
    fn the_same_user_check_files_are_made_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/checks");
        for entry in std::fs::read_dir(&examples).expect("examples/checks") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, dir.path().join(path.file_name().expect("a name"))).expect("copy");
        }
        let flags = [dir.path().to_path_buf()];
        let a = assemble(&flags, None).expect("the examples load");
        let b = assemble(&flags, None).expect("the examples load");
        assert!(a.registry.len() > REGISTRY_LEN, "user checks were loaded");
        assert!(std::ptr::eq(a.catalog, b.catalog) && std::ptr::eq(a.registry, b.registry));

        let file = dir.path().join("agent-labels.toml");
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, format!("# edited\n{text}")).expect("write");
        let c = assemble(&flags, None).expect("the edited examples load");
        assert!(!std::ptr::eq(a.catalog, c.catalog) && !std::ptr::eq(a.registry, c.registry));
    }

    const REGISTRY_LEN: usize = crate::checks::REGISTRY.len();
}
