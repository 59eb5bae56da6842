//! A run of a running install, read top to bottom in one place:
//!
//! 1. **settings**: the config file, the checks and the selection ([`super::Assembly`]), and the
//!    flags as plain data ([`Settings`]);
//! 2. **targets**, found once by `targets/` ([`crate::targets::find`]): plain data;
//! 3. **context**: the report's head and a factory of check contexts ([`super::context`]);
//! 4. **engine**: the checks, in rounds with `--wait` ([`super::Setup::run_checks`]);
//! 5. **report**: [`super::context::Scope::report`]; the CLI renders it.
//!
//! `check` and every release of a fleet run all five; `bundle` prepares the run recording, `fix`
//! prepares it and drives the engine itself (plan, apply, check again), `serve` runs it on an
//! interval. Each step takes the previous step's value and knows nothing of the steps after it; no
//! command calls another.

use std::{sync::Arc, time::Instant};

use super::{
    Assembly, Setup,
    check::CheckInput,
    context::{self, CxFactory, Scope},
    settings::Settings,
};
use crate::{
    catalog::{Catalog, Mode},
    engine::rounds::Progress,
    probes::{
        kube::KubeProbe, pg_target::ProcessEnv, prefect_config::PrefectConfig, tape::TapeMode,
    },
    report::Report,
    targets::{find::find, reach::KubeRun, release::discover},
};

/// A run made ready: its targets found, nothing checked yet.
pub(crate) struct Prepared {
    pub(crate) setup: Setup,
    pub(crate) factory: CxFactory,
    pub(crate) scope: Scope,
}

/// What a fleet gives the run of one release it listed, made once for the fleet or by its listing.
pub(crate) struct Preset {
    /// The cluster side: its context's client, the release as the listing decoded it.
    pub(crate) kube: KubeRun,
    /// The runtime that client lives on (its connection pool's tasks are there).
    pub(crate) runtime: tokio::runtime::Handle,
    /// The config file, checks and selection.
    pub(crate) assembly: Assembly,
    /// The local Prefect CLI's configuration, read once for the fleet.
    pub(crate) prefect: Arc<PrefectConfig>,
}

/// `prefect-doctor check`: one install, live, or again from a support bundle (`--from`). `Err` is a
/// usage error.
pub fn check(
    args: &CheckInput,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let prepared = match &args.from {
        Some(path) => replay(args, path)?,
        None => prepare(args, TapeMode::Live, None)?,
    };
    Ok(checked(prepared, args, progress))
}

/// One release of a fleet, from what the fleet made for it.
pub(crate) fn release(
    args: &CheckInput,
    preset: Preset,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let prepared = prepare(args, TapeMode::Live, Some(preset))?;
    Ok(checked(prepared, args, progress))
}

/// Steps 1–3: settings, targets, context. Every probe records when `tape` says so (the cluster's
/// from its first call); `preset` is a fleet's, else everything is made here. `Err` is a usage error.
pub(crate) fn prepare(
    args: &CheckInput,
    tape: TapeMode,
    preset: Option<Preset>,
) -> Result<Prepared, String> {
    let started = Instant::now();
    // 1. Settings.
    let (assembly, runtime, kube, prefect) = match preset {
        Some(p) => (p.assembly, Some(p.runtime), Some(p.kube), p.prefect),
        None => (
            Assembly::new(&args.common, Mode::Check)?,
            None,
            None,
            Arc::new(PrefectConfig::load(&ProcessEnv)),
        ),
    };
    let settings = Settings::of(args, &assembly.config, assembly.timeout)?;
    let setup = Setup::of(assembly, runtime, started)?;
    // 2. Targets.
    let found = setup.runtime.block_on(find(
        &settings.ask,
        &prefect,
        &ProcessEnv,
        kube,
        settings.timeout,
        &tape,
    ))?;
    // 3. Context.
    let (scope, factory) = context::live(found, &settings, prefect, tape);
    Ok(Prepared {
        setup,
        factory,
        scope,
    })
}

/// Steps 1–3 from the support bundle at `path`: the settings of this invocation, the targets and
/// context the bundle recorded, every probe answering from its tape; nothing is looked at live.
/// `check --from` runs it; `fix --from` plans from it (and can never apply).
pub(crate) fn replay(args: &CheckInput, path: &std::path::Path) -> Result<Prepared, String> {
    let bundle = crate::bundle::read::read(path)?;
    // 1. Settings.
    let setup = Setup::new(&args.common, Mode::Check)?;
    // 2. Targets: as recorded; the cluster's release is discovered again from the recorded answers.
    let s = &bundle.snapshot;
    let tape = Arc::new(bundle.tape);
    let discovery = s.kube.as_ref().map(|k| {
        // The replayed client's buffer starts a task: inside the runtime.
        let _in_runtime = setup.runtime.enter();
        let probe = KubeProbe::replayed(tape.clone(), &k.probe);
        let found = setup
            .runtime
            .block_on(discover(&probe, k.release.as_deref()));
        (probe, Arc::new(found))
    });
    // 3. Context.
    let factory = CxFactory::replay(s, tape, discovery);
    let mut notices = vec![format!(
        "re-analysed from the bundle {} (made {} by prefect-doctor {}): nothing was looked at live",
        path.display(),
        bundle.manifest.created,
        bundle.manifest.doctor_version
    )];
    notices.extend(s.notices.iter().cloned());
    let scope = Scope {
        targets: s.targets.clone(),
        notices,
        release: s.release.clone(),
    };
    Ok(Prepared {
        setup,
        factory,
        scope,
    })
}

/// Steps 4–5: the checks on what was prepared, and the report.
fn checked(
    prepared: Prepared,
    args: &CheckInput,
    progress: &dyn Progress,
) -> (Report, &'static Catalog) {
    let Prepared {
        setup,
        factory,
        scope,
    } = prepared;
    let catalog = setup.checks.catalog;
    // 4. Engine.
    let (results, elapsed) = setup.run_checks(&|| factory.make(), args.wait, progress);
    // 5. Report.
    (scope.report(results, args.common.strict, elapsed), catalog)
}
