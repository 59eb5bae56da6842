//! The check catalog: the words of every check (title, symptom, cause, fix, docs), one TOML file per
//! check in `checks/`, embedded at build time. The logic lives in `src/checks/` under the same name.

use std::{collections::BTreeMap, fmt, sync::OnceLock};

use serde::{Deserialize, Serialize};

include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));

/// How bad a finding of this check is. Decides whether a finding is reported as `fail` or `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// The commands a check runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Check,
    Preflight,
}

/// One catalog entry, as written in `checks/<id>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: String,
    pub title: String,
    pub area: String,
    pub modes: Vec<Mode>,
    pub severity: Severity,
    pub symptom: String,
    pub cause: String,
    /// The default fix (Markdown, with `{placeholders}`).
    pub fix: String,
    /// Fixes for particular causes, chosen by the check (e.g. `pg_hba` for db.password).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fixes: BTreeMap<String, String>,
    pub docs: String,
    /// What `prefect-doctor fix --apply` does about a finding of this check, when it can (the
    /// statements are in `src/fix/`, by the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
    /// Where a user check was read from (`None`: built in).
    #[serde(skip_deserializing, default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl CheckSpec {
    /// The fix text for `variant` (or the default fix), placeholders left as written.
    pub fn fix_text(&self, variant: Option<&str>) -> &str {
        variant
            .and_then(|v| self.fixes.get(v))
            .map(String::as_str)
            .unwrap_or(&self.fix)
    }
}

/// The areas a check can belong to, in report order, with their display names.
pub const AREAS: &[(&str, &str)] = &[
    ("kubernetes", "Kubernetes"),
    ("values", "Helm values"),
    ("cluster", "Cluster prerequisites"),
    ("database", "Database"),
    ("hasura", "Hasura"),
    ("api", "API"),
    ("ui", "UI"),
    ("tenant", "Tenant"),
    ("runs", "Flow runs"),
    ("versions", "Versions"),
    ("cli", "Local prefect CLI"),
];

pub fn area_title(area: &str) -> &str {
    AREAS
        .iter()
        .find(|(a, _)| *a == area)
        .map(|(_, t)| *t)
        .unwrap_or(area)
}

/// Placeholders a fix may use. A test keeps the catalog within this list.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("db_user", "the database user Prefect connects as"),
    (
        "password_file",
        "the pgpass file the database password was read from",
    ),
    ("image", "a container image the cluster cannot pull"),
    ("container", "a container of the release"),
    (
        "component",
        "the chart's values section of that container (apollo, graphql …)",
    ),
    ("memory_limit", "that container's memory limit"),
    (
        "unserved_labels",
        "the labels of late flow runs that no live agent has",
    ),
    (
        "agent_labels",
        "the labels a live agent would need: its own and the unserved ones",
    ),
    (
        "stuck_runs",
        "the flow runs stuck in Submitted (count and the first ids)",
    ),
    (
        "job_namespace",
        "the namespace the Kubernetes agent creates flow-run Jobs in",
    ),
    ("flow_pod", "the pod of a stuck flow run's Job"),
    (
        "hasura_expected",
        "the Hasura image the release's chart was built for",
    ),
    (
        "hasura_expected_tag",
        "the tag of the Hasura image the release's chart was built for",
    ),
    ("server_core", "the Prefect Core version the server runs"),
    (
        "old_agents",
        "agents whose Prefect version is older than the server's",
    ),
    (
        "removed_apis",
        "the release's objects whose API version the cluster no longer serves",
    ),
    ("agent_sa", "the agent's ServiceAccount as namespace/name"),
    ("agent_sa_name", "the name of the agent's ServiceAccount"),
    (
        "missing_permissions",
        "the verbs and resources the agent's ServiceAccount may not use",
    ),
    ("flow_image", "the image of a stuck flow run's pod"),
    ("pull_reason", "why that image cannot be pulled"),
    (
        "pending_reason",
        "why a stuck flow run's pod cannot be scheduled or started",
    ),
    ("pod_end", "how a stuck flow run's pod ended"),
    (
        "flow_api",
        "the API address a stuck flow run's pod was given",
    ),
    ("database", "the Prefect database name"),
    ("db_host", "the database host"),
    ("db_port", "the database port"),
    ("hasura_user", "the database user Hasura connects as"),
    ("release", "the Helm release name"),
    ("namespace", "the Kubernetes namespace"),
    ("api_url", "the API URL this run checked"),
    ("ui_url", "the UI URL this run checked"),
    ("settings_url", "the URL of the UI's settings.json"),
    ("server_url", "the API URL the UI gives the browser"),
    (
        "ui_origin",
        "the origin (scheme://host:port) the UI is served from",
    ),
    (
        "apollo_url",
        "the API URL to give the UI (the one checked here when it differs and answers)",
    ),
    (
        "cli_endpoint",
        "the API endpoint the local prefect CLI uses",
    ),
    (
        "secret",
        "the Kubernetes secret holding the database password",
    ),
    ("secret_key", "the key of that secret the services read"),
    ("status", "the Helm release's status"),
    ("job", "the create-tenant job's name"),
    ("ingress_class", "an IngressClass of the cluster"),
    ("wrong_key", "a values key this chart generation ignores"),
    ("right_key", "the key this chart generation reads instead"),
    (
        "secret_key_path",
        "the values key naming the password secret in this chart generation",
    ),
    (
        "alter_functions",
        "one ALTER FUNCTION statement per function with the wrong owner",
    ),
];

