//! `check`: a running install. Targets come from the flags, the PG* and prefect CLI configuration,
//! or the Helm release found in the cluster; the context holds a probe for each.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::{
    catalog::{Catalog, Mode},
    checks::{Cx, Reach},
    engine::rounds::Progress,
    probes::{
        http::{HttpOptions, HttpProbe},
        kube::KubeOptions,
        pg_target::{DbTarget, ProcessEnv},
        postgres::{Dialer, NetDialer, PgProbe},
        prefect_config::PrefectConfig,
    },
    report::{Report, Target},
    targets::{self, ApiUrl, Given},
};

use super::{Common, Setup, add_db_target, declare_public};
use crate::{
    bundle::Snapshot,
    probes::tape::{NOT_IN_BUNDLE, Tape, TapeMode},
};

/// What `check` is asked to look at: its flags, documented where they are used.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CheckInput {
    /// The Prefect database: a postgres:// URL or a libpq key=value string. Default: the PG*
    /// environment variables, else `prefect server start`'s
    /// postgres://prefect:test-password@localhost:5432/prefect_server.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The Prefect API (Apollo) as this machine reaches it, e.g. http://host:4200/graphql. Default: the
    /// prefect CLI's [server] endpoint (~/.prefect/config.toml, PREFECT__SERVER__* variables), else
    /// the server_url of the UI given with --ui-url, else http://localhost:4200.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// The Prefect UI as the user's browser reaches it, e.g. http://host:8080. Default: the prefect
    /// CLI's [server.ui] endpoint, else http://localhost:8080.
    #[arg(long, value_name = "URL")]
    pub ui_url: Option<String>,
    /// Do not verify HTTPS certificates (the report says so).
    #[arg(long)]
    pub insecure: bool,
    /// Reach HOST at ADDR instead of asking DNS, as curl's --resolve (repeatable), e.g.
    /// prefect.example.com:443:203.0.113.7 to check an ingress before its DNS record exists.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = crate::probes::http::parse_resolve)]
    pub resolve: Vec<(String, std::net::SocketAddr)>,
    /// The kubeconfig file [default: KUBECONFIG, else ~/.kube/config, else the in-cluster service
    /// account]. Without direct URLs, a found kube config is used to find the Helm release.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context [default: its current context]; repeat it to diagnose the releases
    /// of several clusters in one run.
    #[arg(long, value_name = "NAME")]
    pub context: Vec<String>,
    /// The namespace of the release [default: the context's, else `default`].
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Look for the release in every namespace.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The Helm release to diagnose [default: the only prefect-server release found].
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// The database user Hasura connects as (default: the database user, as the chart's Hasura uses).
    #[arg(long, value_name = "NAME")]
    pub hasura_user: Option<String>,

    /// Re-analyse a support bundle (`prefect-doctor bundle`) instead of looking at anything: the
    /// same checks on what the bundle recorded, with no network at all.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "database_url", "api_url", "ui_url", "insecure", "resolve", "kubeconfig", "context",
        "namespace", "all_namespaces", "release", "hasura_user", "wait",
    ])]
    pub from: Option<std::path::PathBuf>,

    /// Re-run the failing checks (backing off from 1s to 5s) until all pass or DUR has passed, e.g. 5m;
    /// the report and exit code are those of the final state.
    #[arg(long, value_name = "DUR", value_parser = crate::bounded::parse_wait)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub common: Common,
}

/// Assembles and runs `prefect-doctor check`; `Err` is a usage error.
pub fn run(
    args: &CheckInput,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    if let Some(path) = &args.from {
        return replay(args, path, progress);
    }
    let prepared = prepare(args)?;
    finish_run(args, prepared, progress)
}

/// What a fleet run gives the run of one release it listed: the cluster side (its context's client,
/// the release as the listing decoded it) and the runtime that client lives on.
pub(crate) struct Preset {
    pub(crate) kube: crate::targets::reach::KubeRun,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The config file, checks and selection, made once for the fleet.
    pub(crate) assembly: super::Assembly,
    /// The local Prefect CLI's configuration, read once for the fleet.
    pub(crate) prefect: PrefectConfig,
}

/// As [`run`], from a fleet's [`Preset`].
pub(crate) fn run_on(
    args: &CheckInput,
    preset: Preset,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let prepared = prepare_from(args, TapeMode::Live, Some(preset))?;
    finish_run(args, prepared, progress)
}

/// Runs the checks on what was prepared and makes the report.
fn finish_run(
    args: &CheckInput,
    prepared: Prepared,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let catalog = prepared.setup.checks.catalog;
    let Prepared {
        setup,
        factory,
        scope,
    } = prepared;
    let (results, elapsed) = setup.run_checks(&|| factory.make(), args.wait, progress);
    Ok((scope.report(results, args.common.strict, elapsed), catalog))
}

