//! Every release at once: `check -A`, `check -n NS` where several releases share the namespace, and
//! `--context` given more than once. The releases are listed first (each context's own probe), then
//! each is diagnosed as `check --context C -n NS --release R` would, `--parallel` at a time, each
//! with its own port-forwards and connections, all on the listing's runtime; the Kubernetes client
//! (its kubeconfig, TLS and connection pool) is its context's, made once for the listing, and the
//! release is the one the listing decoded. A release that cannot be reached is that release's
//! finding; a release that cannot be read, and a context that cannot be listed, are said and the
//! others go on.

use std::sync::{Arc, Mutex};

use super::check::CheckInput;
pub use crate::fleet_report::{Fleet, Member, Unlisted};
use crate::{
    engine::rounds::{Progress, Quiet},
    probes::kube::{KubeOptions, KubeProbe},
    report::Report,
    targets::{
        reach::KubeRun,
        release::{Discovery, Found, list},
    },
};

/// Releases diagnosed at once unless `--parallel` says otherwise: a fleet of up to 20 releases (a
/// team's stages, a namespace of tenants) is one round, its wall time little more than one
/// release's when the run waits on the network. A release in flight costs the doctor about
/// 1.3 MiB (docs/fleet.md), the API server a few port-forward streams (long-running requests, which its in-flight
/// limits do not count) and its database one session (docs/fleet.md).
pub const CONCURRENT: u8 = 20;

/// How a fleet is run, for `check` and `serve` (the commands that run fleets).
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// Releases diagnosed at once when a run finds several (-A, -n NS, --context repeated), 1 to
    /// 64. Each holds its own port-forwards and database session while it runs.
    #[arg(long, value_name = "N", default_value_t = CONCURRENT, conflicts_with = "from",
          value_parser = clap::value_parser!(u8).range(1..=64))]
    pub parallel: u8,
}

/// What a run looks at.
pub enum Plan {
    /// One install, as `check` always did.
    Single,
    Fleet(Roster),
}

/// What the listing holds for one member: its context's client scoped to its namespace, and its
/// release as decoded (read into a [`Found`] only when its run starts).
struct Preset {
    probe: KubeProbe,
    release: Box<crate::chart::release::Release>,
}

impl Preset {
    /// What the release's run starts from, on the listing's runtime.
    fn into_run(self, runtime: &tokio::runtime::Runtime, shared: &Shared) -> super::run::Preset {
        super::run::Preset {
            kube: KubeRun {
                probe: self.probe,
                discovery: Arc::new(Discovery::Release(Box::new(Found::of(*self.release)))),
            },
            runtime: runtime.handle().clone(),
            assembly: shared.assembly.clone(),
            prefect: shared.prefect.clone(),
        }
    }
}

/// What every release's run of a fleet starts from, made once: the config file, the checks and the
/// selection, and the local Prefect CLI's configuration.
struct Shared {
    assembly: super::Assembly,
    prefect: Arc<crate::probes::prefect_config::PrefectConfig>,
}

/// The releases a fleet run diagnoses, each with what its listing already holds: its context's
/// client and its release as decoded. Every run of the fleet is on the listing's runtime, which the
/// roster keeps: the clients' connection pools live on it.
pub struct Roster {
    pub members: Vec<Member>,
    pub unlisted: Vec<Unlisted>,
    /// One per member, in its order.
    presets: Vec<Preset>,
    /// The runtime the listing's clients were made on, and every release's run is on.
    runtime: tokio::runtime::Runtime,
}

