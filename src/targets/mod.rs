//! What a run looks at: the database, the API (Apollo) and the UI, and where each came from.
//!
//! Each target comes from its flag, else from the user's real configuration (`PG*` variables and
//! `~/.pgpass` for the database; the prefect CLI's `~/.prefect/config.toml` and `PREFECT__…` variables
//! for the API and UI). The local `prefect server start` defaults are used only when no target was
//! given on the command line: `--api-url` alone must not also report a refused `localhost:5432`.
//! When the UI is given but the API is not, the API is the one the UI's `settings.json` names.

use url::Url;

use crate::http_url::parse_http_url;

use crate::probes::{
    pg_target::{DbTarget, Env, TargetSource},
    prefect_config::{Call, PrefectConfig, Py},
};

/// Where the API's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ApiUrl {
    Fixed(Url),
    /// The `server_url` in the UI's `/settings.json`, read during the run.
    FromUi,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApiTarget {
    pub url: ApiUrl,
    pub source: String,
    /// Given with `--api-url`.
    pub from_flag: bool,
    /// Reached through a port-forward: its address says nothing about the one users use.
    pub forwarded: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UiTarget {
    pub url: Url,
    pub source: String,
}

#[derive(Debug)]
pub struct Targets {
    pub db: Option<DbTarget>,
    pub api: Option<ApiTarget>,
    pub ui: Option<UiTarget>,
    /// How the database is reached when a Helm release gave it (else: dialled directly, described by
    /// its [`crate::probes::pg_target::TargetSource`]).
    pub db_via: Option<DbVia>,
    /// Where the database came from, when the prefect configuration gave it.
    pub db_source: Option<String>,
    /// What the report's top should say about targets the configuration named and the doctor cannot
    /// check.
    pub notices: Vec<String>,
}

/// A database reached through the cluster: how, for the report, and the dialer (a port-forward).
#[derive(Clone)]
pub struct DbVia {
    pub source: String,
    pub dialer: Option<std::sync::Arc<dyn crate::probes::postgres::Dialer>>,
}

impl std::fmt::Debug for DbVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbVia")
            .field("source", &self.source)
            .field("port_forward", &self.dialer.is_some())
            .finish()
    }
}

/// The API given with `--api-url`.
pub fn api_from_flag(u: &str) -> Result<ApiTarget, String> {
    Ok(ApiTarget {
        url: ApiUrl::Fixed(parse_http_url(u).map_err(|e| format!("--api-url: {e}"))?),
        source: "--api-url".to_string(),
        from_flag: true,
        forwarded: false,
    })
}

/// The UI given with `--ui-url`.
pub fn ui_from_flag(u: &str) -> Result<UiTarget, String> {
    Ok(UiTarget {
        url: parse_http_url(u).map_err(|e| format!("--ui-url: {e}"))?,
        source: "--ui-url".to_string(),
    })
}

/// What the command line gave.
#[derive(Debug, Default, Clone)]
pub struct Given<'a> {
    pub database_url: Option<&'a str>,
    pub api_url: Option<&'a str>,
    pub ui_url: Option<&'a str>,
}

const DEFAULT_SOURCE: &str = "`prefect server start` default";

/// Resolves the targets: flags first, then the user's configuration, then (with no target flag) the
/// local defaults. `Err` only for a flag's bad value (a usage error); a configuration value that is not
/// a usable target is a notice, and that target is left out.
pub fn resolve(given: &Given, env: &dyn Env, prefect: &PrefectConfig) -> Result<Targets, String> {
    let explicit =
        given.database_url.is_some() || given.api_url.is_some() || given.ui_url.is_some();
    let mut notices = Vec::new();

    let (db, db_source) = resolve_db(given, env, prefect, explicit, &mut notices)?;

    let ui = match given.ui_url {
        Some(u) => Some(ui_from_flag(u)?),
        None => {
            let s = prefect.ui_endpoint();
            if s.is_default() && explicit {
                None
            } else {
                match parse_http_url(&s.value) {
                    Ok(url) => Some(UiTarget {
                        url,
                        source: if s.is_default() {
                            DEFAULT_SOURCE.to_string()
                        } else {
                            s.source
                        },
                    }),
                    Err(e) => {
                        notices.push(format!(
                            "not checking a UI: the prefect configuration's server.ui.endpoint (from \
                             {}) is not a UI address: {e}; give --ui-url",
                            s.source
                        ));
                        None
                    }
                }
            }
        }
    };

    let api = match given.api_url {
        Some(u) => Some(api_from_flag(u)?),
        None => resolve_api(given, prefect, explicit, &mut notices),
    };
    Ok(Targets {
        db,
        api,
        ui,
        db_via: None,
        db_source,
        notices,
    })
}

