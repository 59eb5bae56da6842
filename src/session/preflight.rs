//! `preflight`: before `helm install`. The values as Helm will read them, the cluster's
//! prerequisites when one is configured, and an external database when the values name one.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    catalog::{Catalog, Mode},
    checks::{Cx, Reach, quote_ident},
    engine::rounds::Progress,
    probes::{
        http::{HttpOptions, HttpProbe},
        kube::KubeOptions,
        pg_target::ProcessEnv,
        postgres::{NetDialer, PgProbe},
        prefect_config::PrefectConfig,
    },
    report::{Report, Target},
};

use super::{
    Common, Setup,
    context::{add_db_target, declare_public},
};

/// What `preflight` is asked to judge: its flags, documented where they are used.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PreflightInput {
    /// A values file, as `helm install -f` (repeatable; later files win).
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<std::path::PathBuf>,
    /// A value, with Helm's syntax (repeatable), e.g. --set postgresql.auth.password=x,ui.ingress.hosts[0]=h.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A value kept as a string (repeatable), as `helm install --set-string`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// A JSON value (repeatable), as `helm install --set-json`: KEY=JSON, or one JSON object.
    #[arg(long, value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// A value read from a file (repeatable), as `helm install --set-file`.
    #[arg(long, value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// A value taken as it is written, commas and backslashes included (repeatable), as
    /// `helm install --set-literal`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set_literal: Vec<String>,
    /// The chart version to be installed, e.g. 2022.09.21 [default: judged by the keys you wrote, else
    /// the newest layout].
    #[arg(long, value_name = "VERSION")]
    pub chart_version: Option<String>,
    /// The namespace to install into [default: the kube context's, else `default`].
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// The kubeconfig file, for the cluster prerequisites.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The external database (with `postgresql.useSubChart=false`), as the chart will reach it [default:
    /// postgresql.externalHostname with the password from the existingSecret, when the cluster is
    /// reachable].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The database user Hasura will connect as (default: the database user, as the chart's Hasura uses).
    #[arg(long, value_name = "NAME")]
    pub hasura_user: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Assembles and runs `prefect-doctor preflight`; `Err` is a usage error.
