//! Prefect's `interpolate_env_vars`: `os.path.expandvars` then `os.path.expanduser`, repeated until
//! nothing changes (at most 10 times; a value that still changes is `None`), with `string_to_type`
//! applied when it took more than one round. Python's POSIX rules: `$NAME` (ASCII letters, digits,
//! `_`) and `${ANYTHING}` are replaced when that variable exists and left as written otherwise;
//! `~` and `~user` only at the very start.

use super::pyvalue::{Py, string_to_type};

/// The process environment as Python's `os.environ` sees it, and the password database.
pub trait PyEnv {
    /// `os.environ[name]` (an empty value is a value).
    fn get(&self, name: &str) -> Option<&str>;
    /// `pwd.getpwnam(user).pw_dir`, or for `None` the current user's.
    fn home_of(&self, user: Option<&str>) -> Option<String>;
}

/// A value may grow while it is expanded (a variable holding `$SELF$SELF`); past this it is refused.
pub const MAX_VALUE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub enum Expanded {
    /// The value after expansion (typed when it took more than one round).
    Value(Py),
    /// Still changing after 10 rounds: Prefect's `None`.
    Unstable,
    /// It grew past [`MAX_VALUE`]; Prefect would carry on, the doctor does not.
    TooLarge,
}

/// `os.path.expandvars`.
pub fn expandvars(path: &str, env: &dyn PyEnv) -> String {
    if !path.contains('$') {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < path.len() {
        if bytes[i] != b'$' {
            let next = path[i + 1..].find('$').map_or(path.len(), |n| i + 1 + n);
            out.push_str(&path[i..next]);
            i = next;
            continue;
        }
        // `$` followed by `\w+` (ASCII) or by `{…}` with no `}` inside.
        let rest = &path[i + 1..];
        let (name, len) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let n = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&rest[..n], n)
        };
        let matched = len > 0 && (rest.starts_with('{') || !name.is_empty());
        match (matched, env.get(name)) {
            (true, Some(value)) => {
                out.push_str(value);
                i += 1 + len;
            }
            (true, None) => {
                out.push_str(&path[i..i + 1 + len]);
                i += 1 + len;
            }
            (false, _) => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

/// `os.path.expanduser`.
pub fn expanduser(path: &str, env: &dyn PyEnv) -> String {
    let Some(rest) = path.strip_prefix('~') else {
        return path.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let home = if end == 0 {
        match env.get("HOME") {
            Some(h) => h.to_string(),
            None => match env.home_of(None) {
                Some(h) => h,
                None => return path.to_string(),
            },
        }
    } else {
        match env.home_of(Some(&rest[..end])) {
            Some(h) => h,
            None => return path.to_string(),
        }
    };
    let joined = format!("{}{}", home.trim_end_matches('/'), &rest[end..]);
    if joined.is_empty() {
        "/".to_string()
    } else {
        joined
    }
}

/// Prefect's `interpolate_env_vars` on a string value (non-strings pass unchanged, as in Prefect).
pub fn interpolate_env_vars(value: &str, env: &dyn PyEnv) -> Expanded {
    if value.is_empty() {
        return Expanded::Value(Py::Str(String::new()));
    }
    let mut current = value.to_string();
    for counter in 0..10 {
        let next = expanduser(&expandvars(&current, env), env);
        if next.len() > MAX_VALUE {
            return Expanded::TooLarge;
        }
        if next == current {
            return Expanded::Value(if counter > 1 {
                string_to_type(&next)
            } else {
                Py::Str(next)
            });
        }
        current = next;
    }
    Expanded::Unstable
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Env(BTreeMap<&'static str, &'static str>);
    impl PyEnv for Env {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
        fn home_of(&self, user: Option<&str>) -> Option<String> {
            match user {
                None => Some("/home/me".into()),
                Some("postgres") => Some("/var/lib/postgresql/".into()),
                Some(_) => None,
            }
        }
    }

    fn env() -> Env {
        Env(BTreeMap::from([
            ("HOME", "/home/me"),
            ("HOST", "db.internal"),
            ("A", "$B"),
            ("B", "4200"),
            ("LOOP", "x$LOOP"),
            ("EMPTY", ""),
        ]))
    }

    #[test]
    fn expandvars_as_posixpath() {
        let e = env();
        assert_eq!(
            expandvars("http://$HOST:4200", &e),
            "http://db.internal:4200"
        );
        assert_eq!(expandvars("${HOST}x", &e), "db.internalx");
        assert_eq!(
            expandvars("$NOPE/${server.host}", &e),
            "$NOPE/${server.host}"
        );
        assert_eq!(expandvars("a$-b$", &e), "a$-b$");
        assert_eq!(expandvars("${unclosed", &e), "${unclosed");
        assert_eq!(expandvars("[$EMPTY]", &e), "[]");
        assert_eq!(expandvars("${}", &e), "${}");
    }

    #[test]
    fn expanduser_as_posixpath() {
        let e = env();
        assert_eq!(expanduser("~/.prefect", &e), "/home/me/.prefect");
        assert_eq!(expanduser("~", &e), "/home/me");
        assert_eq!(expanduser("~postgres/x", &e), "/var/lib/postgresql/x");
        assert_eq!(expanduser("~nobody-here/x", &e), "~nobody-here/x");
        assert_eq!(expanduser("x/~", &e), "x/~");
    }

    #[test]
    fn interpolation_rounds() {
        let e = env();
        // One round: stays a string.
        assert_eq!(
            interpolate_env_vars("$B", &e),
            Expanded::Value(Py::Str("4200".into()))
        );
        // Two rounds: typed.
        assert_eq!(
            interpolate_env_vars("$A", &e),
            Expanded::Value(Py::Int("4200".into()))
        );
        assert_eq!(interpolate_env_vars("$LOOP", &e), Expanded::Unstable);
    }
}
