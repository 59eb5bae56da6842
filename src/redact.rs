//! Secret scrubbing. Every secret the program learns (passwords from URLs, the environment, pgpass
//! files, Kubernetes secrets) is registered here, and every byte of output — reports, errors, panic
//! messages — passes through [`scrub`] before it is written.

use std::sync::RwLock;

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

/// Registers a secret value (and its percent-encoded form) for scrubbing.
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_SCRUB_LEN {
        return;
    }
    let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let mut list = match SECRETS.write() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    for s in [secret.to_string(), encoded] {
        if !list.contains(&s) {
            list.push(s);
        }
    }
    // Longest first, so a secret containing another is masked whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Replaces every registered secret in `text` with `****`.
pub fn scrub(text: &str) -> String {
    let list = match SECRETS.read() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    let public = match PUBLIC.read() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = text.to_string();
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
            scrub(&payload)
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
    fn a_secret_equal_to_a_public_name_is_left() {
        register("zq-public-name-zq");
        public("zq-public-name-zq");
        assert_eq!(scrub("user zq-public-name-zq"), "user zq-public-name-zq");
    }
}