#[derive(Debug)]
pub struct Catalog {
    entries: Vec<CheckSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("checks/{file}: {message}")]
    Parse { file: String, message: String },
    #[error("checks/{file}: id {id:?} does not match the file name")]
    FileName { file: String, id: String },
    #[error("checks/{file}: unknown area {area:?}")]
    Area { file: String, area: String },
}

impl Catalog {
    /// Parses catalog entries from `(file name, TOML text)` pairs.
    pub fn parse(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::with_capacity(files.len());
        for (file, text) in files {
            let spec: CheckSpec = toml::from_str(text).map_err(|e| CatalogError::Parse {
                file: file.to_string(),
                message: e.to_string(),
            })?;
            if format!("{}.toml", spec.id) != *file {
                return Err(CatalogError::FileName {
                    file: file.to_string(),
                    id: spec.id,
                });
            }
            if !AREAS.iter().any(|(a, _)| *a == spec.area) {
                return Err(CatalogError::Area {
                    file: file.to_string(),
                    area: spec.area,
                });
            }
            entries.push(spec);
        }
        Ok(Catalog { entries })
    }

    /// The catalog built into this binary.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::parse(CATALOG_FILES) {
            Ok(c) => c,
            // The catalog is part of the source tree and checked by the test suite; a broken one is a
            // build defect, not user input.
            Err(e) => panic!("built-in check catalog is invalid: {e}"),
        })
    }

    /// The built-in catalog with `user` entries after it.
    pub fn with(user: Vec<CheckSpec>) -> Catalog {
        let mut entries = Catalog::builtin().entries.clone();
        entries.extend(user);
        Catalog { entries }
    }

    pub fn get(&self, id: &str) -> Option<&CheckSpec> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn entries(&self) -> &[CheckSpec] {
        &self.entries
    }

    /// Catalog ids closest to `id`, best first, for "did you mean" hints.
    pub fn suggest(&self, id: &str) -> Vec<&str> {
        let mut scored: Vec<(f64, &str)> = self
            .entries
            .iter()
            .map(|e| (strsim::jaro_winkler(id, &e.id), e.id.as_str()))
            .filter(|(s, _)| *s >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(3).map(|(_, id)| id).collect()
    }
}

/// Fills `{placeholder}`s in `text` from `vars`; an unknown or undiscovered one becomes `<name>`.
/// `{{` and `}}` are literal braces.
pub fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    substitute(text, |name| {
        vars.get(name)
            .cloned()
            .unwrap_or_else(|| format!("<{name}>"))
    })
}

/// The placeholder names used in `text`, as [`fill`] sees them.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    substitute(text, |name| {
        names.push(name.to_string());
        String::new()
    });
    names
}

/// The one scanner of the placeholder syntax: replaces each `{name}` (ASCII letters, digits, `_`)
/// with `on_name(name)`; `{{` and `}}` are literal braces; anything else is copied as is.
fn substitute(text: &str, mut on_name: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(stripped) = tail.strip_prefix('{')
            && let Some(end) = stripped.find('}')
        {
            let name = &stripped[..end];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&on_name(name));
                rest = &stripped[end + 1..];
                continue;
            }
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_and_marks_unknown() {
        let vars = BTreeMap::from([("db_user".to_string(), "prefect".to_string())]);
        assert_eq!(
            fill(
                "ALTER USER {db_user}; helm upgrade {release} {{x}} {not a var}",
                &vars
            ),
            "ALTER USER prefect; helm upgrade <release> {x} {not a var}"
        );
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            placeholders("a {db_user} {{lit}} {release}."),
            vec!["db_user", "release"]
        );
    }

    /// The catalog's words are ours, not secrets: the shape masking every output passes through
    /// (`password=…`, `user:pw@`, `Bearer …`) must leave every one of them as written, or a fix
    /// prints `--set postgresql.postgresqlPassword=****` where the README says what to type.
    #[test]
    fn no_catalog_text_looks_like_a_secret() {
        for spec in Catalog::builtin().entries() {
            let mut texts = vec![&spec.symptom, &spec.cause, &spec.fix, &spec.title];
            texts.extend(spec.fixes.values());
            texts.extend(spec.automatic.iter());
            for text in texts {
                let masked = crate::redact::mask_shapes(text);
                assert_eq!(
                    &masked, text,
                    "{}: the scrubber changes the catalog's text",
                    spec.id
                );
            }
        }
    }

    #[test]
    fn suggest_finds_typos() {
        let c = Catalog::builtin();
        assert_eq!(c.suggest("db.pasword").first(), Some(&"db.password"));
        assert!(c.suggest("zzzzzz").is_empty());
    }
}
