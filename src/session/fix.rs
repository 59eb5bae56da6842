//! `fix`: a `check` run, the plan made from its results and, with `--apply` (and the person's yes),
//! each check's statements in one transaction, then the fixed checks run again.

use std::{path::PathBuf, sync::Arc};

use crate::{
    catalog::Catalog,
    engine::rounds::{Progress, Quiet},
    fix::{
        self, Conn, Planned,
        apply::{self, Applied},
        journal::Journal,
        report::{Action, Entry, FixReport, Outcome},
    },
    probes::{
        pg_target::{DbTarget, Env, ProcessEnv},
        postgres::{PgProbe, PgSession},
    },
    report::Status,
};

use super::{
    check::CheckInput,
    context::CxFactory,
    run::{Prepared, prepare, replay},
};
use crate::probes::tape::TapeMode;

/// What `fix` is asked to do: `check`'s flags and its own.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FixInput {
    #[command(flatten)]
    pub check: CheckInput,
    /// Apply the plan: asks first on a terminal; elsewhere --yes is needed. Without it, a dry run
    /// that changes nothing.
    #[arg(long)]
    pub apply: bool,
    /// Apply without asking (needed without a terminal).
    #[arg(long, requires = "apply")]
    pub yes: bool,
    /// The database connection for statements that need an owner or a superuser (ownership changes,
    /// ALTER DATABASE, extensions on PostgreSQL 12 and older): a postgres:// URL or key=value
    /// string; its host, port and database default to the checked database's. PG* variables are
    /// not read for it.
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// Append a JSON line per statement applied (time, check, statement, user, result, what it
    /// replaced, the statement that undoes it).
    #[arg(long, value_name = "FILE", requires = "apply")]
    pub journal: Option<PathBuf>,
}

/// The environment the `--admin-url` is read in: no PG* connection variable (they describe the app
/// user), its missing host, port and database those of the checked database.
struct AdminEnv<'a>(&'a DbTarget);

impl Env for AdminEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "PGHOST" => Some(self.0.host.clone()),
            "PGPORT" => Some(self.0.port.to_string()),
            "PGDATABASE" => Some(self.0.dbname.clone()),
            "PGUSER" | "PGPASSWORD" | "PGHOSTADDR" | "PGSERVICE" => None,
            _ => ProcessEnv.var(name),
        }
    }
    fn home_of(&self, user: Option<&str>) -> Option<String> {
        ProcessEnv.home_of(user)
    }
    fn os_user(&self) -> Option<String> {
        ProcessEnv.os_user()
    }
}

/// Asks the person whether to apply the plan (shown to them first); `false` applies nothing.
pub type Approve<'a> = &'a dyn Fn(&FixReport) -> bool;

/// Runs `fix`; `Err` is a usage error (nothing was changed).
pub fn run(
    input: &FixInput,
    approve: Approve,
    progress: &dyn Progress,
) -> Result<(FixReport, &'static Catalog), String> {
    if input.check.from.is_some() && (input.apply || input.admin_url.is_some()) {
        // A bundle is a recording of somebody's install: what it shows is planned, never changed.
        return Err(format!(
            "fix --from plans from a support bundle and can never change anything: drop {} \
             (nothing was contacted)",
            if input.apply {
                "--apply"
            } else {
                "--admin-url"
            }
        ));
    }
    if let Some(url) = &input.admin_url {
        // Known as a secret before anything could print it.
        crate::redact::register_url_credentials(url);
    }
    let mut journal = match &input.journal {
        Some(path) => Some(Journal::open(path)?),
        None => None,
    };
    let Prepared {
        setup,
        factory,
        scope,
    } = match &input.check.from {
        Some(path) => replay(&input.check, path)?,
        None => prepare(&input.check, TapeMode::Live, None)?,
    };
    let catalog = setup.checks.catalog;
    let admin = match (&input.admin_url, &factory.db) {
        (Some(url), Some(app)) => {
            let t = DbTarget::resolve(Some(url), &AdminEnv(app))
                .map_err(|e| format!("--admin-url: {e}"))?;
            if let Some(p) = &t.password {
                crate::redact::register(p.expose());
            }
            Some(t)
        }
        (Some(_), None) => {
            return Err("--admin-url: there is no database to fix (give --database-url)".into());
        }
        _ => None,
    };

    let results = setup.run_some(None, &|| factory.make(), input.check.wait, progress);
    let plan_cx = factory.make();
    let plan: Vec<Entry> = setup.runtime.block_on(async {
        let mut plan = Vec::new();
        for r in results
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::Warn | Status::Error))
        {
            plan.push(entry(r, &plan_cx, admin.is_some()).await);
        }
        plan
    });
    drop(plan_cx);

    let mut applied = None;
    if input.apply {
        let report = FixReport {
            schema_version: crate::report::SCHEMA_VERSION,
            command: "fix",
            mode: "apply",
            report: scope.clone().report(results.clone(), false, 0),
            plan: plan.clone(),
            applied: None,
            exit_code: 1,
        };
        let todo: Vec<&Entry> = plan
            .iter()
            .filter(|e| e.action == Action::Automatic)
            .collect();
        if !todo.is_empty() && approve(&report) {
            let outcomes = setup.runtime.block_on(apply_all(
                &todo,
                &factory,
                admin.as_ref(),
                journal.as_mut(),
            ));
            let (outcomes, journal_error) = outcomes;
            let tried: Vec<&str> = outcomes
                .iter()
                .filter(|(_, tried)| *tried)
                .map(|(o, _)| o.check.as_str())
                .collect();
            let again = if tried.is_empty() {
                Vec::new()
            } else {
                setup.run_some(Some(&tried), &|| factory.make(), None, &Quiet)
            };
            applied = Some(
                outcomes
                    .into_iter()
                    .map(|a| judge(a, &again))
                    .collect::<Vec<_>>(),
            );
            if let Some(e) = journal_error {
                applied_notice(&mut applied, e);
            }
        } else {
            applied = Some(Vec::new());
        }
    }
    let (results, elapsed) = setup.finish(results);
    let report = scope.report(results, input.check.common.strict, elapsed);
    let exit_code = exit_code(&plan, applied.as_deref(), input.check.common.strict);
    Ok((
        FixReport {
            schema_version: crate::report::SCHEMA_VERSION,
            command: "fix",
            mode: if input.check.from.is_some() {
                "bundle"
            } else if input.apply {
                "apply"
            } else {
                "dry-run"
            },
            report,
            plan,
            applied,
            exit_code,
        },
        catalog,
    ))
}

