//! The local `prefect` (1.x) CLI's configuration, read exactly as Prefect 1.4.1's
//! `prefect.configuration` reads it, with no network:
//! 1. the built-in defaults (`defaults.toml`, checked against the real package by the oracle test);
//! 2. the user file (`PREFECT__USER_CONFIG_PATH`, else `~/.prefect/config.toml`; `PREFECT__HOME_DIR`
//!    does not move it), then `backend.toml` (`PREFECT__BACKEND_CONFIG_PATH`), merged table by table,
//!    each parsed as toml 0.10 parses it ([`tomlread`]);
//! 3. every `PREFECT__…` variable (the part after the prefix lower-cased, `__` separating keys);
//! 4. `$VAR`, `${VAR}` and `~` expanded in every value, and every string typed by `string_to_type`
//!    (`"4200"` is an int, `"true"` a bool: [`pyvalue`]);
//! 5. `${section.key}` references resolved in up to 10 rounds, a missing key reading as "";
//! 6. Prefect's own refusals: keys that shadow the config object's attributes, a section overwritten
//!    by a scalar, `[tasks.defaults]` that is not a table, an environment value that expands to a
//!    non-string.
//!
//! Where Prefect itself could not load the configuration (every `prefect` command crashes),
//! [`PrefectConfig::broken`] says why; values the doctor could not follow are in `problems`. Neither
//! ends the run. Every secret seen (secret-named keys, URL passwords), before and after typing, is
//! registered for scrubbing.

pub mod client;
pub mod expand;
mod load;
use load::Flat;
pub mod pyvalue;
pub mod tomlread;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

pub use client::Call;
use expand::{Expanded, PyEnv, interpolate_env_vars};
pub use pyvalue::Py;
use pyvalue::string_to_type;
use tomlread::{Entry, Unreadable};

use super::pg_target::Env;

const DEFAULTS: &str = include_str!("defaults.toml");

/// `dir(prefect.configuration.Config)` with python-box 8.0 (what `pip install prefect==1.4.1`
/// resolves): a configuration key with one of these names makes Prefect refuse the whole file
/// ("Invalid config key"). The oracle test compares this list with the real one.
pub const CONFIG_ATTRIBUTES: &[&str] = &[
    "_Box__box_config",
    "_Box__camel_destructive",
    "_Box__convert_and_store",
    "_Box__copy_internals",
    "_Box__dots_int_key",
    "_Box__get_default",
    "_Box__new_from_plain",
    "_Box__process_dotted_key",
    "_Box__recast",
    "__add__",
    "__annotations__",
    "__class__",
    "__class_getitem__",
    "__contains__",
    "__copy__",
    "__deepcopy__",
    "__delattr__",
    "__delitem__",
    "__dict__",
    "__dir__",
    "__doc__",
    "__eq__",
    "__format__",
    "__ge__",
    "__getattr__",
    "__getattribute__",
    "__getitem__",
    "__getstate__",
    "__gt__",
    "__hash__",
    "__iadd__",
    "__init__",
    "__init_subclass__",
    "__ior__",
    "__iter__",
    "__le__",
    "__len__",
    "__lt__",
    "__module__",
    "__ne__",
    "__new__",
    "__or__",
    "__radd__",
    "__reduce__",
    "__reduce_ex__",
    "__repr__",
    "__reversed__",
    "__ror__",
    "__setattr__",
    "__setitem__",
    "__setstate__",
    "__sizeof__",
    "__str__",
    "__sub__",
    "__subclasshook__",
    "__weakref__",
    "_box_defaults",
    "_box_internal_attrs",
    "_box_resolved_defaults",
    "_comment_check_frozen",
    "_comment_copy_to",
    "_comment_document",
    "_comment_owner",
    "_comment_resolve",
    "_comment_store",
    "_conversion_checks",
    "_flush_pending_parent",
    "_protected_keys",
    "_safe_attr",
    "clear",
    "copy",
    "del_comment",
    "from_json",
    "from_msgpack",
    "from_toml",
    "from_toon",
    "from_yaml",
    "fromkeys",
    "get",
    "get_comment",
    "items",
    "keys",
    "merge_update",
    "pop",
    "popitem",
    "set_comment",
    "setdefault",
    "to_dict",
    "to_json",
    "to_msgpack",
    "to_toml",
    "to_toon",
    "to_yaml",
    "update",
    "values",
];

/// The sections whose keys prefect-doctor models; a reference into another section may name a key
/// Prefect has and the doctor does not.
const MODELLED: &[&str] = &["debug", "home_dir", "backend", "server", "cloud", "tasks"];

/// A setting's text (`str()` of its value) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `default`, or the file and key (`~/.prefect/config.toml [server] host`) or variables that set
    /// the parts of it, comma-separated.
    pub source: String,
}

impl Setting {
    pub fn is_default(&self) -> bool {
        self.source == "default"
    }
}

/// A setting's Python value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub value: Py,
    pub source: String,
}

impl Value {
    pub fn setting(&self) -> Setting {
        Setting {
            value: self.value.py_str(),
            source: self.source.clone(),
        }
    }
    pub fn is_default(&self) -> bool {
        self.source == "default"
    }
}

/// The API the prefect CLI talks to: `cloud.api` as the client uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliApi {
    /// The setting as Prefect has it (`str()`).
    pub text: String,
    pub source: String,
    pub call: Call,
}