/// The database: `--database-url`, else `PG*`, else the prefect configuration's
/// `server.database.connection_url` when the user set any part of it, else the local default.
fn resolve_db(
    given: &Given,
    env: &dyn Env,
    prefect: &PrefectConfig,
    explicit: bool,
    notices: &mut Vec<String>,
) -> Result<(Option<DbTarget>, Option<String>), String> {
    let db = DbTarget::resolve(given.database_url, env)
        .map_err(|e| format!("invalid database target: {e}"))?;
    if db.source != TargetSource::PrefectDefault {
        return Ok((Some(db), None));
    }
    let configured = prefect.value("server.database.connection_url");
    match configured {
        Some(v) if !v.is_default() => {
            let Py::Str(text) = &v.value else {
                notices.push(format!(
                    "not checking a database: the prefect configuration's \
                     server.database.connection_url (from {}) is {}, not a URL; give --database-url",
                    v.source,
                    v.value.type_name()
                ));
                return Ok((None, None));
            };
            match DbTarget::resolve_configured(text, env) {
                Ok(t) => Ok((
                    Some(t),
                    Some(format!(
                        "the prefect configuration's server.database.connection_url (from {})",
                        v.source
                    )),
                )),
                Err(e) => {
                    notices.push(format!(
                        "not checking a database: the prefect configuration's \
                         server.database.connection_url (from {}) is unusable: {e}; give \
                         --database-url",
                        v.source
                    ));
                    Ok((None, None))
                }
            }
        }
        _ => Ok(((!explicit).then_some(db), None)),
    }
}

/// The API: the one the prefect CLI calls when it is set up for a server (`backend = "server"`, or
/// `cloud.api` set), else `[server] endpoint` when set, else the UI's `server_url` (only `--ui-url`
/// given), else the local default.
fn resolve_api(
    given: &Given,
    prefect: &PrefectConfig,
    explicit: bool,
    notices: &mut Vec<String>,
) -> Option<ApiTarget> {
    let fixed = |url: Url, source: String| ApiTarget {
        url: ApiUrl::Fixed(url),
        source,
        from_flag: false,
        forwarded: false,
    };
    if prefect.cli_targets_server() {
        let api = prefect.cli_api();
        let source = if api.source == "default" {
            DEFAULT_SOURCE.to_string()
        } else {
            format!("the prefect CLI's API, from {}", api.source)
        };
        return match api.call {
            Call::Sends(url) => Some(fixed(url, source)),
            Call::Fails {
                guess: Some(url),
                exception,
                ..
            } => Some(fixed(
                url,
                format!(
                    "{source}, with http:// guessed: the CLI itself cannot use it ({exception})"
                ),
            )),
            Call::Fails { .. } => {
                notices.push(format!(
                    "not checking an API: the prefect CLI's API setting (cloud.api {}, from {}) is \
                     unusable: {}; give --api-url",
                    crate::probes::prefect_config::pyvalue::repr_str(&api.text),
                    api.source,
                    api.call.error_text().unwrap_or_default()
                ));
                None
            }
        };
    }
    let s = prefect.server_endpoint();
    if !s.is_default() {
        return match parse_http_url(&s.value) {
            Ok(url) => Some(fixed(
                url,
                format!("the prefect server endpoint, from {}", s.source),
            )),
            Err(e) => {
                notices.push(format!(
                    "not checking an API: the prefect configuration's server.endpoint (from {}) is \
                     not an API address: {e}; give --api-url",
                    s.source
                ));
                None
            }
        };
    }
    if given.ui_url.is_some() {
        return Some(ApiTarget {
            url: ApiUrl::FromUi,
            source: "the UI's /settings.json server_url".to_string(),
            from_flag: false,
            forwarded: false,
        });
    }
    if explicit {
        return None;
    }
    parse_http_url(&s.value)
        .ok()
        .map(|url| fixed(url, DEFAULT_SOURCE.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(given: Given) -> Targets {
        let home = tempfile::tempdir().unwrap();
        let env: BTreeMap<String, String> =
            [("HOME".to_string(), home.path().display().to_string())].into();
        let prefect = PrefectConfig::load(&env);
        resolve(&given, &env, &prefect).unwrap()
    }

    #[test]
    fn no_flags_means_the_local_defaults() {
        let t = run(Given::default());
        assert!(t.db.is_some());
        assert_eq!(
            t.api.unwrap().url,
            ApiUrl::Fixed(Url::parse("http://localhost:4200").unwrap())
        );
        assert_eq!(t.ui.unwrap().url.as_str(), "http://localhost:8080/");
    }

    #[test]
    fn one_flag_drops_the_other_defaults() {
        let t = run(Given {
            api_url: Some("prefect.example.com:4200/graphql"),
            ..Given::default()
        });
        assert!(t.db.is_none() && t.ui.is_none());
        assert_eq!(
            t.api.unwrap().url,
            ApiUrl::Fixed(Url::parse("http://prefect.example.com:4200/graphql").unwrap())
        );
    }

    #[test]
    fn the_ui_alone_brings_its_api() {
        let t = run(Given {
            ui_url: Some("https://prefect.example.com"),
            ..Given::default()
        });
        assert_eq!(t.api.unwrap().url, ApiUrl::FromUi);
        assert!(t.db.is_none());
    }
}
pub mod find;
pub mod pods;
pub mod reach;
pub mod release;
