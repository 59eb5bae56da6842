//! What libpq reads: connection strings (URLs and `key=value`) and pgpass files.

use std::{collections::BTreeMap, path::Path};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str};

/// A problem with the connection string or environment. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// libpq parameters that change nothing for a read-only diagnosis and are accepted silently.
pub(super) const IGNORED_PARAMS: &[&str] = &[
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "client_encoding",
    "gssencmode",
    "sslcompression",
    "sslnegotiation",
];

pub(super) const KNOWN_PARAMS: &[&str] = &[
    "service",
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "passfile",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "require_auth",
    "channel_binding",
    "load_balance_hosts",
];

/// Names a key in an error message only when it is (close to) a libpq keyword: anything else may be a
/// fragment of a mangled password.
pub(super) fn describe_key(key: &str) -> String {
    let all = KNOWN_PARAMS.iter().chain(IGNORED_PARAMS);
    if all.clone().any(|k| *k == key) {
        return format!("{key:?}");
    }
    match all
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        Some((_, k)) => format!("{key:?} (did you mean {k:?}?)"),
        None => "(its name is not shown, in case it is part of a password)".to_string(),
    }
}

pub(super) const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Parses a libpq connection string: a `postgres://` / `postgresql://` URL or `key=value` pairs.
pub fn parse_conninfo(s: &str) -> Result<BTreeMap<String, String>, TargetError> {
    let t = s.trim();
    if t.starts_with("postgres://") || t.starts_with("postgresql://") {
        parse_url(t)
    } else if t.contains("://") {
        Err(TargetError(
            "the connection URL must start with postgres:// or postgresql://".to_string(),
        ))
    } else {
        parse_keyvalue(t)
    }
}

pub(super) fn decode(part: &str, what: &str) -> Result<String, TargetError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            TargetError(format!(
                "the {what} in the connection URL is not valid UTF-8"
            ))
        })
}

pub(super) fn parse_url(s: &str) -> Result<BTreeMap<String, String>, TargetError> {
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    let mut params = BTreeMap::new();
    // The password may itself contain '@' when not percent-encoded: split on the last one.
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.insert("user".to_string(), decode(user, "user name")?);
            }
            if let Some(p) = password {
                params.insert("password".to_string(), decode(p, "password")?);
            }
            hostport
        }
        None => authority,
    };
    if !hostport.is_empty() {
        // `a:1,b:2`: libpq's host list, one `host[:port]` per entry.
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in hostport.split(',') {
            let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
                let (h, after) = v6.split_once(']').ok_or_else(|| {
                    TargetError("unterminated [ in the connection URL's host".into())
                })?;
                (h.to_string(), after.strip_prefix(':'))
            } else {
                match entry.rsplit_once(':') {
                    Some((h, p)) => (decode(h, "host")?, Some(p)),
                    None => (decode(entry, "host")?, None),
                }
            };
            hosts.push(host);
            ports.push(port.unwrap_or("").to_string());
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            params.insert("host".to_string(), hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.insert("port".to_string(), ports.join(","));
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        params.insert("dbname".to_string(), decode(db, "database name")?);
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                TargetError("a connection URL query parameter has no '='".to_string())
            })?;
            let key = decode(k, "parameter name")?;
            let value = decode(v, "parameter value")?;
            params.insert(key, value);
        }
    }
    Ok(params)
}

pub(super) fn parse_keyvalue(s: &str) -> Result<BTreeMap<String, String>, TargetError> {
    let mut params = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // Do not echo the word: it may be half of an unquoted password.
            return Err(TargetError(format!(
                "missing \"=\" after word {} of the connection string (expected key=value pairs, values with \
                 spaces in single quotes, or a postgres:// URL)",
                params.len() + 1
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(TargetError(format!(
                    "unterminated quoted value for {} in the connection string",
                    describe_key(&key)
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
    Ok(params)
}

/// A pgpass file's text, read with a cap. Like libpq, a file that others can read is ignored.
pub(super) fn pgpass_read(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    crate::bounded::read_text(path, crate::bounded::MAX_CONFIG_FILE, "pgpass file").ok()
}

/// Looks a password up in a pgpass file's text (`host:port:database:user:password`, `*`
/// wildcards, `\` escapes).
pub(super) fn pgpass_find(
    text: &str,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    let host_key = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let want = [host_key, &port, db, user];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

pub(super) fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = fields.last_mut()
                {
                    last.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

/// The settings of service `name` as libpq finds them: in `PGSERVICEFILE` (else
/// `~/.pg_service.conf`), and only when it is not there, in `PGSYSCONFDIR/pg_service.conf` (else the
/// system's, `/etc/postgresql-common/pg_service.conf` on Debian). Returns them and the file they
/// came from; a service in neither is an error, as libpq's.
pub(super) fn service_params(
    name: &str,
    env: &dyn super::pg_env::Env,
) -> Result<(BTreeMap<String, String>, String), TargetError> {
    let user_file = env
        .var("PGSERVICEFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            env.var("HOME")
                .map(|h| std::path::Path::new(&h).join(".pg_service.conf"))
        });
    let system_file = std::path::Path::new(
        &env.var("PGSYSCONFDIR")
            .unwrap_or_else(|| "/etc/postgresql-common".to_string()),
    )
    .join("pg_service.conf");
    for file in user_file.into_iter().chain([system_file]) {
        let text =
            match crate::bounded::read_text(&file, crate::bounded::MAX_CONFIG_FILE, "service file")
            {
                Ok(t) => t,
                Err(crate::bounded::ReadError::Io { .. }) if !file.exists() => continue,
                Err(e) => return Err(TargetError(e.to_string())),
            };
        if let Some(found) = service_in(&text, name, &file)? {
            return Ok((found, file.display().to_string()));
        }
    }
    Err(TargetError(format!(
        "definition of service {:?} not found (PGSERVICEFILE, ~/.pg_service.conf, then the system's pg_service.conf)",
        crate::untrusted::line(name, 100)
    )))
}

/// Service `name`'s `key=value` lines in a service file's text, if it has that section.
fn service_in(
    text: &str,
    name: &str,
    file: &std::path::Path,
) -> Result<Option<BTreeMap<String, String>>, TargetError> {
    let mut found: Option<BTreeMap<String, String>> = None;
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            inside = section == name;
            if inside {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(TargetError(format!(
                "syntax error in service file {}, line {}",
                file.display(),
                i + 1
            )));
        };
        let key = key.trim().to_string();
        if key == "service" {
            return Err(TargetError(format!(
                "nested service specifications not supported in service file {}, line {}",
                file.display(),
                i + 1
            )));
        }
        if let Some(m) = found.as_mut() {
            m.entry(key).or_insert_with(|| value.trim().to_string());
        }
    }
    Ok(found)
}
