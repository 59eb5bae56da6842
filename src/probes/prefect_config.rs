//! The local `prefect` (1.x) CLI's configuration, read the way the CLI reads it: the built-in defaults,
//! then the user's `config.toml`, then `backend.toml` (written by `prefect backend server`), then
//! `PREFECT__…` environment variables; `${dotted.key}` references are then interpolated.
//!
//! Only the settings prefect-doctor uses are read: `backend`, `[server] host/port/endpoint` and
//! `[server.ui] host/port/endpoint`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::pg_target::Env;

/// The keys read, with the CLI's defaults and their environment variables.
const KEYS: &[(&str, &str, &str)] = &[
    ("backend", "cloud", "PREFECT__BACKEND"),
    ("server.host", "http://localhost", "PREFECT__SERVER__HOST"),
    ("server.port", "4200", "PREFECT__SERVER__PORT"),
    (
        "server.endpoint",
        "${server.host}:${server.port}",
        "PREFECT__SERVER__ENDPOINT",
    ),
    (
        "server.ui.host",
        "http://localhost",
        "PREFECT__SERVER__UI__HOST",
    ),
    ("server.ui.port", "8080", "PREFECT__SERVER__UI__PORT"),
    (
        "server.ui.endpoint",
        "${server.ui.host}:${server.ui.port}",
        "PREFECT__SERVER__UI__ENDPOINT",
    ),
];

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `default`, a file path with the key (`~/.prefect/config.toml [server] host`), or a variable.
    pub source: String,
}

impl Setting {
    pub fn is_default(&self) -> bool {
        self.source == "default"
    }
}

#[derive(Debug, Clone)]
pub struct PrefectConfig {
    /// The CLI's home (`~/.prefect`, or `PREFECT__HOME_DIR`).
    pub home_dir: PathBuf,
    pub home_exists: bool,
    /// The user config file, when it exists.
    pub user_config: Option<PathBuf>,
    /// The backend file, when it exists.
    pub backend_config: Option<PathBuf>,
    /// Files that exist but could not be read or parsed, with the reason.
    pub problems: Vec<String>,
    /// Any `PREFECT__…` variable read was set.
    pub env_used: bool,
    /// The home holds a Prefect 2 `profiles.toml` (Prefect 2 shares `~/.prefect`).
    pub prefect2_profiles: bool,
    settings: BTreeMap<&'static str, Setting>,
}

fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{h}{rest}"))
        }
        _ => PathBuf::from(path),
    }
}

/// A short, home-relative form of `path` for messages.
fn pretty(path: &Path, home: Option<&str>) -> String {
    let s = path.display().to_string();
    match home {
        Some(h) if !h.is_empty() && s.starts_with(h) => format!("~{}", &s[h.len()..]),
        _ => s,
    }
}

