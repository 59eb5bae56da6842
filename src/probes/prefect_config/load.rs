//! Loading Prefect's configuration as `prefect` 1.4.1 loads it: the defaults, the user file, the
//! `PREFECT__` variables, interpolation of references and environment variables, and types.

use super::*;

/// One setting while the configuration is assembled.
#[derive(Debug, Clone)]
pub(super) struct Flat {
    pub(super) key: Vec<String>,
    pub(super) value: Py,
    /// Who set it (`None`: the defaults).
    pub(super) own: Option<String>,
    /// The settings whose values were interpolated into it.
    pub(super) refs: Vec<usize>,
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
}