pub fn run(
    args: &PreflightInput,
    progress: &dyn Progress,
) -> Result<(Report, &'static Catalog), String> {
    let setup = Setup::new(&args.common, Mode::Preflight)?;
    let (config, timeout, runtime) = (&setup.config, setup.timeout, &setup.runtime);
    // The values, as Helm reads them: files in order, then --set and --set-string in order.
    let mut input = crate::chart::values::Input {
        chart_version: args.chart_version.clone(),
        ..Default::default()
    };
    for path in &args.values {
        // An unreadable values file is unreadable input (exit 2), not a finding.
        match crate::bounded::read_text(
            path,
            crate::chart::values::MAX_FILE_BYTES as u64,
            "values file",
        ) {
            Ok(text) => input.files.push((path.display().to_string(), Ok(text))),
            Err(e) => return Err(format!("-f: {e}")),
        }
    }
    // clap keeps each flag's own order; the loader applies the flags in Helm's order.
    use crate::chart::set::SetKind;
    for (kind, exprs) in [
        (SetKind::Json, &args.set_json),
        (SetKind::Set, &args.set),
        (SetKind::String, &args.set_string),
        (SetKind::File, &args.set_file),
        (SetKind::Literal, &args.set_literal),
    ] {
        input.sets.extend(exprs.iter().map(|e| (e.clone(), kind)));
    }
    let loaded = match crate::chart::values::load(&input) {
        Ok(l) => Arc::new(l),
        Err(e) => return Err(e),
    };
    let mut notices = vec![format!(
        "judged against the chart's {} values: {}",
        loaded.generation.label(),
        loaded.generation_reason
    )];
    let mut targets = vec![Target {
        kind: "values".to_string(),
        address: if loaded.files.is_empty() {
            "the chart's defaults".to_string()
        } else {
            loaded.files.join(", ")
        },
        source: format!("{} --set", input.sets.len()),
    }];
    // The cluster, when one is configured.
    let kube_opts = KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone().or(config.namespace.clone()),
        all_namespaces: false,
    };
    let explicit_kube = kube_opts.kubeconfig.is_some() || kube_opts.context.is_some();
    // Why there is no cluster or database to look at, for the checks that need them.
    let mut no_cluster: Option<String> = None;
    let mut no_db: Option<String> = None;
    let cluster = if explicit_kube || crate::probes::kube::config_available(&kube_opts, &ProcessEnv)
    {
        match runtime.block_on(crate::probes::kube::KubeProbe::connect(&kube_opts, timeout)) {
            Ok(p) => {
                targets.push(Target {
                    kind: "kubernetes".to_string(),
                    address: p.server.clone(),
                    source: format!("kube context {}, namespace {}", p.context, p.namespace),
                });
                Some(p)
            }
            Err(e) if explicit_kube => return Err(e.to_string()),
            Err(e) => {
                no_cluster = Some(format!("no cluster: {e}"));
                None
            }
        }
    } else {
        no_cluster = Some(
            "no cluster configured (no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster account): \
             the cluster prerequisites are not checked"
                .to_string(),
        );
        None
    };
    let namespace = cluster
        .as_ref()
        .map(|c| c.namespace.clone())
        .or(kube_opts.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    // The external database.
    let db = runtime.block_on(preflight_db(
        &loaded,
        cluster.as_ref(),
        &namespace,
        args.database_url.as_deref(),
    ));
    let db = match db {
        Ok(Ok(t)) => Some(t),
        Ok(Err(why)) => {
            no_db = Some(why);
            None
        }
        Err(e) => return Err(e),
    };
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("namespace".to_string(), namespace.clone());
    let hasura_user = match &db {
        Some(t) => add_db_target(
            t,
            t.password_source
                .clone()
                .filter(|_| args.database_url.is_none())
                .map(|s| format!("postgresql.externalHostname, password from {s}"))
                .unwrap_or_else(|| t.source.describe().to_string()),
            args.hasura_user.as_deref(),
            &mut vars,
            &mut targets,
        ),
        None => args.hasura_user.clone().unwrap_or_default(),
    };
    if let Some(u) = crate::chart::facts::lookup_str(&loaded.values, "postgresql.auth.username").or(
        crate::chart::facts::lookup_str(&loaded.values, "postgresql.postgresqlUsername"),
    ) {
        vars.entry("db_user".to_string())
            .or_insert_with(|| quote_ident(u));
    }
    declare_public(db.as_ref(), [namespace.as_str()]);
    if db.is_some() {
        notices.push(
            "an external database was given: the db.* and hasura.* checks look at it read-only"
                .to_string(),
        );
    }
    let db_size_warning = config
        .db_size_warning
        .unwrap_or(crate::config::DEFAULT_DB_SIZE_WARNING);
    let make_cx = || {
        Arc::new(Cx {
            pg: Reach::of(
                db.clone()
                    .map(|t| PgProbe::new(t, Box::new(NetDialer), timeout)),
                no_db.clone(),
            ),
            http: HttpProbe::new(HttpOptions {
                timeout,
                insecure: false,
                resolve: Vec::new(),
            }),
            api: Reach::given(None),
            ui: Reach::given(None),
            prefect: Reach::Ready(Arc::new(PrefectConfig::load(&BTreeMap::new()))),
            hasura_user: hasura_user.clone(),
            vars: vars.clone(),
            kube: Reach::given(None),
            values: Reach::Ready(loaded.clone()),
            db_size_warning,
            timeout,
            cluster: Reach::of(cluster.as_ref().map(|c| c.fresh()), no_cluster.clone()),
        })
    };
    let catalog = setup.checks.catalog;
    let (results, elapsed) = setup.run_checks(&make_cx, None, progress);
    let report = Report::new("preflight", targets, results, args.common.strict, elapsed)
        .with_notices(notices);
    Ok((report, catalog))
}

/// The external database a preflight looks at: `--database-url`, else `externalHostname` with the
/// password from the existingSecret in the cluster. `Ok(Err(why))`: none to look at.
async fn preflight_db(
    v: &crate::chart::values::Loaded,
    cluster: Option<&crate::probes::kube::KubeProbe>,
    namespace: &str,
    url: Option<&str>,
) -> Result<Result<crate::probes::pg_target::DbTarget, String>, String> {
    use crate::{
        chart::facts::{DbValues, lookup_bool},
        probes::pg_target::DbTarget,
    };
    if let Some(u) = url {
        return DbTarget::resolve(Some(u), &ProcessEnv)
            .map(Ok)
            .map_err(|e| format!("--database-url: {e}"));
    }
    if lookup_bool(&v.values, "postgresql.useSubChart").unwrap_or(true) {
        return Ok(Err(
            "the chart deploys its own database (postgresql.useSubChart is true)".to_string(),
        ));
    }
    let d = DbValues::read(&v.values, v.generation);
    let Some(host) = d.external_hostname.clone() else {
        return Ok(Err(
            "postgresql.externalHostname is not set (see values.external-db)".to_string(),
        ));
    };
    let key = v.generation.password_key();
    let password = match (cluster, &d.existing_secret) {
        (Some(k), Some(secret)) => {
            crate::targets::release::secret_password(k, namespace, secret, key)
                .await
                .ok()
                .map(|p| (p, format!("secret {namespace}/{secret} key {key}")))
        }
        _ => None,
    };
    let Some((password, source)) = password else {
        return Ok(Err(format!(
            "pass --database-url postgres://{}:<password>@{host}:{}/{} to check the external database \
             (its password could not be read from the cluster)",
            d.username, d.port, d.database
        )));
    };
    Ok(Ok(DbTarget::from_chart(
        host,
        d.port,
        d.username,
        d.database,
        Some(password),
        Some(source),
    )))
}
