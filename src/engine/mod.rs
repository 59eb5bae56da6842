//! Runs the selected checks concurrently. A check waits for its prerequisites and is skipped when one
//! did not pass; every check runs under a deadline; a panicking or hanging check becomes `error`, and
//! the run always finishes with a result for every selected check.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use globset::{Glob, GlobMatcher};
use tokio::sync::watch;

use crate::{
    catalog::{self, Catalog, Mode, Severity},
    checks::{CheckDef, Cx, Outcome, Verdict},
    report::{CheckResult, Status},
};

/// A check's time beyond `--timeout` before the engine gives up on it, so that a probe's own, more
/// precise time-out (same length) is reported instead of a generic one.
pub const GRACE: Duration = Duration::from_millis(500);

pub mod rounds;

#[derive(Debug, Clone)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("invalid pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    #[error("{flag} {pattern:?} matches no check{hint}")]
    NoMatch {
        flag: &'static str,
        pattern: String,
        hint: String,
    },
}

fn matchers(patterns: &[String]) -> Result<Vec<(String, GlobMatcher)>, SelectionError> {
    patterns
        .iter()
        .map(|p| {
            Glob::new(p)
                .map(|g| (p.clone(), g.compile_matcher()))
                .map_err(|e| SelectionError::Pattern {
                    pattern: p.clone(),
                    message: e.kind().to_string(),
                })
        })
        .collect()
}

/// The checks to report, in registry order, for `mode` and the `--only`/`--skip` patterns.
pub fn select(
    catalog: &Catalog,
    registry: &'static [CheckDef],
    mode: Mode,
    sel: &Selection,
) -> Result<Vec<&'static CheckDef>, SelectionError> {
    let only = matchers(&sel.only)?;
    let skip = matchers(&sel.skip)?;
    for (flag, list) in [("--only", &only), ("--skip", &skip)] {
        for (pattern, m) in list {
            if !registry.iter().any(|c| m.is_match(c.id)) {
                let suggestions = catalog.suggest(pattern);
                let hint = if suggestions.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", suggestions.join(", "))
                };
                return Err(SelectionError::NoMatch {
                    flag,
                    pattern: pattern.clone(),
                    hint,
                });
            }
        }
    }
    Ok(registry
        .iter()
        .filter(|c| catalog.get(c.id).is_some_and(|s| s.modes.contains(&mode)))
        .filter(|c| only.is_empty() || only.iter().any(|(_, m)| m.is_match(c.id)))
        .filter(|c| !skip.iter().any(|(_, m)| m.is_match(c.id)))
        .collect())
}

pub struct RunOptions {
    pub timeout: Duration,
    pub severity_overrides: BTreeMap<String, Severity>,
}

/// What a finished check tells the checks waiting on it: its status and, when it was skipped for a
/// prerequisite, that root reason (so a chain of skips names the check that actually failed).
type Finished = Option<(Status, Option<String>)>;
type Done = watch::Sender<Finished>;

