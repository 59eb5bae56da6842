//! Secret scrubbing. Every secret the program learns (passwords from URLs, the environment, pgpass
//! files, Kubernetes secrets) is registered here, and every byte of output — reports, errors, panic
//! messages — passes through [`scrub`] before it is written.

use std::sync::RwLock;

pub mod snippet;
pub mod yaml;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());
/// Names the report is made of (the database user, the release …). A secret equal to one of them (the
/// chart's default password is `prefect`, its user name) cannot be masked without masking every
/// mention of the name, and showing the name reveals nothing the report does not already say.
static PUBLIC: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Declares a name that appears in reports as itself; see [`PUBLIC`].
pub fn public(name: &str) {
    let mut list = match PUBLIC.write() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

/// Secrets shorter than this are not scrubbed from free text: replacing every "a" would destroy the
/// report. Such secrets are still never formatted into output by the code.
pub const MIN_SCRUB_LEN: usize = 3;

pub const MASK: &str = "****";

/// A longer "secret" is not a password but data (a whole Secret's file); it is not matched in text.
pub const MAX_SECRET_LEN: usize = 16 * 1024;
/// Secrets kept at the most; a source that yields more (a hostile Secret list) is not remembered
/// past this, so scrubbing stays fast.
pub const MAX_SECRETS: usize = 10_000;

/// Registers a secret value (and its percent-encoded and escaped forms) for scrubbing. Every source
/// calls this the moment it sees a secret: flags, the environment, pgpass, kubeconfig credentials,
/// Kubernetes Secrets, values files, and any URL's userinfo that passes through [`scrub`].
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_SCRUB_LEN || secret.len() > MAX_SECRET_LEN {
        return;
    }
    let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let escaped = crate::untrusted::escape(secret);
    let mut list = match SECRETS.write() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    if list.len() >= MAX_SECRETS {
        return;
    }
    for s in [secret.to_string(), encoded, escaped] {
        if !list.contains(&s) {
            list.push(s);
        }
    }
    // Longest first, so a secret containing another is masked whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the password of every `scheme://user:password@host` in `text` (as written and
/// percent-decoded), so that the same password is masked wherever else it appears.
pub fn register_url_credentials(text: &str) {
    for (start, end) in url_passwords(text) {
        let raw = &text[start..end];
        register(raw);
        if let Ok(decoded) = percent_encoding::percent_decode_str(raw).decode_utf8() {
            register(&decoded);
        }
    }
}

/// The byte ranges of the passwords in every `scheme://user:password@` of `text`.
fn url_passwords(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("://").map(|i| i + from + 3) {
        from = i;
        let rest = &text[i..];
        // The authority ends at a path, query, fragment, space or quote.
        let end = rest
            .find(|c: char| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`')
            })
            .unwrap_or(rest.len());
        let Some(at) = rest[..end].rfind('@') else {
            continue;
        };
        let Some(colon) = rest[..at].find(':') else {
            continue;
        };
        // `<password>` in a hint is a placeholder, not a secret.
        if colon + 1 < at && !is_placeholder_at(rest, colon + 1, at) {
            out.push((i + colon + 1, i + at));
        }
    }
    out
}

/// Masks credentials that have a recognisable shape, whether or not they were registered: the
/// password of `scheme://user:password@`, `Bearer …`/`Basic …` authorization values, and the value
/// of `password=…`-style pairs and JSON `"password": "…"` members.
pub fn mask_shapes(text: &str) -> String {
    let mut ranges = url_passwords(text);
    ranges.extend(auth_values(text));
    ranges.extend(pair_values(text));
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (s, e) in ranges {
        if s < last {
            continue;
        }
        out.push_str(&text[last..s]);
        out.push_str(MASK);
        last = e;
    }
    out.push_str(&text[last..]);
    out
}

/// Does a key (the last part of `a.b.key`, any case, `-`/`_` ignored) name a secret value? Keys that
/// name where a secret is kept (`existingSecret`, `passwordKey`, `secretName`) do not.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .rsplit(['.', '/'])
        .next()
        .unwrap_or(key)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let names_secret = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "privatekey",
    ]
    .iter()
    .any(|w| k.contains(w));
    let names_place = k.starts_with("existing")
        || [
            "key", "keys", "name", "ref", "file", "path", "source", "sources",
        ]
        .iter()
        .any(|s| k.ends_with(s) && !k.ends_with("privatekey") && !k.ends_with("apikey"));
    names_secret && !names_place
}

const TOKEN_CHARS: &str = "-._~+/=";

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || TOKEN_CHARS.contains(c)
}

/// `Bearer <token>` and `Basic <credentials>` values.
fn auth_values(text: &str) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for scheme in ["bearer ", "basic "] {
        let mut from = 0;
        while let Some(p) = lower[from..].find(scheme).map(|p| p + from) {
            let start = p + scheme.len();
            from = start;
            let len = text[start..]
                .find(|c: char| !is_token_char(c))
                .unwrap_or(text.len() - start);
            if len >= 8 && &text[start..start + len] != MASK {
                out.push((start, start + len));
            }
        }
    }
    out
}