/// A journal that could not be written is said on every outcome that was applied after it failed.
fn applied_notice(applied: &mut Option<Vec<Outcome>>, error: String) {
    for o in applied.iter_mut().flatten() {
        let hint = o.hint.take();
        o.hint = Some(match hint {
            Some(h) => format!("{h}; {error}"),
            None => error.clone(),
        });
    }
}

/// The plan's entry for a check that did not pass.
async fn entry(r: &crate::report::CheckResult, cx: &crate::checks::Cx, admin: bool) -> Entry {
    let mut e = Entry {
        check: r.id.clone(),
        title: r.title.clone(),
        status: r.status,
        message: r.message.clone(),
        action: Action::Manual,
        connection: None,
        connection_why: None,
        steps: Vec::new(),
        blocked: None,
        fix: r.fix.clone(),
    };
    if r.status == Status::Error {
        // The check could not judge: there is nothing to plan from.
        e.blocked = fix::is_automatic(&r.id)
            .then(|| "the check could not judge the state, so nothing can be planned".to_string());
        e.action = if e.blocked.is_some() {
            Action::Blocked
        } else {
            Action::Manual
        };
        return e;
    }
    match fix::plan(&r.id, cx).await {
        None => e,
        Some(Err(why)) => Entry {
            action: Action::Blocked,
            blocked: Some(why),
            ..e
        },
        Some(Ok(Planned { conn, why, steps })) => {
            let blocked = (conn == Conn::Admin && !admin).then(|| {
                format!(
                    "{why}. Pass --admin-url (an owner or a superuser), or run the statements \
                     as such a user"
                )
            });
            Entry {
                action: if blocked.is_some() {
                    Action::Blocked
                } else {
                    Action::Automatic
                },
                connection: Some(conn),
                connection_why: Some(why),
                steps,
                blocked,
                fix: None,
                ..e
            }
        }
    }
}

/// One applied entry, before it is checked again; `bool`: statements were sent.
type Attempt = (Outcome, bool);

/// Applies each entry in order (each its own transaction); a failed one does not stop the others.
/// Returns the attempts and, when the journal could not be written, why.
async fn apply_all(
    todo: &[&Entry],
    factory: &CxFactory,
    admin: Option<&DbTarget>,
    mut journal: Option<&mut Journal>,
) -> (Vec<Attempt>, Option<String>) {
    let cx = factory.make();
    let app_probe = factory.db.clone().map(|t| factory.pg_probe(t));
    let admin_probe = admin.map(|t| factory.pg_probe(t.clone()));
    let mut out = Vec::new();
    let mut journal_error = None;
    for e in todo {
        let conn = e.connection.unwrap_or(Conn::App);
        let (applied, user) = match conn {
            Conn::Api => {
                let mut applied = Applied::NotRun {
                    error: "the plan has no mutation".to_string(),
                };
                for step in &e.steps {
                    applied = apply::api(&cx, step).await;
                }
                let user = match crate::checks::api_url(&cx).await {
                    Ok((u, _)) => u.to_string(),
                    Err(_) => "the API".to_string(),
                };
                (applied, user)
            }
            Conn::App | Conn::Admin => {
                let probe = if conn == Conn::Admin {
                    admin_probe.as_ref()
                } else {
                    app_probe.as_ref()
                };
                match session_for(probe, conn, factory).await {
                    Ok(s) => (
                        apply::sql(&s, &e.steps, factory.timeout).await,
                        s.current_user.clone(),
                    ),
                    Err(error) => (Applied::NotRun { error }, String::new()),
                }
            }
        };
        if let Some(j) = journal.as_deref_mut()
            && let Err(err) = j.record(&e.check, conn, &user, &e.steps, &applied)
        {
            journal_error = Some(err);
        }
        let tried = !matches!(applied, Applied::NotRun { .. });
        let hint = hint(&applied, conn);
        out.push((
            Outcome {
                check: e.check.clone(),
                applied,
                user,
                result: String::new(),
                recheck: None,
                message: None,
                hint,
            },
            tried,
        ));
    }
    (out, journal_error)
}