/// Runs `selected` (and, silently, the prerequisites they need) and returns their results in order.
/// `on_done` is called as each reported check finishes (for progress display).
pub async fn run(
    cx: Arc<Cx>,
    catalog: &'static Catalog,
    registry: &'static [CheckDef],
    selected: &[&'static CheckDef],
    opts: &RunOptions,
    on_done: &(dyn Fn(&CheckResult) + Sync),
) -> Vec<CheckResult> {
    // Close over prerequisites.
    let mut needed: BTreeSet<&'static str> = BTreeSet::new();
    let mut stack: Vec<&'static str> = selected.iter().map(|c| c.id).collect();
    while let Some(id) = stack.pop() {
        if needed.insert(id)
            && let Some(def) = registry.iter().find(|c| c.id == id)
        {
            stack.extend(def.requires.iter().copied());
        }
    }
    let reported: BTreeSet<&str> = selected.iter().map(|c| c.id).collect();

    let mut senders: HashMap<&'static str, Arc<Done>> = HashMap::new();
    for id in &needed {
        senders.insert(id, Arc::new(watch::channel(None).0));
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CheckResult>();
    for def in registry.iter().filter(|c| needed.contains(c.id)) {
        let Some(spec) = catalog.get(def.id) else {
            continue;
        };
        let deps: Vec<(&'static str, watch::Receiver<Finished>)> = def
            .requires
            .iter()
            .filter_map(|d| senders.get(d).map(|s| (*d, s.subscribe())))
            .collect();
        let Some(done) = senders.get(def.id).cloned() else {
            continue;
        };
        let severity = opts
            .severity_overrides
            .get(def.id)
            .copied()
            .unwrap_or(spec.severity);
        let cx = cx.clone();
        let timeout = opts.timeout;
        let tx = tx.clone();
        tokio::spawn(async move {
            let (result, root) = run_one(def, spec, severity, cx, deps, timeout).await;
            // A check that skipped itself (no target given …) passes its own reason down.
            let root = match (result.status, root) {
                (Status::Skip, None) => Some(result.message.clone()),
                (_, root) => root,
            };
            done.send_replace(Some((result.status, root)));
            let _ = tx.send(result);
        });
    }
    drop(tx);

    let mut results: HashMap<String, CheckResult> = HashMap::new();
    while let Some(r) = rx.recv().await {
        if reported.contains(r.id.as_str()) {
            on_done(&r);
        }
        results.insert(r.id.clone(), r);
    }
    // Report what was selected, plus any unselected prerequisite that failed: a selected check skipped
    // because of it must not make the run look green.
    let mut ordered = Vec::new();
    for c in registry {
        if let Some(r) = results.remove(c.id)
            && (reported.contains(c.id) || matches!(r.status, Status::Fail | Status::Error))
        {
            ordered.push(r);
        }
    }
    ordered
}

async fn run_one(
    def: &'static CheckDef,
    spec: &'static catalog::CheckSpec,
    severity: Severity,
    cx: Arc<Cx>,
    deps: Vec<(&'static str, watch::Receiver<Finished>)>,
    timeout: Duration,
) -> (CheckResult, Option<String>) {
    for (dep, mut rx) in deps {
        let (status, root) = match rx.wait_for(|v| v.is_some()).await {
            Ok(v) => v.clone().unwrap_or((Status::Error, None)),
            Err(_) => (Status::Error, None),
        };
        if !status.satisfies_dependents() {
            let reason = root.unwrap_or_else(|| {
                let how = match status {
                    Status::Fail => "failed",
                    Status::Skip => "was skipped",
                    _ => "could not be checked",
                };
                format!("requires {dep}, which {how}")
            });
            let result = finish(
                spec,
                severity,
                &cx.vars,
                Outcome::skip(reason.clone()),
                Duration::ZERO,
            );
            return (result, Some(reason));
        }
    }
    let started = Instant::now();
    // What a replayed check asked the bundle for and did not find.
    let missed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task =
        tokio::spawn(crate::probes::tape::MISSED.scope(missed.clone(), def.run.start(cx.clone())));
    let abort = task.abort_handle();
    let outcome = match tokio::time::timeout(timeout.saturating_add(GRACE), task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Outcome::error(format!("internal error: the check panicked: {msg}"))
        }
        Ok(Err(_)) => Outcome::error("internal error: the check was cancelled"),
        Err(_) => {
            abort.abort();
            Outcome::error(format!(
                "timed out after {} (raise --timeout if the target is slow)",
                crate::untrusted::duration(timeout)
            ))
        }
    };
    let missed = missed.lock().map(|m| m.clone()).unwrap_or_default();
    let outcome = if missed.is_empty() {
        outcome
    } else {
        Outcome::skip(format!(
            "{}: {}",
            crate::probes::tape::NOT_IN_BUNDLE,
            crate::untrusted::list(&missed, 3)
        ))
    };
    (
        finish(spec, severity, &cx.vars, outcome, started.elapsed()),
        None,
    )
}

/// The one way an outcome becomes a reported result: status from verdict and severity, the fix
/// (the catalog's, placeholders filled from the run's `vars` and the outcome's own) on warn and fail.
fn finish(
    spec: &catalog::CheckSpec,
    severity: Severity,
    vars: &BTreeMap<String, String>,
    outcome: Outcome,
    elapsed: Duration,
) -> CheckResult {
    let status = match outcome.verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Warn => Status::Warn,
        Verdict::Skip => Status::Skip,
        Verdict::Error => Status::Error,
        Verdict::Finding => match severity {
            Severity::Error => Status::Fail,
            Severity::Warning => Status::Warn,
            Severity::Info => Status::Pass,
        },
    };
    // A fix variant the catalog entry lacks is a bug, never a silent fallback to the default fix
    // (`every_fix_variant_the_code_names_is_in_the_catalog` scans for it; debug builds refuse it).
    if cfg!(debug_assertions)
        && let Some(v) = outcome.fix_variant
        && !spec.fixes.contains_key(v)
    {
        return CheckResult {
            status: Status::Error,
            message: format!(
                "internal error: {} asked for fix variant {v:?}, which checks/{}.toml lacks",
                spec.id, spec.id
            ),
            fix: None,
            ..finish(spec, severity, vars, Outcome::error(""), elapsed)
        };
    }
    let fix = matches!(status, Status::Warn | Status::Fail).then(|| {
        // The run's names (release, namespace, URLs) came from outside: one line each. The
        // outcome's own values were escaped when set (`Outcome::var`).
        let mut vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    crate::untrusted::line(v, crate::untrusted::MAX_VAR),
                )
            })
            .collect();
        vars.extend(outcome.vars.clone());
        catalog::fill(spec.fix_text(outcome.fix_variant), &vars)
            .trim_end()
            .to_string()
    });
    CheckResult {
        id: spec.id.clone(),
        title: spec.title.clone(),
        area: spec.area.clone(),
        severity,
        status,
        message: outcome.message,
        evidence: outcome.evidence,
        fix,
        docs: spec.docs.clone(),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        source: spec.source.clone().unwrap_or_else(|| "builtin".to_string()),
        location: outcome.location.clone(),
    }
}