/// Is the text at the start of a value a placeholder or a reference rather than a secret
/// (`<PASSWORD>`, `$PGPASSWORD`, `$(kubectl get secret …)`, `{password}`, an already masked `****`)?
/// [`is_placeholder`] for the value at `start..end` of `text`: a `<…>` placeholder may hold spaces
/// (`<the password of prefect>`), so its closing `>` is looked for on the rest of the line.
fn is_placeholder_at(text: &str, start: usize, end: usize) -> bool {
    let v = &text[start..end];
    if v.trim_start_matches(['"', '\'']).starts_with('<') {
        return text[start..].lines().next().unwrap_or("").contains('>');
    }
    is_placeholder(v)
}

fn is_placeholder(v: &str) -> bool {
    let v = v.trim_matches(['"', '\'']);
    let env_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    (v.starts_with('<') && v.contains('>'))
        || v.starts_with("$(")
        || v.starts_with("${")
        || v.strip_prefix('$').is_some_and(env_name)
        || (v.starts_with('{') && v.ends_with('}'))
        || v == MASK
}

/// The values of `key=value` pairs and JSON `"key": "value"` members whose key names a secret.
fn pair_values(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
            continue;
        }
        // A word: [A-Za-z0-9_.-]+
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
        {
            i += 1;
        }
        let key = &text[start..i];
        if !is_secret_key(key) {
            continue;
        }
        let quoted_key = start > 0 && bytes[start - 1] == b'"' && bytes.get(i) == Some(&b'"');
        let mut j = i;
        if quoted_key {
            // "key": "value"
            j += 1;
            while bytes.get(j) == Some(&b' ') {
                j += 1;
            }
            if bytes.get(j) != Some(&b':') {
                continue;
            }
            j += 1;
            while bytes.get(j) == Some(&b' ') {
                j += 1;
            }
            if bytes.get(j) != Some(&b'"') {
                continue;
            }
            let vs = j + 1;
            let mut k = vs;
            while k < bytes.len() && bytes[k] != b'"' {
                k += if bytes[k] == b'\\' { 2 } else { 1 };
            }
            let ve = k.min(bytes.len());
            if ve > vs && !is_placeholder_at(text, vs, ve) {
                out.push((vs, ve));
            }
            i = ve;
        } else if bytes.get(j) == Some(&b'=') {
            j += 1;
            let quote = matches!(bytes.get(j), Some(b'"') | Some(b'\''));
            let vs = if quote { j + 1 } else { j };
            let ve = text[vs..]
                .find(|c: char| {
                    if quote {
                        c == '"' || c == '\''
                    } else {
                        c.is_whitespace()
                            || matches!(c, ',' | '&' | ';' | '"' | '\'' | '`' | ')' | '}' | ']')
                    }
                })
                .map(|e| e + vs)
                .unwrap_or(text.len());
            if ve > vs && !is_placeholder_at(text, vs, ve) {
                out.push((vs, ve));
            }
            i = ve;
        }
    }
    out
}

/// Masks the values of assignments whose key names a secret in a `--set` expression
/// (`key=value,key=value`), then every other credential shape and registered secret ([`scrub`]):
/// for error messages that show what the user wrote. Masked before any cut.
pub fn mask_assignments(text: &str) -> String {
    scrub(&mask_set_values(text))
}

