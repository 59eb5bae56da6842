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

/// One setting while the configuration is assembled.
#[derive(Debug, Clone)]
struct Flat {
    key: Vec<String>,
    value: Py,
    /// Who set it (`None`: the defaults).
    own: Option<String>,
    /// The settings whose values were interpolated into it.
    refs: Vec<usize>,
}

/// The environment as Python sees it.
struct View<'a> {
    vars: HashMap<&'a str, &'a str>,
    env: &'a dyn Env,
}

impl PyEnv for View<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).copied()
    }
    fn home_of(&self, user: Option<&str>) -> Option<String> {
        self.env.home_of(user)
    }
}

fn dotted(key: &[String]) -> String {
    key.join(".")
}

/// A short, home-relative form of `path` for messages.
fn pretty(path: &Path, home: Option<&str>) -> String {
    let s = path.display().to_string();
    match home {
        Some(h) if !h.is_empty() && s.starts_with(h) => format!("~{}", &s[h.len()..]),
        _ => s,
    }
}

fn section_of(key: &[String]) -> String {
    match key.split_last() {
        Some((leaf, table)) if !table.is_empty() => format!("[{}] {leaf}", table.join(".")),
        _ => dotted(key),
    }
}

/// Registers a value as a secret where its key names one, and the password of any URL in it.
fn register_secrets(key: &[String], v: &Py) {
    let text = v.py_str();
    crate::redact::register_url_credentials(&text);
    // Only text is a secret: a secret-named switch (`use_local_secrets = true`) is not, and
    // registering "True" would mask every "True" the run meets (a pod's Ready condition).
    if crate::redact::is_secret_key(&dotted(key)) && matches!(v, Py::Str(_)) && !text.is_empty() {
        crate::redact::register(&text);
    }
    if let Py::List(items) | Py::Tuple(items) = v {
        for item in items {
            crate::redact::register_url_credentials(&item.py_str());
        }
    }
}

/// Prefect's `merge_dicts` on flat documents: a table merges key by key, anything else replaces.
/// New keys go after the last key of their table, as a Python dict appends them.
fn merge(
    into: &mut Vec<(Vec<String>, Entry, Option<String>)>,
    key: Vec<String>,
    e: Entry,
    src: &str,
) {
    let is_under = |k: &[String], p: &[String]| k.len() > p.len() && k.starts_with(p);
    // A scalar at a prefix of `key` is replaced by a table.
    into.retain(|(k, entry, _)| {
        !(key.starts_with(k) && k.len() < key.len() && matches!(entry, Entry::Value(_)))
    });
    match e {
        Entry::Value(_) => {
            // A table at `key` is replaced by this scalar.
            into.retain(|(k, _, _)| !is_under(k, &key));
        }
        Entry::EmptyTable => {
            // An empty table merges into a table; it replaces a scalar.
            if into.iter().any(|(k, _, _)| is_under(k, &key)) {
                return;
            }
        }
    }
    if let Some(slot) = into.iter_mut().find(|(k, _, _)| *k == key) {
        slot.1 = e;
        slot.2 = Some(src.to_string());
        return;
    }
    // After the last entry of the deepest existing ancestor table.
    let at = (0..key.len())
        .rev()
        .find_map(|n| {
            into.iter()
                .rposition(|(k, _, _)| k.len() > n && k[..n] == key[..n] && n > 0)
        })
        .map_or(into.len(), |i| i + 1);
    into.insert(at, (key, e, Some(src.to_string())));
}

/// Prefect's `${section.key}` pattern (`\${(.[^${}]*)}`): the first match in `s`, as (start, end,
/// inner key).
fn find_reference(s: &str) -> Option<(usize, usize, &str)> {
    let mut from = 0;
    while let Some(off) = s[from..].find("${") {
        let start = from + off;
        let inner_start = start + 2;
        let mut chars = s[inner_start..].char_indices();
        // One character of any kind but a newline, then none of `$`, `{`, `}` up to a `}`.
        if let Some((_, first)) = chars.next()
            && first != '\n'
        {
            for (i, c) in chars {
                match c {
                    '}' => {
                        let end = inner_start + i + 1;
                        return Some((start, end, &s[inner_start..inner_start + i]));
                    }
                    '$' | '{' => break,
                    _ => {}
                }
            }
        }
        from = start + 1;
    }
    None
}

/// Most `PATH` entries looked at for the `prefect` executable.
const MAX_PATH_ENTRIES: usize = 256;

/// The first executable file named `prefect` in a `PATH` value (no recursion, bounded entries).
fn find_prefect(path: &str) -> Option<PathBuf> {
    #[cfg(unix)]
    fn runnable(m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    fn runnable(m: &std::fs::Metadata) -> bool {
        m.is_file()
    }
    path.split(':')
        .take(MAX_PATH_ENTRIES)
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join("prefect"))
        .find(|p| std::fs::metadata(p).map(|m| runnable(&m)).unwrap_or(false))
}