/// `check --from BUNDLE`: the bundle's run again, every probe answering from its tape.
fn replay(
    args: &CheckInput,
    path: &std::path::Path,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let prepared = prepare_replay(args, path)?;
    finish_run(args, prepared, progress)
}

/// A run made ready from the support bundle at `path`: every probe answers from its tape, nothing
/// is looked at live. `check --from` runs it; `fix --from` plans from it (and can never apply).
pub(crate) fn prepare_replay(
    args: &CheckInput,
    path: &std::path::Path,
) -> Result<Prepared, String> {
    let bundle = crate::bundle::read::read(path)?;
    let setup = Setup::new(&args.common, Mode::Check)?;
    let s = &bundle.snapshot;
    let factory = CxFactory::replay(s, Arc::new(bundle.tape), &setup.runtime);
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

/// A `check` run made ready: its targets found, nothing checked yet. `fix` runs it, plans from its
/// results and checks again with a fresh context.
pub(crate) struct Prepared {
    pub(crate) setup: Setup,
    pub(crate) factory: CxFactory,
    pub(crate) scope: Scope,
}

/// What a `check` run looks at, found before anything is checked: the head of its report.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) targets: Vec<Target>,
    pub(crate) notices: Vec<String>,
    pub(crate) release: Option<crate::report::Release>,
}

impl Scope {
    /// The report of `results`: the one way `check`, its replay, `fix` and `bundle` make theirs.
    pub(crate) fn report(
        self,
        results: Vec<crate::report::CheckResult>,
        strict: bool,
        elapsed: u64,
    ) -> Report {
        let mut report =
            Report::new("check", self.targets, results, strict, elapsed).with_notices(self.notices);
        report.release = self.release;
        report
    }
}

/// Makes a fresh check context (new connections) for every round: `--wait` and `fix`'s re-check.
pub(crate) struct CxFactory {
    pub(crate) db: Option<DbTarget>,
    pub(crate) db_dialer: Option<Arc<dyn Dialer>>,
    unreached: crate::targets::reach::Unreached,
    api: Option<crate::targets::ApiTarget>,
    ui: Option<crate::targets::UiTarget>,
    /// `None` when a bundle is replayed (the local configuration is not collected).
    prefect: Option<PrefectConfig>,
    /// Why the cluster cannot be looked at though the recorded run did (a replay).
    kube_absent: Option<String>,
    pub(crate) hasura_user: String,
    pub(crate) vars: BTreeMap<String, String>,
    discovery: Option<(
        crate::probes::kube::KubeProbe,
        Arc<crate::targets::release::Discovery>,
    )>,
    explicit_kube: bool,
    db_size_warning: u64,
    pub(crate) timeout: Duration,
    http: HttpOptions,
    /// Live, recording for a bundle, or replaying one.
    pub(crate) tape: TapeMode,
    /// The release asked for (`--release`, the config file's), as discovery looked for it.
    release_asked: Option<String>,
}

impl CxFactory {
    /// What a replay needs to make the same contexts (no secret: the database target has no
    /// password), taken after the run (the cluster may have turned out to be out of reach).
    pub(crate) fn snapshot(&self, scope: &Scope) -> Snapshot {
        Snapshot {
            targets: scope.targets.clone(),
            notices: scope.notices.clone(),
            release: scope.release.clone(),
            db: self.db.clone(),
            unreached: self.unreached.clone(),
            api: self.api.clone(),
            ui: self.ui.clone(),
            hasura_user: self.hasura_user.clone(),
            vars: self.vars.clone(),
            kube: self
                .discovery
                .as_ref()
                .map(|(probe, _)| crate::bundle::KubeReplay {
                    probe: probe.snap(),
                    release: self.release_asked.clone(),
                    explicit: self.explicit_kube,
                }),
            db_size_warning: self.db_size_warning,
            timeout: self.timeout,
            insecure: self.http.insecure,
        }
    }

    /// The contexts of a recorded run, answering from `tape`: nothing is dialled. The cluster's
    /// release is discovered again from the recorded answers (on `runtime`).
    pub(crate) fn replay(s: &Snapshot, tape: Arc<Tape>, runtime: &super::Runtime) -> CxFactory {
        // The replayed client's buffer starts a task: inside the runtime.
        let _in_runtime = runtime.enter();
        let discovery = s.kube.as_ref().map(|k| {
            let probe = crate::probes::kube::KubeProbe::replayed(tape.clone(), &k.probe);
            let found = runtime.block_on(crate::targets::release::discover(
                &probe,
                k.release.as_deref(),
            ));
            (probe, Arc::new(found))
        });
        CxFactory {
            db: s.db.clone(),
            db_dialer: None,
            unreached: s.unreached.clone(),
            api: s.api.clone(),
            ui: s.ui.clone(),
            prefect: None,
            kube_absent: None,
            hasura_user: s.hasura_user.clone(),
            vars: s.vars.clone(),
            discovery,
            explicit_kube: s.kube.as_ref().is_some_and(|k| k.explicit),
            db_size_warning: s.db_size_warning,
            timeout: s.timeout,
            http: HttpOptions {
                timeout: s.timeout,
                insecure: s.insecure,
                resolve: Vec::new(),
            },
            tape: TapeMode::Replay(tape),
            release_asked: None,
        }
    }

