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
    NoMatch { flag: &'static str, pattern: String, hint: String },
}

fn matchers(patterns: &[String]) -> Result<Vec<(String, GlobMatcher)>, SelectionError> {
    patterns
        .iter()
        .map(|p| {
            Glob::new(p)
                .map(|g| (p.clone(), g.compile_matcher()))
                .map_err(|e| SelectionError::Pattern { pattern: p.clone(), message: e.kind().to_string() })
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
                return Err(SelectionError::NoMatch { flag, pattern: pattern.clone(), hint });
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
        let Some(spec) = catalog.get(def.id) else { continue };
        let deps: Vec<(&'static str, watch::Receiver<Finished>)> = def
            .requires
            .iter()
            .filter_map(|d| senders.get(d).map(|s| (*d, s.subscribe())))
            .collect();
        let Some(done) = senders.get(def.id).cloned() else { continue };
        let severity = opts.severity_overrides.get(def.id).copied().unwrap_or(spec.severity);
        let cx = cx.clone();
        let timeout = opts.timeout;
        let tx = tx.clone();
        tokio::spawn(async move {
            let (result, root) = run_one(def, spec, severity, cx, deps, timeout).await;
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
            let result = finish(spec, severity, &cx, Outcome::skip(reason.clone()), Duration::ZERO);
            return (result, Some(reason));
        }
    }
    let started = Instant::now();
    let task = tokio::spawn((def.run)(cx.clone()));
    let abort = task.abort_handle();
    let outcome = match tokio::time::timeout(timeout + GRACE, task).await {
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
                humantime::format_duration(timeout)
            ))
        }
    };
    (finish(spec, severity, &cx, outcome, started.elapsed()), None)
}

fn finish(
    spec: &catalog::CheckSpec,
    severity: Severity,
    cx: &Cx,
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
    let fix = matches!(status, Status::Warn | Status::Fail).then(|| {
        let mut vars = cx.vars.clone();
        vars.extend(outcome.vars.clone());
        catalog::fill(spec.fix_text(outcome.fix_variant), &vars).trim_end().to_string()
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
    }
}