impl PrefectConfig {
    pub fn load(env: &dyn Env) -> PrefectConfig {
        let vars = env.vars();
        let view = View {
            vars: vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            env,
        };
        let home = view.get("HOME").map(str::to_string);
        let mut problems: Vec<String> = Vec::new();
        let mut broken: Option<String> = None;

        let mut doc: Vec<(Vec<String>, Entry, Option<String>)> = tomlread::read(DEFAULTS)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, e)| (k, e, None))
            .collect();

        // The two files, found as Prefect finds them.
        let path_of = |var: &str, default: &str, problems: &mut Vec<String>| -> PathBuf {
            let raw = view.get(var).unwrap_or(default);
            match interpolate_env_vars(raw, &view) {
                Expanded::Value(v) => PathBuf::from(v.py_str()),
                Expanded::Unstable => PathBuf::from("None"),
                Expanded::TooLarge => {
                    problems.push(format!("{var} expands to more than 1 MiB; not read"));
                    PathBuf::new()
                }
            }
        };
        let user_path = path_of(
            "PREFECT__USER_CONFIG_PATH",
            "~/.prefect/config.toml",
            &mut problems,
        );
        let backend_path = path_of(
            "PREFECT__BACKEND_CONFIG_PATH",
            "~/.prefect/backend.toml",
            &mut problems,
        );
        let mut exists = [false, false];
        for (n, path) in [&user_path, &backend_path].into_iter().enumerate() {
            if path.as_os_str().is_empty() || !path.is_file() {
                continue;
            }
            exists[n] = true;
            let shown = pretty(path, home.as_deref());
            let text = match crate::bounded::read_text(
                path,
                crate::bounded::MAX_CONFIG_FILE,
                "prefect config file",
            ) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(e.to_string().replace(&path.display().to_string(), &shown));
                    continue;
                }
            };
            match tomlread::read(&text) {
                Ok(flat) => {
                    for (key, e) in flat {
                        if let Entry::Value(v) = &e {
                            register_secrets(&key, v);
                        }
                        let src = format!("{shown} {}", section_of(&key));
                        merge(&mut doc, key, e, &src);
                    }
                }
                Err(Unreadable::Invalid(m)) => {
                    broken.get_or_insert(format!("{shown} is not valid TOML: {m}"));
                }
                Err(Unreadable::Prefect(m)) => {
                    broken.get_or_insert(format!(
                        "{shown} is TOML that Prefect's parser (toml 0.10) refuses: {m}"
                    ));
                }
            }
        }

        let mut entries: Vec<Flat> = doc
            .into_iter()
            .filter_map(|(key, e, own)| match e {
                Entry::Value(value) => Some(Flat {
                    key,
                    value,
                    own,
                    refs: Vec::new(),
                }),
                Entry::EmptyTable => None,
            })
            .collect();
        let mut index: HashMap<Vec<String>, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();

        // PREFECT__SECTION__KEY variables, in the environment's order.
        let mut env_used = false;
        for (name, raw) in &vars {
            let Some(option) = name.strip_prefix("PREFECT__") else {
                continue;
            };
            env_used = true;
            crate::redact::register_url_credentials(raw);
            let key: Vec<String> = if option.to_uppercase().starts_with("CONTEXT__SECRETS") {
                option
                    .replace("CONTEXT__SECRETS", "context__secrets")
                    .split("__")
                    .map(str::to_string)
                    .collect()
            } else {
                option
                    .to_lowercase()
                    .split("__")
                    .map(str::to_string)
                    .collect()
            };
            if crate::redact::is_secret_key(&dotted(&key)) && !raw.is_empty() {
                crate::redact::register(raw);
            }
            let value = match interpolate_env_vars(raw, &view) {
                Expanded::Value(Py::Str(s)) => string_to_type(&s),
                Expanded::Value(typed) => {
                    broken.get_or_insert(format!(
                        "{name} expands to the {} {} in more than one round, and Prefect then fails \
                         ('{}' object has no attribute 'upper')",
                        typed.type_name(),
                        typed.py_repr(),
                        typed.type_name()
                    ));
                    continue;
                }
                Expanded::Unstable => {
                    broken.get_or_insert(format!(
                        "{name} still changes after 10 rounds of $VARIABLE expansion, and Prefect then \
                         fails ('NoneType' object has no attribute 'upper')"
                    ));
                    continue;
                }
                Expanded::TooLarge => {
                    problems.push(format!("{name} expands to more than 1 MiB; ignored"));
                    continue;
                }
            };
            register_secrets(&key, &value);
            match index.get(&key) {
                Some(&i) => {
                    entries[i].value = value;
                    entries[i].own = Some(name.clone());
                }
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push(Flat {
                        key,
                        value,
                        own: Some(name.clone()),
                        refs: Vec::new(),
                    });
                }
            }
        }

        // $VARIABLES and ~ in every value, then string_to_type.
        for f in &mut entries {
            let Py::Str(s) = &f.value else { continue };
            f.value = match interpolate_env_vars(s, &view) {
                Expanded::Value(Py::Str(t)) => string_to_type(&t),
                Expanded::Value(typed) => typed,
                Expanded::Unstable => Py::None,
                Expanded::TooLarge => {
                    problems.push(format!(
                        "{} expands to more than 1 MiB; read as written",
                        dotted(&f.key)
                    ));
                    continue;
                }
            };
        }

        // ${section.key} references: at most 10 rounds, one reference per key per round.
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        let mut outside_model: HashSet<String> = HashSet::new();
        for _ in 0..10 {
            let mut still = Vec::with_capacity(pending.len());
            for &i in &pending {
                let Py::Str(s) = &entries[i].value else {
                    continue;
                };
                let Some((start, end, inner)) = find_reference(s) else {
                    continue;
                };
                let ref_key: Vec<String> = inner.split('.').map(str::to_string).collect();
                let whole = start == 0 && end == s.len();
                let target = index.get(&ref_key).copied();
                if target.is_none() && !MODELLED.contains(&ref_key[0].as_str()) {
                    outside_model.insert(inner.to_string());
                }
                let ref_value = target.map_or(Py::Str(String::new()), |t| entries[t].value.clone());
                let new = if whole {
                    ref_value
                } else {
                    let text = format!("{}{}{}", &s[..start], ref_value.py_str(), &s[end..]);
                    if text.len() > expand::MAX_VALUE {
                        problems.push(format!(
                            "{} grows past 1 MiB as its ${{…}} references are resolved; left unresolved",
                            dotted(&entries[i].key)
                        ));
                        continue;
                    }
                    Py::Str(text)
                };
                entries[i].value = new;
                if let Some(t) = target
                    && !entries[i].refs.contains(&t)
                {
                    entries[i].refs.push(t);
                }
                still.push(i);
            }
            pending = still;
        }
        let mut outside: Vec<String> = outside_model.into_iter().collect();
        outside.sort();
        for key in outside {
            problems.push(format!(
                "a setting refers to ${{{key}}}, a key prefect-doctor does not model; read as empty \
                 (Prefect may know it)"
            ));
        }

        // flatdict_to_dict: a scalar where a section is needed makes Prefect fail; a scalar after a
        // section replaces it.
        let mut leaves: HashMap<&[String], usize> = HashMap::new();
        let mut under: HashMap<&[String], Vec<usize>> = HashMap::new();
        let mut shadowed: Vec<usize> = Vec::new();
        for (i, f) in entries.iter().enumerate() {
            for n in 1..f.key.len() {
                if let Some(&j) = leaves.get(&f.key[..n]) {
                    broken.get_or_insert(format!(
                        "{} ({}) is a value, but {} ({}) needs it to be a section: Prefect fails \
                         ('{}' object does not support item assignment)",
                        dotted(&entries[j].key),
                        entries[j].own.as_deref().unwrap_or("default"),
                        dotted(&f.key),
                        f.own.as_deref().unwrap_or("default"),
                        entries[j].value.type_name(),
                    ));
                }
                under.entry(&f.key[..n]).or_default().push(i);
            }
            if let Some(below) = under.remove(&f.key[..]) {
                shadowed.extend(below);
            }
            leaves.insert(&f.key, i);
        }
        for j in shadowed {
            index.remove(&entries[j].key);
        }
        // validate_config: no key may shadow the config object's attributes.
        if let Some((f, part)) = entries
            .iter()
            .filter(|f| index.contains_key(&f.key))
            .find_map(|f| {
                f.key
                    .iter()
                    .find(|p| CONFIG_ATTRIBUTES.contains(&p.as_str()))
                    .map(|p| (f, p))
            })
        {
            broken.get_or_insert(format!(
                "Prefect refuses the key {} ({}): ValueError: Invalid config key: \"{part}\"",
                dotted(&f.key),
                f.own.as_deref().unwrap_or("default")
            ));
        }
        // process_task_defaults needs [tasks] and [tasks.defaults] to be tables.
        for key in [&["tasks"][..], &["tasks", "defaults"][..]] {
            let key: Vec<String> = key.iter().map(|s| s.to_string()).collect();
            if let Some(&i) = index.get(&key) {
                broken.get_or_insert(format!(
                    "{} ({}) is a value, not a section: Prefect fails ('{}' object has no attribute \
                     'setdefault')",
                    dotted(&key),
                    entries[i].own.as_deref().unwrap_or("default"),
                    entries[i].value.type_name()
                ));
            }
        }
        for f in &entries {
            register_secrets(&f.key, &f.value);
        }

        let home_dir = index
            .get(&["home_dir".to_string()][..])
            .map(|&i| PathBuf::from(entries[i].value.py_str()))
            .unwrap_or_else(|| PathBuf::from("~/.prefect"));
        PrefectConfig {
            home_exists: home_dir.is_dir(),
            prefect2_profiles: home_dir.join("profiles.toml").is_file(),
            home_dir,
            user_config: exists[0].then_some(user_path),
            backend_config: exists[1].then_some(backend_path),
            broken,
            problems,
            env_used,
            cli_on_path: view.get("PATH").and_then(find_prefect),
            entries,
            index,
        }
    }

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
