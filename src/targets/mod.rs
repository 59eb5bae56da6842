//! What a run looks at: the database, the API (Apollo) and the UI, and where each came from.
//!
//! Each target comes from its flag, else from the user's real configuration (`PG*` variables and
//! `~/.pgpass` for the database; the prefect CLI's `~/.prefect/config.toml` and `PREFECT__…` variables
//! for the API and UI). The local `prefect server start` defaults are used only when no target was
//! given on the command line: `--api-url` alone must not also report a refused `localhost:5432`.
//! When the UI is given but the API is not, the API is the one the UI's `settings.json` names.

use url::Url;

use crate::probes::{
    pg_target::{DbTarget, Env, TargetSource},
    prefect_config::PrefectConfig,
};

/// Where the API's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiUrl {
    Fixed(Url),
    /// The `server_url` in the UI's `/settings.json`, read during the run.
    FromUi,
}

#[derive(Debug, Clone)]
pub struct ApiTarget {
    pub url: ApiUrl,
    pub source: String,
    /// Given with `--api-url`.
    pub from_flag: bool,
    /// Reached through a port-forward: its address says nothing about the one users use.
    pub forwarded: bool,
}

#[derive(Debug, Clone)]
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

/// Parses a user-given http(s) URL; `host:port` without a scheme means `http://host:port`.
pub fn parse_http_url(s: &str) -> Result<Url, String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} is not an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    // Basic-auth credentials in the URL are secrets: never shown.
    if let Some(p) = url.password() {
        crate::redact::register(p);
        if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
            crate::redact::register(&decoded);
        }
    }
    Ok(url)
}

pub fn resolve(given: &Given, env: &dyn Env, prefect: &PrefectConfig) -> Result<Targets, String> {
    let explicit =
        given.database_url.is_some() || given.api_url.is_some() || given.ui_url.is_some();

    let db = DbTarget::resolve(given.database_url, env)
        .map_err(|e| format!("invalid database target: {e}"))?;
    let db = (!(explicit && db.source == TargetSource::PrefectDefault)).then_some(db);

    let ui = match given.ui_url {
        Some(u) => Some(ui_from_flag(u)?),
        None => {
            let s = prefect.ui_endpoint();
            if s.is_default() && explicit {
                None
            } else {
                let url = parse_http_url(&s.value)
                    .map_err(|e| format!("the prefect UI endpoint ({}): {e}", s.source))?;
                let source = if s.is_default() {
                    DEFAULT_SOURCE.to_string()
                } else {
                    s.source
                };
                Some(UiTarget { url, source })
            }
        }
    };

    let api =
        match given.api_url {
            Some(u) => Some(api_from_flag(u)?),
            None => {
                let s = prefect.server_endpoint();
                if !s.is_default() {
                    Some(ApiTarget {
                        url: ApiUrl::Fixed(parse_http_url(&s.value).map_err(|e| {
                            format!("the prefect server endpoint ({}): {e}", s.source)
                        })?),
                        source: s.source,
                        from_flag: false,
                        forwarded: false,
                    })
                } else if given.ui_url.is_some() {
                    Some(ApiTarget {
                        url: ApiUrl::FromUi,
                        source: "the UI's /settings.json server_url".to_string(),
                        from_flag: false,
                        forwarded: false,
                    })
                } else if !explicit {
                    Some(ApiTarget {
                        url: ApiUrl::Fixed(parse_http_url(&s.value)?),
                        source: DEFAULT_SOURCE.to_string(),
                        from_flag: false,
                        forwarded: false,
                    })
                } else {
                    None
                }
            }
        };
    Ok(Targets {
        db,
        api,
        ui,
        db_via: None,
    })
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

    #[test]
    fn bad_urls_are_refused() {
        assert!(parse_http_url("ftp://x").is_err());
        assert!(parse_http_url("http://").is_err());
        assert_eq!(
            parse_http_url("10.0.0.1:8080").unwrap().as_str(),
            "http://10.0.0.1:8080/"
        );
    }
}
pub mod reach;
pub mod release;
