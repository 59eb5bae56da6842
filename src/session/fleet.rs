//! Every release at once: `check -A`, `check -n NS` where several releases share the namespace, and
//! `--context` given more than once. The releases are listed first (each context's own probe), then
//! each is diagnosed as `check --context C -n NS --release R` would, [`CONCURRENT`] at a time, each
//! with its own runtime, port-forwards and connections. A release that cannot be reached is that
//! release's finding; a context that cannot be listed is said and the others go on.

use std::sync::{Arc, Mutex};

use super::check::CheckInput;
use crate::{
    engine::rounds::{Progress, Quiet},
    probes::kube::{KubeOptions, KubeProbe},
    report::Report,
    targets::release::{Discovery, discover},
};

/// Releases diagnosed at once.
pub const CONCURRENT: usize = 8;

/// One release of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// The kubeconfig context (`None`: the current one).
    pub context: Option<String>,
    pub namespace: String,
    pub release: String,
}

impl Member {
    /// `context/namespace/release` (the context left out when it is the current one).
    pub fn heading(&self) -> String {
        match &self.context {
            Some(c) => format!("{c}/{}/{}", self.namespace, self.release),
            None => format!("{}/{}", self.namespace, self.release),
        }
    }
}

/// A context whose releases could not be listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unlisted {
    pub context: Option<String>,
    pub error: String,
}

/// What a run looks at.
pub enum Plan {
    /// One install, as `check` always did.
    Single,
    Fleet {
        members: Vec<Member>,
        unlisted: Vec<Unlisted>,
    },
}

/// Every release diagnosed, in the order listed.
pub struct Fleet {
    pub releases: Vec<(Member, Report)>,
    pub unlisted: Vec<Unlisted>,
    /// The checks' catalog (the user checks too).
    pub catalog: &'static crate::catalog::Catalog,
}

impl Fleet {
    /// Every report sanitized, as renderers take them.
    pub fn sanitized(self) -> Fleet {
        Fleet {
            releases: self
                .releases
                .into_iter()
                .map(|(m, r)| (m, r.sanitized()))
                .collect(),
            ..self
        }
    }
}

impl Fleet {
    /// The worst exit code of all releases; a context that could not be listed counts as 1.
    pub fn exit_code(&self) -> i32 {
        let worst = self
            .releases
            .iter()
            .map(|(_, r)| r.exit_code)
            .max()
            .unwrap_or(0);
        if self.unlisted.is_empty() {
            worst
        } else {
            worst.max(1)
        }
    }
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
    type Listing = (Option<String>, Result<Vec<Member>, String>);
    let listed: Vec<Listing> = runtime.block_on(async {
        let lists = contexts.iter().map(|ctx| async move {
            let opts = KubeOptions {
                kubeconfig: args.kubeconfig.clone(),
                context: ctx.clone(),
                namespace: args.namespace.clone(),
                all_namespaces: args.all_namespaces,
            };
            let probe =
                match KubeProbe::connect_with(&opts, timeout, &crate::probes::tape::TapeMode::Live)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return (ctx.clone(), Err(e.to_string())),
                };
            let members = match discover(&probe, None).await {
                Discovery::Release(f) => Ok(vec![Member {
                    context: ctx.clone(),
                    namespace: f.release.namespace.clone(),
                    release: f.release.name.clone(),
                }]),
                Discovery::Several(list) => Ok(list
                    .into_iter()
                    .map(|l| Member {
                        context: ctx.clone(),
                        namespace: l.namespace,
                        release: l.name,
                    })
                    .collect()),
                Discovery::NoRelease { .. } => Ok(Vec::new()),
                Discovery::NotFound { reason, .. } => Err(reason),
                Discovery::Failed(e) => Err(format!("cannot list Helm releases: {e}")),
            };
            (ctx.clone(), members)
        });
        futures::future::join_all(lists).await
    });
    let mut members = Vec::new();
    let mut unlisted = Vec::new();
    for (context, result) in listed {
        match result {
            Ok(m) => members.extend(m),
            Err(error) => unlisted.push(Unlisted {
                context: context.clone(),
                error: crate::redact::scrub(&error),
            }),
        }
    }
    // One release of one cluster: today's single run (and its shape). A cluster out of reach with
    // no other one: the single run says so, as ever.
    if contexts.len() == 1 && members.len() <= 1 {
        return Ok(Plan::Single);
    }
    if args.database_url.is_some() || args.api_url.is_some() || args.ui_url.is_some() {
        return Err(format!(
            "--database-url, --api-url and --ui-url name one install, but {} releases were found: \
             name one with --release, or leave the URLs out to diagnose each through the cluster",
            members.len()
        ));
    }
    Ok(Plan::Fleet { members, unlisted })
}

/// Diagnoses each member, [`CONCURRENT`] at a time; `progress` hears of each release as it ends.
pub fn run(
    args: &CheckInput,
    members: Vec<Member>,
    unlisted: Vec<Unlisted>,
    progress: &dyn Progress,
) -> Result<Fleet, String> {
    let queue: Arc<Mutex<std::vec::IntoIter<(usize, Member)>>> = Arc::new(Mutex::new(
        members
            .into_iter()
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
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENT.min(total) {
            let queue = queue.clone();
            let done = done.clone();
            scope.spawn(move || {
                while let Some((i, m)) = queue.lock().ok().and_then(|mut q| q.next()) {
                    let mut input = args.clone();
                    input.context = m.context.iter().cloned().collect();
                    input.namespace = Some(m.namespace.clone());
                    input.all_namespaces = false;
                    input.release = Some(m.release.clone());
                    let r = super::check::run(&input, &Quiet);
                    progress.done(&m.heading());
                    if let Ok(mut d) = done.lock() {
                        d.push((i, m, r));
                    }
                }
            });
        }
    });
    progress.finish();
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