/// Adds the checks a config file skips, each reported as `skip` with the file's reason through the
/// same [`finish`] as every other result (unless a check that needed one of them ran it and it
/// failed: then that failure is reported, as for `--skip`), and puts the results in catalog order.
pub fn with_config_skips(
    mut results: Vec<CheckResult>,
    config: &crate::config::Loaded,
    catalog: &Catalog,
    registry: &[CheckDef],
) -> Vec<CheckResult> {
    let file = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| crate::config::FILE_NAME.to_string());
    for (id, reason) in &config.skip {
        if results.iter().any(|r| &r.id == id) {
            continue;
        }
        let Some(spec) = catalog.get(id) else {
            continue;
        };
        let severity = config.severity.get(id).copied().unwrap_or(spec.severity);
        results.push(finish(
            spec,
            severity,
            &BTreeMap::new(),
            Outcome::skip(format!("skipped by {file}: {reason}")),
            Duration::ZERO,
        ));
    }
    results.sort_by_key(|r| {
        registry
            .iter()
            .position(|c| c.id == r.id)
            .unwrap_or(usize::MAX)
    });
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Reach;
    use crate::probes::{
        http::{HttpOptions, HttpProbe},
        pg_target::{DbTarget, PREFECT_DEFAULT_URL},
        postgres::{NetDialer, PgProbe},
        prefect_config::PrefectConfig,
    };

    fn spec(id: &str) -> (String, String) {
        (
            format!("{id}.toml"),
            format!(
                "id = \"{id}\"\ntitle = \"t\"\narea = \"database\"\nmodes = [\"check\"]\nseverity = \"error\"\n\
                 symptom = \"s\"\ncause = \"c\"\nfix = \"fix for {{db_user}}\"\ndocs = \"https://x\"\n"
            ),
        )
    }

    async fn ok(_: Arc<Cx>) -> Outcome {
        Outcome::pass("fine")
    }
    async fn found(_: Arc<Cx>) -> Outcome {
        Outcome::finding("broken")
    }
    async fn panics(_: Arc<Cx>) -> Outcome {
        let v: Vec<u8> = Vec::new();
        if v.is_empty() {
            panic!("boom");
        }
        Outcome::pass("never")
    }
    async fn hangs(_: Arc<Cx>) -> Outcome {
        std::future::pending::<()>().await;
        Outcome::pass("never")
    }

    static REG: &[CheckDef] = &[
        CheckDef {
            id: "t.ok",
            requires: &[],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(ok(cx))),
        },
        CheckDef {
            id: "t.found",
            requires: &[],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(found(cx))),
        },
        CheckDef {
            id: "t.panics",
            requires: &[],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(panics(cx))),
        },
        CheckDef {
            id: "t.hangs",
            requires: &[],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(hangs(cx))),
        },
        CheckDef {
            id: "t.after-found",
            requires: &["t.found"],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(ok(cx))),
        },
        CheckDef {
            id: "t.after-after",
            requires: &["t.after-found"],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(ok(cx))),
        },
        CheckDef {
            id: "t.after-ok",
            requires: &["t.ok"],
            run: crate::checks::Runner::Builtin(|cx| Box::pin(ok(cx))),
        },
    ];

    fn fixture() -> (&'static Catalog, Arc<Cx>) {
        let files: Vec<(String, String)> = REG.iter().map(|d| spec(d.id)).collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let catalog: &'static Catalog =
            Box::leak(Box::new(Catalog::parse(&refs).expect("test catalog")));
        let target =
            DbTarget::resolve(Some(PREFECT_DEFAULT_URL), &BTreeMap::new()).expect("target");
        let cx = Arc::new(Cx {
            pg: Reach::Ready(PgProbe::new(
                target,
                Box::new(NetDialer),
                Duration::from_secs(1),
            )),
            http: HttpProbe::new(HttpOptions {
                timeout: Duration::from_secs(1),
                insecure: false,
                resolve: Vec::new(),
            }),
            api: Reach::given(None),
            ui: Reach::given(None),
            prefect: Reach::Ready(std::sync::Arc::new(PrefectConfig::load(&BTreeMap::new()))),
            hasura_user: "prefect".into(),
            vars: BTreeMap::from([("db_user".to_string(), "prefect".to_string())]),
            kube: Reach::given(None),
            values: Reach::given(None),
            cluster: Reach::given(None),
            db_size_warning: crate::config::DEFAULT_DB_SIZE_WARNING,
            timeout: Duration::from_secs(5),
        });
        (catalog, cx)
    }

    fn selection(only: &[&str], skip: &[&str]) -> Selection {
        Selection {
            only: only.iter().map(|s| s.to_string()).collect(),
            skip: skip.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Runs the test registry's checks matching `only` (all when empty).
    async fn run_only(
        only: &[&str],
        timeout: Duration,
        severity_overrides: BTreeMap<String, Severity>,
    ) -> Vec<CheckResult> {
        let (catalog, cx) = fixture();
        let selected = select(catalog, REG, Mode::Check, &selection(only, &[])).unwrap();
        let opts = RunOptions {
            timeout,
            severity_overrides,
        };
        run(cx, catalog, REG, &selected, &opts, &|_| {}).await
    }

    #[tokio::test]
    async fn panics_and_hangs_become_errors_and_the_run_finishes() {
        let results = run_only(&[], Duration::from_millis(200), BTreeMap::new()).await;
        let status = |id: &str| {
            results
                .iter()
                .find(|r| r.id == id)
                .map(|r| (r.status, r.message.clone()))
                .unwrap()
        };
        assert_eq!(results.len(), REG.len());
        assert_eq!(status("t.ok").0, Status::Pass);
        assert_eq!(status("t.found").0, Status::Fail);
        let (st, msg) = status("t.panics");
        assert_eq!(st, Status::Error);
        assert!(msg.contains("panicked: boom"), "{msg}");
        let (st, msg) = status("t.hangs");
        assert_eq!(st, Status::Error);
        assert!(msg.contains("timed out after 200ms"), "{msg}");
        assert_eq!(
            status("t.after-found"),
            (Status::Skip, "requires t.found, which failed".into())
        );
        // The root cause travels down a chain of skips.
        assert_eq!(
            status("t.after-after"),
            (Status::Skip, "requires t.found, which failed".into())
        );
        assert_eq!(status("t.after-ok").0, Status::Pass);
        let found = results.iter().find(|r| r.id == "t.found").unwrap();
        assert_eq!(found.fix.as_deref(), Some("fix for prefect"));
        assert!(
            results
                .iter()
                .find(|r| r.id == "t.ok")
                .unwrap()
                .fix
                .is_none()
        );
    }

    #[tokio::test]
    async fn severity_override_turns_a_finding_into_a_warning() {
        let overrides = BTreeMap::from([("t.found".to_string(), Severity::Warning)]);
        let results = run_only(&["t.found"], Duration::from_secs(1), overrides).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].status, Status::Warn);
    }

    #[test]
    fn selection_by_glob_and_typos() {
        let (catalog, _) = fixture();
        let ids = |only: &[&str], skip: &[&str]| -> Vec<&str> {
            select(catalog, REG, Mode::Check, &selection(only, skip))
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect()
        };
        assert_eq!(
            ids(&["t.after-*"], &[]),
            vec!["t.after-found", "t.after-after", "t.after-ok"]
        );
        assert_eq!(
            ids(&["t.*"], &["t.after-*", "t.hangs"]),
            vec!["t.ok", "t.found", "t.panics"]
        );
        let err = select(catalog, REG, Mode::Check, &selection(&["t.fonud"], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("matches no check") && err.contains("did you mean t.found"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failing_unselected_prerequisite_is_reported() {
        let results = run_only(&["t.after-found"], Duration::from_secs(1), BTreeMap::new()).await;
        let ids: Vec<_> = results.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(
            ids,
            vec![("t.found", Status::Fail), ("t.after-found", Status::Skip)]
        );
    }
}