    pub(crate) fn make(&self) -> Arc<Cx> {
        Arc::new(Cx {
            pg: Reach::of(
                self.db.clone().map(|t| self.pg_probe(t)),
                self.unreached.database.clone(),
            ),
            http: HttpProbe::new(self.http.clone()).with_tape(self.tape.clone()),
            api: Reach::of(self.api.clone(), self.unreached.api.clone()),
            ui: Reach::of(self.ui.clone(), self.unreached.ui.clone()),
            prefect: match &self.prefect {
                Some(p) => Reach::Ready(p.clone()),
                None => Reach::unreached(format!(
                    "{NOT_IN_BUNDLE} (the local prefect configuration is not collected: it \
                     holds API keys)"
                )),
            },
            hasura_user: self.hasura_user.clone(),
            vars: self.vars.clone(),
            kube: match &self.kube_absent {
                Some(why) => Reach::unreached(why.clone()),
                None => Reach::given(self.discovery.as_ref().map(|(probe, d)| {
                    Arc::new(crate::checks::cluster_cx::KubeCx::new(
                        probe.fresh(),
                        d.clone(),
                        self.explicit_kube,
                    ))
                })),
            },
            values: Reach::given(None),
            db_size_warning: self.db_size_warning,
            timeout: self.timeout,
            cluster: Reach::given(None),
        })
    }

    /// A probe of `target` dialled as the app's database is (through the release's port-forward
    /// when the database is the one the release's forward reaches).
    pub(crate) fn pg_probe(&self, target: DbTarget) -> PgProbe {
        let same_place = self
            .db
            .as_ref()
            .is_some_and(|db| db.host == target.host && db.port == target.port);
        let probe = match &self.db_dialer {
            Some(d) if same_place => PgProbe::new(target, Box::new(d.clone()), self.timeout),
            _ => PgProbe::new(target, Box::new(NetDialer), self.timeout),
        };
        probe.with_tape(self.tape.clone())
    }
}

/// Finds what `check` looks at; `Err` is a usage error.
pub(crate) fn prepare(args: &CheckInput) -> Result<Prepared, String> {
    prepare_with(args, TapeMode::Live)
}

/// As [`prepare`], every probe recording when `tape` says so (the cluster's from the first call).
pub(crate) fn prepare_with(args: &CheckInput, tape: TapeMode) -> Result<Prepared, String> {
    prepare_from(args, tape, None)
}

