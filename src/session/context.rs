//! The third step of a run: from the targets found to what the checks are given. The head of the
//! report ([`Scope`]: targets, notices, release), the fixes' placeholder values, and a factory of
//! check contexts ([`CxFactory`]) that a live run, a recording and a replay make alike.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use super::settings::Settings;
use crate::{
    bundle::Snapshot,
    checks::{Cx, Reach, quote_ident},
    probes::{
        http::{HttpOptions, HttpProbe},
        kube::KubeProbe,
        pg_target::DbTarget,
        postgres::{Dialer, NetDialer, PgProbe},
        prefect_config::PrefectConfig,
        tape::{NOT_IN_BUNDLE, Tape, TapeMode},
    },
    redact,
    report::{Report, Target},
    targets::{ApiUrl, find::Found, release::Discovery},
};

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
    prefect: Option<Arc<PrefectConfig>>,
    /// Why the cluster cannot be looked at though the recorded run did (a replay).
    kube_absent: Option<String>,
    pub(crate) hasura_user: String,
    pub(crate) vars: BTreeMap<String, String>,
    discovery: Option<(KubeProbe, Arc<Discovery>)>,
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

    /// The contexts of a recorded run, answering from `tape`: nothing is dialled. `discovery` is the
    /// cluster's release discovered again from the recorded answers.
    pub(crate) fn replay(
        s: &Snapshot,
        tape: Arc<Tape>,
        discovery: Option<(KubeProbe, Arc<Discovery>)>,
    ) -> CxFactory {
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

/// The head of the report and the contexts of a live (or recording) run, from the targets `found`
/// with `settings`.
pub(crate) fn live(
    found: Found,
    settings: &Settings,
    prefect: Arc<PrefectConfig>,
    tape: TapeMode,
) -> (Scope, CxFactory) {
    let Found {
        kube,
        targets: found_targets,
        unreached,
        release: found_release,
        notices: cluster_notices,
    } = found;
    let mut notices = cluster_notices;
    // Whatever `--only` selected: a configuration Prefect cannot load breaks every `prefect` command.
    notices.extend(prefect.notices());
    notices.extend(found_targets.notices.iter().cloned());
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
    let hasura_user = match &found_targets.db {
        Some(target) => add_db_target(
            target,
            found_targets
                .db_via
                .as_ref()
                .map(|v| v.source.clone())
                .or(found_targets.db_source.clone())
                .unwrap_or_else(|| target.source.describe().to_string()),
            settings.hasura_user.as_deref(),
            &mut vars,
            &mut targets,
        ),
        None => settings.hasura_user.clone().unwrap_or_default(),
    };
    if let Some(api) = &found_targets.api {
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
    if let Some(ui) = &found_targets.ui {
        vars.insert("ui_url".to_string(), ui.url.to_string());
        targets.push(Target {
            kind: "ui".to_string(),
            address: ui.url.to_string(),
            source: ui.source.clone(),
        });
    }
    if settings.insecure {
        notices.push(
            "--insecure: HTTPS certificates were NOT verified; a passing API or UI check does not \
             prove the server is who it claims to be"
                .to_string(),
        );
    }
    let release_asked = settings.ask.release.clone();
    let (release_name, namespace) = match found_release {
        Some((r, n)) => (Some(r), Some(n)),
        None => (release_asked.clone(), settings.ask.kube.namespace.clone()),
    };
    declare_public(
        found_targets.db.as_ref(),
        release_name
            .iter()
            .chain(namespace.iter())
            .map(String::as_str)
            .chain(settings.hasura_user.as_deref()),
    );
    if let Some(r) = &release_name {
        vars.insert("release".to_string(), r.clone());
    }
    if let Some(n) = &namespace {
        vars.insert("namespace".to_string(), n.clone());
    }
    let release = release_name.map(|name| crate::report::Release {
        name,
        namespace: namespace.unwrap_or_else(|| "default".to_string()),
    });
    let factory = CxFactory {
        db: found_targets.db.clone(),
        db_dialer: found_targets.db_via.as_ref().and_then(|v| v.dialer.clone()),
        unreached,
        api: found_targets.api.clone(),
        ui: found_targets.ui.clone(),
        prefect: Some(prefect),
        kube_absent: None,
        hasura_user,
        vars,
        discovery: kube.map(|k| (k.probe, k.discovery)),
        explicit_kube: settings.ask.explicit_kube,
        db_size_warning: settings.db_size_warning,
        timeout: settings.timeout,
        http: HttpOptions {
            timeout: settings.timeout,
            insecure: settings.insecure,
            resolve: settings.resolve.clone(),
        },
        tape,
        release_asked,
    };
    (
        Scope {
            targets,
            notices,
            release,
        },
        factory,
    )
}

/// Lists the database among the report's targets and puts its names into the fixes' placeholders;
/// returns the user Hasura connects as (`--hasura-user`, else the database user, as the chart's).
pub(crate) fn add_db_target(
    target: &crate::probes::pg_target::DbTarget,
    source: String,
    hasura_flag: Option<&str>,
    vars: &mut BTreeMap<String, String>,
    targets: &mut Vec<Target>,
) -> String {
    let hasura_user = hasura_flag.unwrap_or(&target.user).to_string();
    vars.extend(
        [
            ("db_user", quote_ident(&target.user)),
            ("database", quote_ident(&target.dbname)),
            ("hasura_user", quote_ident(&hasura_user)),
            ("db_host", target.host.clone()),
            ("db_port", target.port.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v)),
    );
    targets.push(Target {
        kind: "database".to_string(),
        address: target.masked_url(),
        source,
    });
    hasura_user
}

/// Declares the names the report is made of (see [`redact::public`]): the chart's own words, the
/// database's user and name, and `others` (release, namespace …).
pub(crate) fn declare_public<'a>(
    db: Option<&'a crate::probes::pg_target::DbTarget>,
    others: impl IntoIterator<Item = &'a str>,
) {
    for name in ["prefect", "postgres", "prefect-server"]
        .into_iter()
        .chain(
            db.into_iter()
                .flat_map(|t| [t.user.as_str(), t.dbname.as_str()]),
        )
        .chain(others)
    {
        redact::public(name);
    }
}
