//! Check logic. Each check is one small async function named after its catalog id
//! (`db.password` → `db_password`), in the file of its area. Its words (title, fix …) are in
//! `checks/<id>.toml`.

mod agent;
mod agent_rbac;
mod alembic;
mod api;
mod cluster;
pub mod cluster_cx;
mod cx;
mod db;
mod db_schema;
mod db_usage;
mod hasura;
mod kube;
mod kube_apis;
mod kube_restarts;
mod logs;
mod outcome;
mod prefect;
mod runs;
mod runs_api;
mod runs_model;
mod runs_stuck;
mod sql;
mod tenant;
mod ui;
mod user;
mod values;
mod versions;
mod web;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use cx::{Absent, Cx, Reach};
use cx::{db_session, query_failed};
pub(crate) use db::is_utc;
pub use outcome::{Outcome, Verdict, kube_failed};
pub use sql::quote_ident;
pub(crate) use web::{GraphqlFailure, TENANT, api_url, graphql};

pub type CheckFn = fn(Arc<Cx>) -> BoxFuture<'static, Outcome>;

/// A check's logic and the checks it needs to have passed first.
#[derive(Clone, Copy)]
pub struct CheckDef {
    pub id: &'static str,
    pub requires: &'static [&'static str],
    pub run: Runner,
}

/// How a check runs: compiled in, or a user check's probe and CEL expressions.
#[derive(Clone, Copy)]
pub enum Runner {
    Builtin(CheckFn),
    User(&'static crate::user_checks::UserCheck),
}

impl Runner {
    pub fn start(&self, cx: Arc<Cx>) -> BoxFuture<'static, Outcome> {
        match *self {
            Runner::Builtin(f) => f(cx),
            Runner::User(check) => Box::pin(user::run(check, cx)),
        }
    }
}

macro_rules! check {
    ($id:literal, $f:path, requires = [$($dep:literal),*]) => {
        CheckDef { id: $id, requires: &[$($dep),*], run: Runner::Builtin(|cx| Box::pin($f(cx))) }
    };
}

/// The checks of a run: the catalog's words and the registry's logic, built-in and the user's.
#[derive(Clone, Copy)]
pub struct Checks {
    pub catalog: &'static crate::catalog::Catalog,
    pub registry: &'static [CheckDef],
}

impl Checks {
    pub fn builtin() -> Checks {
        Checks {
            catalog: crate::catalog::Catalog::builtin(),
            registry: REGISTRY,
        }
    }