/// Whether `args` asks about a fleet, and which releases it holds. `Err` is a usage error.
pub fn plan(args: &CheckInput) -> Result<Plan, String> {
    let asks = args.from.is_none()
        && args.release.is_none()
        && (args.all_namespaces || args.namespace.is_some() || args.context.len() > 1);
    if !asks {
        return Ok(Plan::Single);
    }
    let contexts: Vec<Option<String>> = if args.context.is_empty() {
        vec![None]
    } else {
        args.context.iter().cloned().map(Some).collect()
    };
    let timeout = args
        .common
        .timeout
        .unwrap_or(std::time::Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    type Listed = (
        Option<String>,
        Result<Vec<(Member, Preset)>, String>,
        Vec<String>,
    );
    let listed: Vec<Listed> = runtime.block_on(async {
        let lists = contexts.iter().map(|ctx| async move {
            let opts = KubeOptions {
                kubeconfig: args.kubeconfig.clone(),
                context: ctx.clone(),
                namespace: args.namespace.clone(),
                all_namespaces: args.all_namespaces,
            };
            let unlisted = |e: String| -> Listed {
                (
                    ctx.clone(),
                    Err(format!("cannot list Helm releases: {e}")),
                    Vec::new(),
                )
            };
            let live = crate::probes::tape::TapeMode::Live;
            let probe = match KubeProbe::connect_with(&opts, timeout, &live).await {
                Ok(p) => p,
                Err(e) => return unlisted(e.to_string()),
            };
            let mut listing = match list(&probe).await {
                Ok(l) => l,
                Err(e) => return unlisted(e.to_string()),
            };
            // A release that is there but cannot be read is said, never dropped; then the counts
            // of those not read in time or beyond the cap.
            let mut unread: Vec<String> = listing
                .unread
                .drain(..)
                .map(|(ns, name, why)| format!("cannot read release {ns}/{name}: {why}"))
                .collect();
            unread.extend(
                listing
                    .skipped(timeout)
                    .map(|s| format!("releases skipped: {s}")),
            );
            let members = listing
                .releases
                .into_iter()
                .map(|r| {
                    let member = Member {
                        context: ctx.clone(),
                        namespace: r.namespace.clone(),
                        release: r.name.clone(),
                    };
                    let preset = Preset {
                        probe: probe.scoped(&r.namespace),
                        release: Box::new(r),
                    };
                    (member, preset)
                })
                .collect();
            (ctx.clone(), Ok(members), unread)
        });
        futures::future::join_all(lists).await
    });
    let mut members = Vec::new();
    let mut presets = Vec::new();
    let mut unlisted = Vec::new();
    for (context, result, unread) in listed {
        match result {
            Ok(m) => {
                for (member, preset) in m {
                    members.push(member);
                    presets.push(preset);
                }
            }
            Err(error) => unlisted.push(Unlisted {
                context: context.clone(),
                error,
            }),
        }
        // Masked, escaped and capped with the rest in `Fleet::sanitized`, before any renderer.
        unlisted.extend(unread.into_iter().map(|error| Unlisted {
            context: context.clone(),
            error,
        }));
    }
    // One release of one cluster: today's single run (and its shape). A cluster out of reach with
    // no other one: the single run says so, as ever.
    if contexts.len() == 1 && members.len() <= 1 && unlisted.is_empty() {
        return Ok(Plan::Single);
    }
    if args.database_url.is_some() || args.api_url.is_some() || args.ui_url.is_some() {
        return Err(format!(
            "--database-url, --api-url and --ui-url name one install, but {} releases were found: \
             name one with --release, or leave the URLs out to diagnose each through the cluster",
            members.len()
        ));
    }
    Ok(Plan::Fleet(Roster {
        members,
        unlisted,
        presets,
        runtime,
    }))
}

/// Diagnoses each member, `--parallel` ([`CONCURRENT`] by default) at a time; `progress` hears of
/// each release as it ends.
pub fn run(
    args: &CheckInput,
    how: &FleetArgs,
    roster: Roster,
    progress: &dyn Progress,
) -> Result<Fleet, String> {
    let Roster {
        members,
        unlisted,
        presets,
        runtime,
    } = roster;
    // A usage error (a bad config file or check file) is the run's, before any release is looked at.
    let once = Shared {
        assembly: super::Assembly::new(&args.common, crate::catalog::Mode::Check)?,
        prefect: Arc::new(crate::probes::prefect_config::PrefectConfig::load(
            &crate::probes::pg_target::ProcessEnv,
        )),
    };
    type Queue = std::vec::IntoIter<(usize, (Member, Preset))>;
    let queue: Arc<Mutex<Queue>> = Arc::new(Mutex::new(
        members
            .into_iter()
            .zip(presets)
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter(),
    ));
    type Done = (
        usize,
        Member,
        Result<(Report, &'static crate::catalog::Catalog), String>,
    );
    let done: Arc<Mutex<Vec<Done>>> = Arc::default();
    let total = queue.lock().map(|q| q.len()).unwrap_or(0);
    progress.start(total);
    let shared = &runtime;
    std::thread::scope(|scope| {
        for _ in 0..usize::from(how.parallel.max(1)).min(total) {
            let queue = queue.clone();
            let done = done.clone();
            let once = &once;
            scope.spawn(move || {
                while let Some((i, (m, preset))) = queue.lock().ok().and_then(|mut q| q.next()) {
                    let mut input = args.clone();
                    input.context = m.context.iter().cloned().collect();
                    input.namespace = Some(m.namespace.clone());
                    input.all_namespaces = false;
                    input.release = Some(m.release.clone());
                    let r = super::run::release(&input, preset.into_run(shared, once), &Quiet);
                    progress.done(&m.heading());
                    if let Ok(mut d) = done.lock() {
                        d.push((i, m, r));
                    }
                }
            });
        }
    });
    progress.finish();
    // The runs are over: the runtime goes, with what the runs left on it (port-forward listeners,
    // pooled connections), without waiting for a stuck name lookup.
    runtime.shutdown_background();
    let mut done = std::mem::take(&mut *done.lock().map_err(|_| "a run panicked".to_string())?);
    done.sort_by_key(|(i, _, _)| *i);
    let mut releases = Vec::new();
    let mut catalog = crate::catalog::Catalog::builtin();
    for (_, m, r) in done {
        // A usage error is the same for every release (a bad config file): the run's.
        let (report, c) = r?;
        catalog = c;
        releases.push((m, report));
    }
    Ok(Fleet {
        releases,
        unlisted,
        catalog,
    })
}