/// The session a check's statements run in: the app's, or the `--admin-url`'s (which must be the
/// same database).
async fn session_for(
    probe: Option<&PgProbe>,
    conn: Conn,
    factory: &CxFactory,
) -> Result<Arc<PgSession>, String> {
    let who = if conn == Conn::Admin {
        "with --admin-url"
    } else {
        "to the database"
    };
    let probe = probe.ok_or_else(|| format!("no connection {who}"))?;
    let s = probe
        .session()
        .await
        .map_err(|e| format!("could not connect {who}: {e}"))?;
    if let Some(app) = &factory.db
        && s.database != app.dbname
    {
        return Err(format!(
            "the --admin-url connects to database {:?}, not to {:?}, the one checked",
            s.database, app.dbname
        ));
    }
    Ok(s)
}

/// What to do when a check's statements did not take.
fn hint(applied: &Applied, conn: Conn) -> Option<String> {
    let error = match applied {
        Applied::Committed => return None,
        Applied::RolledBack { error, .. }
        | Applied::NotRun { error }
        | Applied::Unknown { error } => error,
    };
    let denied = error.contains("SQLSTATE 42501")
        || error.contains("must be owner")
        || error.contains("permission denied");
    Some(match conn {
        Conn::Api => "the API's answer says why; `prefect server create-tenant --name default \
                      --slug default` sends the same mutation"
            .to_string(),
        _ if denied && conn == Conn::Admin => {
            "the --admin-url user may not do this either: give an --admin-url of the object's \
             owner or a superuser, or run the statements as such a user"
                .to_string()
        }
        _ if denied => {
            "the database user may not do this: pass --admin-url with the object's owner or a \
             superuser, or run the statements as such a user"
                .to_string()
        }
        _ if error.contains("SQLSTATE 55P03") || error.contains("SQLSTATE 57014") => {
            "another session holds what this statement must change (a Hasura starting or \
             migrating?): nothing was changed; run `fix --apply` again when it is done, or give a \
             longer --timeout"
                .to_string()
        }
        _ if matches!(applied, Applied::Unknown { .. }) => {
            "the connection was lost: the check run again says whether the change took".to_string()
        }
        _ => "nothing was changed; fix the cause above and run `fix --apply` again".to_string(),
    })
}

/// An attempt judged by the check run again.
fn judge((mut o, tried): Attempt, again: &[crate::report::CheckResult]) -> Outcome {
    let after = tried
        .then(|| again.iter().find(|r| r.id == o.check))
        .flatten();
    o.recheck = after.map(|r| r.status);
    o.message = after.map(|r| r.message.clone());
    o.result = match (&o.applied, after.map(|r| r.status)) {
        // Nothing of this run's took, yet the check passes now: another session (a second `fix`,
        // an operator) made the change at the same time. Never this run's "fixed".
        (Applied::NotRun { .. } | Applied::RolledBack { .. }, Some(Status::Pass)) => {
            o.hint = Some(
                "this run changed nothing (its transaction was rolled back), but the check passes \
                 on the re-check: another session changed the same thing at the same time"
                    .to_string(),
            );
            "fixed elsewhere"
        }
        (_, Some(Status::Pass)) => "fixed",
        (Applied::NotRun { .. }, _) => "not applied",
        (Applied::RolledBack { .. }, _) => "not applied",
        _ => "still failing",
    }
    .to_string();
    o
}

/// Is the check's state good after `fix` (whoever made it so)?
fn settled(o: &Outcome) -> bool {
    matches!(o.result.as_str(), "fixed" | "fixed elsewhere")
}

/// 0 only when nothing is left to do: no plan left unapplied or failed, no failing check whose fix
/// is a person's (a warning's only with --strict).
fn exit_code(plan: &[Entry], applied: Option<&[Outcome]>, strict: bool) -> i32 {
    let manual_left = plan.iter().any(|e| {
        e.action == Action::Manual && (matches!(e.status, Status::Fail | Status::Error) || strict)
    });
    let blocked = plan.iter().any(|e| e.action == Action::Blocked);
    let automatic = plan
        .iter()
        .filter(|e| e.action == Action::Automatic)
        .count();
    let unfixed = match applied {
        None => automatic > 0,
        Some(done) => done.len() < automatic || !done.iter().all(settled),
    };
    i32::from(manual_left || blocked || unfixed)
}
