//! `--wait`: the run's rounds. The first round runs every selected check; later ones re-run, with
//! fresh connections, what did not pass, after a growing pause, until all pass or the time is up.

use std::{sync::Arc, time::Duration};

use crate::{
    checks::{CheckDef, Cx},
    report::{CheckResult, Status},
};

use super::RunOptions;

/// What a run tells the person waiting for it (the CLI's spinner; nothing in tests).
pub trait Progress: Sync {
    fn start(&self, total: usize);
    fn done(&self, id: &str);
    fn waiting(&self, what: String);
    fn finish(&self);
}

/// No progress display.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: usize) {}
    fn done(&self, _: &str) {}
    fn waiting(&self, _: String) {}
    fn finish(&self) {}
}

/// The first backoff of `--wait`; it doubles up to [`WAIT_MAX_BACKOFF`].
pub const WAIT_FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const WAIT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the selected checks; with `wait`, re-runs the failing, erroring and skipped ones (with fresh
/// connections) after a growing pause until all pass or the time is up.
pub async fn run_rounds(
    checks: crate::checks::Checks,
    selected: &[&'static CheckDef],
    opts: &RunOptions,
    make_cx: &(dyn Fn() -> Arc<Cx> + Sync),
    wait: Option<Duration>,
    progress: &dyn Progress,
) -> Vec<CheckResult> {
    let deadline = wait.map(crate::bounded::deadline_in);
    progress.start(selected.len());
    let tick = |r: &CheckResult| progress.done(&r.id);
    let mut results = super::run(
        make_cx(),
        checks.catalog,
        checks.registry,
        selected,
        opts,
        &tick,
    )
    .await;
    let mut backoff = WAIT_FIRST_BACKOFF;
    let mut round = 1;
    while let Some(deadline) = deadline {
        let redo: Vec<&'static CheckDef> = selected
            .iter()
            .copied()
            .filter(|d| {
                results
                    .iter()
                    .find(|r| r.id == d.id)
                    .is_none_or(|r| !r.status.satisfies_dependents())
            })
            .collect();
        let now = tokio::time::Instant::now();
        if redo.is_empty()
            || !results
                .iter()
                .any(|r| matches!(r.status, Status::Fail | Status::Error))
            || now >= deadline
        {
            break;
        }
        let left = deadline.saturating_duration_since(now);
        progress.waiting(format!(
            "waiting for {} (round {round}, {} left)",
            redo.iter().map(|d| d.id).collect::<Vec<_>>().join(", "),
            humantime::format_duration(Duration::from_secs(left.as_secs()))
        ));
        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(now))).await;
        backoff = (backoff * 2).min(WAIT_MAX_BACKOFF);
        round += 1;
        let again = super::run(
            make_cx(),
            checks.catalog,
            checks.registry,
            &redo,
            opts,
            &|_| {},
        )
        .await;
        for r in again {
            match results.iter_mut().find(|x| x.id == r.id) {
                Some(slot) => *slot = r,
                None => results.push(r),
            }
        }
        // Keep only what this round reports: a prerequisite reported earlier for failing may pass now.
        results.retain(|r| {
            selected.iter().any(|d| d.id == r.id)
                || matches!(r.status, Status::Fail | Status::Error)
        });
    }
    progress.finish();
    // Rounds append re-run prerequisites at the end; `with_config_skips` restores catalog order.
    results
}