#[derive(Debug, Clone)]
pub struct PrefectConfig {
    /// The CLI's home (`home_dir`, `~/.prefect` by default).
    pub home_dir: PathBuf,
    pub home_exists: bool,
    /// The user config file, when it exists.
    pub user_config: Option<PathBuf>,
    /// The backend file, when it exists.
    pub backend_config: Option<PathBuf>,
    /// Why Prefect cannot load this configuration: every `prefect` command crashes.
    pub broken: Option<String>,
    /// What prefect-doctor could not read or follow exactly (each also a notice).
    pub problems: Vec<String>,
    /// Any `PREFECT__…` variable was set.
    pub env_used: bool,
    /// The home holds a Prefect 2 `profiles.toml` (Prefect 2 shares `~/.prefect`).
    pub prefect2_profiles: bool,
    /// The first `prefect` executable on `PATH`, as a shell would run it.
    pub cli_on_path: Option<PathBuf>,
    entries: Vec<Flat>,
    index: HashMap<Vec<String>, usize>,
}

impl PrefectConfig {
    /// Where a setting's value came from: who set it, else who set the settings interpolated into
    /// it (`backend` only chooses among them), else `default`.
    fn source_of(&self, i: usize) -> String {
        let mut sources: Vec<String> = Vec::new();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut queue = vec![i];
        while let Some(j) = queue.pop() {
            if !seen.insert(j) || (j != i && self.entries[j].key == ["backend"]) {
                continue;
            }
            match &self.entries[j].own {
                Some(s) => {
                    if !sources.contains(s) {
                        sources.push(s.clone());
                    }
                    if j == i {
                        break;
                    }
                }
                None => queue.extend(self.entries[j].refs.iter().rev()),
            }
        }
        if sources.is_empty() {
            "default".to_string()
        } else {
            sources.join(", ")
        }
    }

    /// A setting by its dotted key, as Prefect has it once loaded.
    pub fn value(&self, dotted_key: &str) -> Option<Value> {
        let key: Vec<String> = dotted_key.split('.').map(str::to_string).collect();
        let &i = self.index.get(&key)?;
        Some(Value {
            value: self.entries[i].value.clone(),
            source: self.source_of(i),
        })
    }

    /// A setting's text; an absent one reads as empty, from `default`.
    pub fn get(&self, dotted_key: &str) -> Setting {
        self.value(dotted_key)
            .map(|v| v.setting())
            .unwrap_or_else(|| Setting {
                value: String::new(),
                source: "default".to_string(),
            })
    }

    /// `prefect backend`: `server` or `cloud`.
    pub fn backend(&self) -> Setting {
        self.get("backend")
    }

    /// The API the CLI's client calls (`cloud.api`), and what `requests` does with it.
    pub fn cli_api(&self) -> CliApi {
        match self.value("cloud.api") {
            Some(v) => CliApi {
                text: v.value.py_str(),
                call: client::call(&v.value),
                source: v.source,
            },
            None => CliApi {
                text: String::new(),
                source: "default".to_string(),
                call: Call::Fails {
                    exception: "AttributeError",
                    message:
                        "the configuration has no [cloud] section (it was replaced by a value)"
                            .to_string(),
                    guess: None,
                },
            },
        }
    }

    /// Whether the CLI's API is a server's: `backend = "server"`, or `cloud.api` set by the user.
    pub fn cli_targets_server(&self) -> bool {
        let key = ["cloud".to_string(), "api".to_string()];
        self.backend().value == "server"
            || self
                .index
                .get(&key[..])
                .is_some_and(|&i| self.entries[i].own.is_some())
    }

    /// `[server] endpoint`: where `prefect server start` serves the API.
    pub fn server_endpoint(&self) -> Setting {
        self.get("server.endpoint")
    }

    /// `[server.ui] endpoint`: where `prefect server start` serves the UI.
    pub fn ui_endpoint(&self) -> Setting {
        self.get("server.ui.endpoint")
    }

    /// `[server.database] connection_url`: the database `prefect server start` runs and connects to.
    pub fn database_url(&self) -> Setting {
        self.get("server.database.connection_url")
    }

    /// Is there any sign of a prefect CLI on this machine: its home, a config file, a `PREFECT__`
    /// variable, or the executable on `PATH`?
    pub fn present(&self) -> bool {
        self.home_exists
            || self.user_config.is_some()
            || self.backend_config.is_some()
            || self.env_used
            || self.cli_on_path.is_some()
    }

    /// Only Prefect 2 has been configured here: `~/.prefect` holds its `profiles.toml` and nothing of
    /// Prefect 1.
    pub fn only_prefect2(&self) -> bool {
        self.prefect2_profiles
            && self.user_config.is_none()
            && self.backend_config.is_none()
            && !self.env_used
    }

    /// What the report's top should say about this configuration, whatever checks were selected.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &self.broken {
            out.push(format!(
                "the local prefect configuration cannot be loaded by Prefect 1.4.1, so every `prefect` \
                 command on this machine fails: {b}"
            ));
        }
        out.extend(
            self.problems
                .iter()
                .map(|p| format!("the local prefect configuration: {p}")),
        );
        out
    }
}

#[cfg(test)]
mod tests;