fn mask_set_values(text: &str) -> String {
    // --set: split on unescaped commas.
    let mut out = String::with_capacity(text.len());
    let mut part = String::new();
    let mut escaped = false;
    let flush = |part: &mut String, out: &mut String| {
        match part.split_once('=') {
            Some((k, _)) if is_secret_key(k) => {
                out.push_str(k);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(part),
        }
        part.clear();
    };
    for c in text.chars() {
        if escaped {
            part.push(c);
            escaped = false;
        } else if c == '\\' {
            part.push(c);
            escaped = true;
        } else if c == ',' {
            flush(&mut part, &mut out);
            out.push(',');
        } else {
            part.push(c);
        }
    }
    flush(&mut part, &mut out);
    out
}

/// Makes `text` fit to show: the passwords of URLs in it are registered (so that their other
/// forms are masked too), credential shapes are masked ([`mask_shapes`]), and every registered secret
/// is replaced with `****`.
pub fn scrub(text: &str) -> String {
    register_url_credentials(text);
    let text = mask_shapes(text);
    let list = match SECRETS.read() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    let public = match PUBLIC.read() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = text;
    for s in list.iter() {
        if public.contains(s) {
            continue;
        }
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// A message for the user's terminal (stderr): secrets scrubbed and control characters escaped.
pub fn for_terminal(text: &str) -> String {
    crate::untrusted::escape_multiline(&scrub(text))
}

/// Installs a panic hook that scrubs the panic message before printing it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "prefect-doctor: internal error{location}: {}",
            for_terminal(&payload)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_plain_and_encoded() {
        register("s3cr:t@pw");
        let s = scrub("url postgres://u:s3cr%3At%40pw@h and s3cr:t@pw");
        assert!(!s.contains("s3cr"), "{s}");
        assert_eq!(s.matches(MASK).count(), 2);
    }

    #[test]
    fn credential_shapes_are_masked_and_learned() {
        let s = scrub("see http://u:zq-url-pw@h/x and Authorization: Bearer abcdefgh12345678 ok");
        assert_eq!(s, "see http://u:****@h/x and Authorization: Bearer **** ok");
        // Learned: the same password elsewhere is masked too.
        assert_eq!(scrub("pw zq-url-pw here"), "pw **** here");
        assert_eq!(
            mask_shapes(r#"host=h password=zzz1 {"db_password": "q\"x"} pwd='a b'"#),
            r#"host=h password=**** {"db_password": "****"} pwd='****'"#
        );
        assert_eq!(
            mask_shapes("bad password: the server rejected"),
            "bad password: the server rejected"
        );
        assert_eq!(
            mask_shapes("postgres://prefect@h/db"),
            "postgres://prefect@h/db"
        );
        for placeholder in [
            "pass --database-url postgres://prefect:<password>@db:5432/prefect",
            "--from-literal='postgres-password=<the password of prefect>' | kubectl apply",
            "--set a.password=<PASSWORD>",
            "PGPASSWORD=$PGPASSWORD",
            "password=\"$(kubectl get)\"",
        ] {
            assert_eq!(mask_shapes(placeholder), placeholder);
        }
        // A real password that merely starts like a placeholder is still masked.
        assert_eq!(
            mask_shapes("http://u:$ecret-1@h/ password=*star"),
            "http://u:****@h/ password=****"
        );
    }

    #[test]
    fn assignments_of_secret_keys_are_masked() {
        assert_eq!(
            mask_assignments(r"a.b=1,postgresql.auth.password=p\,w,x[0]=2"),
            "a.b=1,postgresql.auth.password=****,x[0]=2"
        );
        assert_eq!(
            mask_assignments("a.url=postgres://u:zq-set-pw@h/db,b.existingSecret=my-secret"),
            "a.url=postgres://u:****@h/db,b.existingSecret=my-secret"
        );
        assert!(!is_secret_key("passwordKey"));
        assert!(is_secret_key("postgresql.auth.password"));
    }

    #[test]
    fn a_secret_equal_to_a_public_name_is_left() {
        register("zq-public-name-zq");
        public("zq-public-name-zq");
        assert_eq!(scrub("user zq-public-name-zq"), "user zq-public-name-zq");
    }
}