fn lookup<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let mut parts = dotted.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Registers every string of a prefect config file under a key that names a secret (`api_key`,
/// `auth_token`, `password`), and the password of every URL in it. Iterative: a hostile file's
/// nesting costs no stack.
fn register_secrets(table: &toml::Table) {
    let mut stack: Vec<(&str, &toml::Value)> = table.iter().map(|(k, v)| (k.as_str(), v)).collect();
    while let Some((key, v)) = stack.pop() {
        match v {
            toml::Value::String(s) => {
                crate::redact::register_url_credentials(s);
                if crate::redact::is_secret_key(key) {
                    crate::redact::register(s);
                }
            }
            toml::Value::Table(t) => stack.extend(t.iter().map(|(k, v)| (k.as_str(), v))),
            toml::Value::Array(a) => stack.extend(a.iter().map(|v| (key, v))),
            _ => {}
        }
    }
}

fn section_of(key: &str) -> String {
    match key.rsplit_once('.') {
        Some((table, leaf)) => format!("[{table}] {leaf}"),
        None => key.to_string(),
    }
}

impl PrefectConfig {
    pub fn load(env: &dyn Env) -> PrefectConfig {
        let home = env.var("HOME");
        let home_dir = expand_home(
            &env.var("PREFECT__HOME_DIR")
                .unwrap_or_else(|| "~/.prefect".to_string()),
            home.as_deref(),
        );
        let user_path = env
            .var("PREFECT__USER_CONFIG_PATH")
            .map(|p| expand_home(&p, home.as_deref()))
            .unwrap_or_else(|| home_dir.join("config.toml"));
        let backend_path = env
            .var("PREFECT__BACKEND_CONFIG_PATH")
            .map(|p| expand_home(&p, home.as_deref()))
            .unwrap_or_else(|| home_dir.join("backend.toml"));

        let mut settings: BTreeMap<&'static str, Setting> = KEYS
            .iter()
            .map(|(k, d, _)| {
                (
                    *k,
                    Setting {
                        value: d.to_string(),
                        source: "default".to_string(),
                    },
                )
            })
            .collect();
        let mut problems = Vec::new();
        let mut read = |path: &Path, settings: &mut BTreeMap<&'static str, Setting>| -> bool {
            if !path.is_file() {
                return false;
            }
            let shown = pretty(path, home.as_deref());
            let text = match crate::bounded::read_text(
                path,
                crate::bounded::MAX_CONFIG_FILE,
                "prefect config file",
            ) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(e.to_string().replace(&path.display().to_string(), &shown));
                    return true;
                }
            };
            let table: toml::Table = match text.parse() {
                Ok(t) => t,
                Err(e) => {
                    let e: toml::de::Error = e;
                    problems.push(format!("{shown} is not valid TOML: {}", e.message().trim()));
                    return true;
                }
            };
            register_secrets(&table);
            for (key, _, _) in KEYS {
                if let Some(v) = lookup(&table, key).and_then(scalar) {
                    settings.insert(
                        key,
                        Setting {
                            value: v,
                            source: format!("{shown} {}", section_of(key)),
                        },
                    );
                }
            }
            true
        };
        let user_exists = read(&user_path, &mut settings);
        let backend_exists = read(&backend_path, &mut settings);
        // Secrets in the environment's Prefect settings (an API key, a database URL's password).
        for (name, value) in std::env::vars() {
            if name.starts_with("PREFECT__") {
                crate::redact::register_url_credentials(&value);
                if crate::redact::is_secret_key(&name.replace("__", ".")) {
                    crate::redact::register(&value);
                }
            }
        }
        let mut env_used = false;
        for (key, _, var) in KEYS {
            if let Some(v) = env.var(var) {
                env_used = true;
                settings.insert(
                    key,
                    Setting {
                        value: v,
                        source: var.to_string(),
                    },
                );
            }
        }
        PrefectConfig {
            home_exists: home_dir.is_dir(),
            prefect2_profiles: home_dir.join("profiles.toml").is_file(),
            home_dir,
            user_config: user_exists.then_some(user_path),
            backend_config: backend_exists.then_some(backend_path),
            problems,
            env_used,
            settings,
        }
    }

    /// A setting with `${…}` references interpolated. Its source is its own when it was set, else
    /// that of the settings it refers to that were set (`default` when none was).
    pub fn get(&self, key: &str) -> Setting {
        let mut sources: Vec<String> = Vec::new();
        let value = self.interpolate(key, 0, &mut sources);
        let own = self.settings.get(key).map(|s| s.source.clone());
        let source = match own {
            Some(s) if s != "default" => s,
            _ => {
                sources.retain(|s| s != "default");
                sources.dedup();
                if sources.is_empty() {
                    "default".to_string()
                } else {
                    sources.join(", ")
                }
            }
        };
        Setting { value, source }
    }

    fn interpolate(&self, key: &str, depth: usize, sources: &mut Vec<String>) -> String {
        let Some(s) = self.settings.get(key) else {
            return format!("${{{key}}}");
        };
        sources.push(s.source.clone());
        if depth > 8 {
            return s.value.clone();
        }
        let mut out = String::new();
        let mut rest = s.value.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            match rest[start + 2..].find('}') {
                Some(end) => {
                    let inner = &rest[start + 2..start + 2 + end];
                    out.push_str(&self.interpolate(inner, depth + 1, sources));
                    rest = &rest[start + 2 + end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `prefect backend`: `server` or `cloud`.
    pub fn backend(&self) -> Setting {
        self.get("backend")
    }

    /// The API the CLI talks to on the server backend (`[server] endpoint`).
    pub fn server_endpoint(&self) -> Setting {
        self.get("server.endpoint")
    }

    /// Where `prefect server start` serves the UI (`[server.ui] endpoint`).
    pub fn ui_endpoint(&self) -> Setting {
        self.get("server.ui.endpoint")
    }

    /// Is there any local prefect configuration at all?
    pub fn present(&self) -> bool {
        self.home_exists || self.user_config.is_some() || self.env_used
    }

    /// Only Prefect 2 has been configured here: `~/.prefect` holds its `profiles.toml` and nothing of
    /// Prefect 1.
    pub fn only_prefect2(&self) -> bool {
        self.prefect2_profiles
            && self.user_config.is_none()
            && self.backend_config.is_none()
            && !self.env_used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &Path, vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.insert("HOME".into(), home.display().to_string());
        m
    }

    #[test]
    fn defaults_without_any_file() {
        let home = tempfile::tempdir().unwrap();
        let c = PrefectConfig::load(&env(home.path(), &[]));
        assert!(!c.present());
        assert_eq!(c.server_endpoint().value, "http://localhost:4200");
        assert!(c.server_endpoint().is_default());
        assert_eq!(c.ui_endpoint().value, "http://localhost:8080");
        assert_eq!(c.backend().value, "cloud");
    }

    #[test]
    fn user_file_then_backend_file_then_environment() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".prefect");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            "backend = \"cloud\"\n[server]\n  host = \"http://10.0.0.7\"\n  port = 4200\n",
        )
        .unwrap();
        std::fs::write(dir.join("backend.toml"), "backend = \"server\"\n").unwrap();
        let c = PrefectConfig::load(&env(home.path(), &[]));
        assert_eq!(c.server_endpoint().value, "http://10.0.0.7:4200");
        assert_eq!(
            c.server_endpoint().source,
            "~/.prefect/config.toml [server] host, ~/.prefect/config.toml [server] port"
        );
        assert_eq!(c.backend().value, "server");
        assert_eq!(c.backend().source, "~/.prefect/backend.toml backend");

        let c = PrefectConfig::load(&env(
            home.path(),
            &[(
                "PREFECT__SERVER__ENDPOINT",
                "https://prefect.example.com/graphql",
            )],
        ));
        assert_eq!(
            c.server_endpoint().value,
            "https://prefect.example.com/graphql"
        );
        assert_eq!(c.server_endpoint().source, "PREFECT__SERVER__ENDPOINT");
    }

    #[test]
    fn malformed_file_is_a_problem_not_a_crash() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".prefect");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), "[server\nhost = ").unwrap();
        let c = PrefectConfig::load(&env(home.path(), &[]));
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].starts_with("~/.prefect/config.toml is not valid TOML"));
        assert!(c.server_endpoint().is_default());
    }

    #[test]
    fn self_reference_does_not_loop() {
        let home = tempfile::tempdir().unwrap();
        let c = PrefectConfig::load(&env(
            home.path(),
            &[("PREFECT__SERVER__HOST", "${server.endpoint}")],
        ));
        // Terminates; the value is whatever the bounded expansion leaves.
        assert!(c.server_endpoint().value.contains("${"));
    }
}