    /// The built-in checks and `user`'s after them. They live as long as the program: made once
    /// for each set of user check files (by name and text), so that `serve`, which assembles the
    /// checks every interval, and a fleet run, once per release, do not leak a copy each time.
    pub fn with_user(user: Vec<crate::user_checks::UserCheck>) -> Checks {
        if user.is_empty() {
            return Checks::builtin();
        }
        // Each set made so far, as the (program-long) checks it made: compared by file name and text.
        static MADE: std::sync::Mutex<Vec<(&'static [crate::user_checks::UserCheck], Checks)>> =
            std::sync::Mutex::new(Vec::new());
        let mut made = match MADE.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same = |a: &crate::user_checks::UserCheck, b: &crate::user_checks::UserCheck| {
            a.file == b.file && a.text == b.text
        };
        if let Some((_, checks)) = made
            .iter()
            .find(|(u, _)| u.len() == user.len() && u.iter().zip(&user).all(|(a, b)| same(a, b)))
        {
            return *checks;
        }
        let user: &'static [crate::user_checks::UserCheck] = Vec::leak(user);
        let checks = Checks::make(user);
        made.push((user, checks));
        checks
    }

    fn make(user: &'static [crate::user_checks::UserCheck]) -> Checks {
        let catalog = crate::catalog::Catalog::with(user.iter().map(|u| u.spec.clone()).collect());
        let mut registry: Vec<CheckDef> = REGISTRY.to_vec();
        for u in user {
            let requires: Vec<&'static str> =
                u.requires.iter().map(|r| &*r.clone().leak()).collect();
            registry.push(CheckDef {
                id: &*u.spec.id.clone().leak(),
                requires: Vec::leak(requires),
                run: Runner::User(u),
            });
        }
        Checks {
            catalog: Box::leak(Box::new(catalog)),
            registry: Vec::leak(registry),
        }
    }
}

/// Every check, in report order. A check's prerequisites come before it.
pub static REGISTRY: &[CheckDef] = &[
    check!("values.parse", values::values_parse, requires = []),
    check!(
        "values.unknown-keys",
        values::values_unknown_keys,
        requires = ["values.parse"]
    ),
    check!(
        "values.generation",
        values::values_generation,
        requires = ["values.parse"]
    ),
    check!(
        "values.external-db",
        values::values_external_db,
        requires = ["values.parse"]
    ),
    check!(
        "values.password-ignored",
        values::values_password_ignored,
        requires = ["values.parse"]
    ),
    check!(
        "values.persistent-password",
        values::values_persistent_password,
        requires = ["values.parse"]
    ),
    check!(
        "values.password-keys",
        values::values_password_keys,
        requires = ["values.parse"]
    ),
    check!(
        "values.ingress",
        values::values_ingress,
        requires = ["values.parse"]
    ),
    check!(
        "values.ui-api-url",
        values::values_ui_api_url,
        requires = ["values.parse"]
    ),
    check!(
        "values.tenant-job",
        values::values_tenant_job,
        requires = ["values.parse"]
    ),
    check!(
        "values.versions",
        values::values_versions,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.namespace",
        cluster::cluster_namespace,
        requires = []
    ),
    check!(
        "cluster.db-secret",
        cluster::cluster_db_secret,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.tls-secrets",
        cluster::cluster_tls_secrets,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.ingress-class",
        cluster::cluster_ingress_class,
        requires = ["values.parse"]
    ),
    check!(
        "cluster.storage-class",
        cluster::cluster_storage_class,
        requires = ["values.parse"]
    ),
    check!("kube.release", kube::kube_release, requires = []),
    check!("kube.pods", kube::kube_pods, requires = ["kube.release"]),
    check!(
        "kube.db-secret",
        kube::kube_db_secret,
        requires = ["kube.release"]
    ),
    check!(
        "kube.restarts",
        kube_restarts::kube_restarts,
        requires = ["kube.release"]
    ),
    check!(
        "kube.chart-env",
        kube::kube_chart_env,
        requires = ["kube.release"]
    ),
    check!(
        "kube.images",
        kube::kube_images,
        requires = ["kube.release"]
    ),
    check!(
        "kube.tenant-job",
        kube::kube_tenant_job,
        requires = ["kube.release"]
    ),
    check!(
        "kube.api-versions",
        kube_apis::kube_api_versions,
        requires = ["kube.release"]
    ),
    check!("db.reachable", db::db_reachable, requires = []),
    check!("db.password", db::db_password, requires = ["db.reachable"]),
    check!("db.version", db::db_version, requires = ["db.password"]),
    check!(
        "db.extensions",
        db::db_extensions,
        requires = ["db.password"]
    ),
    check!("db.timezone", db::db_timezone, requires = ["db.password"]),
    check!(
        "db.connections",
        db_usage::db_connections,
        requires = ["db.password"]
    ),
    check!("db.size", db_usage::db_size, requires = ["db.password"]),
    check!(
        "db.schema",
        db_schema::db_schema,
        requires = ["db.password"]
    ),
    check!(
        "hasura.schema-owner",
        hasura::hasura_schema_owner,
        requires = ["db.password"]
    ),
    check!(
        "hasura.function-owner",
        hasura::hasura_function_owner,
        requires = ["db.password"]
    ),
    check!("api.reachable", api::api_reachable, requires = []),
    check!(
        "api.version",
        api::api_version,
        requires = ["api.reachable"]
    ),
    check!("ui.settings-json", ui::ui_settings_json, requires = []),
    check!(
        "ui.server-url",
        ui::ui_server_url,
        requires = ["ui.settings-json"]
    ),
    check!("tenant.exists", tenant::tenant_exists, requires = []),
    // Read from the database, else through the API: no prerequisite of either.
    check!("runs.late", runs::runs_late, requires = []),
    check!(
        "runs.stuck-submitted",
        runs_stuck::runs_stuck_submitted,
        requires = ["db.schema"]
    ),
    check!("versions.skew", versions::versions_skew, requires = []),
    check!(
        "agent.replicas",
        agent::agent_replicas,
        requires = ["kube.release"]
    ),
    check!(
        "agent.api-url",
        agent::agent_api_url,
        requires = ["kube.release"]
    ),
    check!(
        "agent.tenant-errors",
        agent::agent_tenant_errors,
        requires = ["kube.release"]
    ),
    check!(
        "agent.rbac",
        agent_rbac::agent_rbac,
        requires = ["kube.release"]
    ),
    check!(
        "prefect.cli-config",
        prefect::prefect_cli_config,
        requires = []
    ),
];

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef")
            .field("id", &self.id)
            .field("requires", &self.requires)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prerequisites_come_first_and_exist() {
        for (i, c) in REGISTRY.iter().enumerate() {
            for dep in c.requires {
                let j = REGISTRY.iter().position(|d| d.id == *dep);
                assert!(
                    j.is_some_and(|j| j < i),
                    "{} requires {dep}, which must be listed before it",
                    c.id
                );
            }
        }
    }
}