/// As [`prepare_with`]; `preset`, when given, is the cluster side (its client and the release it
/// found) instead of one made here.
fn prepare_from(
    args: &CheckInput,
    tape: TapeMode,
    preset: Option<Preset>,
) -> Result<Prepared, String> {
    let (setup, kube_preset, prefect) = match preset {
        Some(p) => (
            Setup::of(p.assembly, Some(p.runtime), std::time::Instant::now())?,
            Some(p.kube),
            p.prefect,
        ),
        None => (
            Setup::on(&args.common, Mode::Check, None)?,
            None,
            PrefectConfig::load(&ProcessEnv),
        ),
    };
    let (config, timeout, runtime) = (&setup.config, setup.timeout, &setup.runtime);
    let given = Given {
        database_url: args.database_url.as_deref(),
        api_url: args.api_url.as_deref(),
        ui_url: args.ui_url.as_deref(),
    };
    let kube_opts = KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: match args.context.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            _ => return Err("several --context name a fleet: diagnose it with check".into()),
        },
        namespace: args.namespace.clone().or(config.namespace.clone()),
        all_namespaces: args.all_namespaces,
    };
    let explicit_kube = kube_opts.kubeconfig.is_some()
        || kube_opts.context.is_some()
        || args.namespace.is_some()
        || args.all_namespaces
        || args.release.is_some();
    let direct = given.database_url.is_some() || given.api_url.is_some() || given.ui_url.is_some();
    let want_kube = explicit_kube
        || (!direct && crate::probes::kube::config_available(&kube_opts, &ProcessEnv));
    let release_name = args.release.clone().or(config.release.clone());
    let release_asked = release_name.clone();
    let mut notices = Vec::new();
    let (kube, reached) = if let Some(k) = kube_preset {
        let reached = runtime.block_on(k.reach(&given, explicit_kube));
        (Some(k), Some(reached))
    } else if want_kube {
        match runtime.block_on(crate::targets::reach::KubeRun::start(
            &kube_opts,
            release_name.as_deref(),
            timeout,
            &tape,
        )) {
            Ok(k) => {
                let reached = runtime.block_on(k.reach(&given, explicit_kube));
                (Some(k), Some(reached))
            }
            Err(e) if explicit_kube => return Err(e.to_string()),
            Err(e) => {
                notices.push(format!(
                    "not looking at a cluster ({e}); checking the local defaults"
                ));
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    let found = match &reached {
        Some(r) if r.use_release => r.targets(&given, &ProcessEnv),
        _ => targets::resolve(&given, &ProcessEnv, &prefect),
    };
    let found = found?;
    if let Some(r) = &reached {
        notices.extend(r.notices.iter().cloned());
    }
    // Whatever `--only` selected: a configuration Prefect cannot load breaks every `prefect` command.
    notices.extend(prefect.notices());
    notices.extend(found.notices.iter().cloned());
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut targets = Vec::new();
    if let Some(k) = &kube {
        targets.push(Target {
            kind: "kubernetes".to_string(),
            address: k.probe.server.clone(),
            source: format!(
                "kube context {}{}, {}",
                k.probe.context,
                k.probe
                    .file
                    .as_ref()
                    .map(|f| format!(" in {f}"))
                    .unwrap_or_default(),
                if k.probe.all_namespaces {
                    "all namespaces".to_string()
                } else {
                    format!("namespace {}", k.probe.namespace)
                }
            ),
        });
    }
    let hasura_user = match &found.db {
        Some(target) => add_db_target(
            target,
            found
                .db_via
                .as_ref()
                .map(|v| v.source.clone())
                .or(found.db_source.clone())
                .unwrap_or_else(|| target.source.describe().to_string()),
            args.hasura_user.as_deref(),
            &mut vars,
            &mut targets,
        ),
        None => args.hasura_user.clone().unwrap_or_default(),
    };
    if let Some(api) = &found.api {
        let address = match &api.url {
            ApiUrl::Fixed(u) => {
                vars.insert("api_url".to_string(), u.to_string());
                u.to_string()
            }
            ApiUrl::FromUi => "the UI's server_url".to_string(),
        };
        targets.push(Target {
            kind: "api".to_string(),
            address,
            source: api.source.clone(),
        });
    }
    if let Some(ui) = &found.ui {
        vars.insert("ui_url".to_string(), ui.url.to_string());
        targets.push(Target {
            kind: "ui".to_string(),
            address: ui.url.to_string(),
            source: ui.source.clone(),
        });
    }
    if args.insecure {
        notices.push(
            "--insecure: HTTPS certificates were NOT verified; a passing API or UI check does not \
             prove the server is who it claims to be"
                .to_string(),
        );
    }
    let found_release = reached.as_ref().and_then(|r| r.release.clone());
    let release_name = found_release
        .as_ref()
        .map(|(r, _)| r.clone())
        .or(release_name);
    let namespace = found_release
        .as_ref()
        .map(|(_, n)| n.clone())
        .or(kube_opts.namespace.clone());
    declare_public(
        found.db.as_ref(),
        release_name
            .iter()
            .chain(namespace.iter())
            .map(String::as_str)
            .chain(args.hasura_user.as_deref()),
    );
    if let Some(r) = &release_name {
        vars.insert("release".to_string(), r.clone());
    }
    if let Some(n) = &namespace {
        vars.insert("namespace".to_string(), n.clone());
    }
    let release = release_name.map(|name| crate::report::Release {
        name,
        namespace: namespace.clone().unwrap_or_else(|| "default".to_string()),
    });
    let db_dialer = found.db_via.as_ref().and_then(|v| v.dialer.clone());
    let unreached = reached
        .as_ref()
        .map(|r| r.unreached.clone())
        .unwrap_or_default();
    let discovery = kube
        .as_ref()
        .map(|k| (k.probe.clone(), k.discovery.clone()));
    let db_size_warning = config
        .db_size_warning
        .unwrap_or(crate::config::DEFAULT_DB_SIZE_WARNING);
    let factory = CxFactory {
        db: found.db.clone(),
        db_dialer,
        unreached,
        api: found.api.clone(),
        ui: found.ui.clone(),
        prefect: Some(prefect),
        kube_absent: None,
        hasura_user,
        vars,
        discovery,
        explicit_kube,
        db_size_warning,
        timeout,
        http: HttpOptions {
            timeout,
            insecure: args.insecure,
            resolve: args.resolve.clone(),
        },
        tape,
        release_asked,
    };
    Ok(Prepared {
        setup,
        factory,
        scope: Scope {
            targets,
            notices,
            release,
        },
    })
}
