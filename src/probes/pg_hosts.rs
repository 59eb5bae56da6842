//! libpq's host lists: `host=a,b port=1,2` (or `postgres://a:1,b:2/db`) tried in order, shuffled by
//! `load_balance_hosts=random`, each kept only when its server is what `target_session_attrs` asks.

use super::conninfo::TargetError;

/// The most hosts one target may list.
pub const MAX_HOSTS: usize = 32;

/// One host of a list: its name (what TLS verifies and the password file matches), the address
/// the connection is opened to when `hostaddr` gives one, and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub host: String,
    pub addr: Option<String>,
    pub port: u16,
}

/// Pairs the `host`, `hostaddr` and `port` lists as libpq does: `hostaddr` (when given) sets how
/// many hosts there are and where each connects; `host` must then list as many; one port serves
/// every host, else there is one per host. An empty entry takes the default.
pub fn host_list(
    host: Option<&str>,
    hostaddr: Option<&str>,
    port: Option<&str>,
) -> Result<Vec<HostEntry>, TargetError> {
    let split = |s: Option<&str>| -> Vec<String> {
        s.map(|s| s.split(',').map(|e| e.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let (hosts, addrs, ports) = (split(host), split(hostaddr), split(port));
    let n = if addrs.is_empty() {
        hosts.len().max(1)
    } else {
        if !hosts.is_empty() && hosts.len() != addrs.len() {
            return Err(TargetError(format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                addrs.len()
            )));
        }
        addrs.len()
    };
    if n > MAX_HOSTS {
        return Err(TargetError(format!(
            "{n} hosts in one target; at most {MAX_HOSTS} are tried"
        )));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(TargetError(format!(
            "could not match {} port numbers to {n} hosts",
            ports.len()
        )));
    }
    (0..n)
        .map(|i| {
            let pick = |list: &[String]| list.get(i).filter(|s| !s.is_empty()).cloned();
            let addr = pick(&addrs);
            let host = pick(&hosts)
                .or_else(|| addr.clone())
                .unwrap_or_else(|| "localhost".to_string());
            let port = match ports.get(i).or(ports.first()).filter(|p| !p.is_empty()) {
                None => 5432,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    TargetError(format!("invalid port {:?}", crate::untrusted::cap(p, 40)))
                })?,
            };
            Ok(HostEntry { host, addr, port })
        })
        .collect()
}

/// `load_balance_hosts`: `random` tries the hosts in a random order, `disable` (the default) in
/// the order given.
pub fn load_balance(value: Option<&str>, hosts: &mut [HostEntry]) -> Result<(), TargetError> {
    match value {
        None | Some("disable") => Ok(()),
        Some("random") => {
            // A random order from the standard library's randomly keyed hasher (no generator
            // needed for a handful of hosts).
            use std::hash::{BuildHasher, RandomState};
            let keys = RandomState::new();
            let mut keyed: Vec<(u64, HostEntry)> = hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (keys.hash_one(i), h.clone()))
                .collect();
            keyed.sort_by_key(|(k, _)| *k);
            for (slot, (_, h)) in hosts.iter_mut().zip(keyed) {
                *slot = h;
            }
            Ok(())
        }
        Some(other) => Err(TargetError(format!(
            "invalid load_balance_hosts value: {:?}",
            crate::untrusted::cap(other, 40)
        ))),
    }
}

/// `target_session_attrs`: which server a host must be for its session to be kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionAttrs {
    #[default]
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    PreferStandby,
}

impl SessionAttrs {
    pub fn parse(value: &str) -> Result<SessionAttrs, TargetError> {
        Ok(match value {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "read-only" => SessionAttrs::ReadOnly,
            "primary" => SessionAttrs::Primary,
            "standby" => SessionAttrs::Standby,
            "prefer-standby" => SessionAttrs::PreferStandby,
            other => {
                return Err(TargetError(format!(
                    "invalid target_session_attrs value: {:?}",
                    crate::untrusted::cap(other, 40)
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
            SessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether a session on a server that is (or is not) read-only and in hot standby is kept; if
    /// not, why, in libpq's words. `prefer-standby` keeps only a standby on its first pass over the
    /// hosts (the connection then makes a second pass that keeps any).
    pub fn refuses(self, read_only: bool, standby: bool) -> Option<&'static str> {
        match self {
            SessionAttrs::Any => None,
            SessionAttrs::ReadWrite => read_only.then_some("session is read-only"),
            SessionAttrs::ReadOnly => (!read_only).then_some("session is not read-only"),
            SessionAttrs::Primary => standby.then_some("server is in hot standby mode"),
            SessionAttrs::Standby | SessionAttrs::PreferStandby => {
                (!standby).then_some("server is not in hot standby mode")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[HostEntry]) -> Vec<(String, u16)> {
        list.iter().map(|h| (h.host.clone(), h.port)).collect()
    }

    #[test]
    fn lists_pair_as_libpq_pairs_them() {
        let l = host_list(Some("a,b"), None, Some("1,2")).unwrap();
        assert_eq!(hosts(&l), [("a".into(), 1), ("b".into(), 2)]);
        let l = host_list(Some("a,b"), None, Some("7")).unwrap();
        assert_eq!(hosts(&l), [("a".into(), 7), ("b".into(), 7)]);
        let l = host_list(Some("a,"), None, Some(",9")).unwrap();
        assert_eq!(hosts(&l), [("a".into(), 5432), ("localhost".into(), 9)]);
        let l = host_list(Some("a,b"), Some("10.0.0.1,"), None).unwrap();
        assert_eq!(hosts(&l), [("a".into(), 5432), ("b".into(), 5432)]);
        assert_eq!(l[0].addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(l[1].addr, None);
        let l = host_list(None, Some("10.0.0.2"), None).unwrap();
        assert_eq!(hosts(&l), [("10.0.0.2".into(), 5432)]);
        let e = host_list(Some("a,b,c"), None, Some("1,2")).unwrap_err();
        assert_eq!(e.0, "could not match 2 port numbers to 3 hosts");
        let e = host_list(Some("a"), Some("1.1.1.1,2.2.2.2"), None).unwrap_err();
        assert_eq!(e.0, "could not match 1 host names to 2 hostaddr values");
        assert!(host_list(Some("a"), None, Some("0")).is_err());
        let many = vec!["h"; MAX_HOSTS + 1].join(",");
        assert!(host_list(Some(&many), None, None).is_err());
    }

    #[test]
    fn random_order_keeps_every_host() {
        let mut l = host_list(Some("a,b,c,d,e"), None, None).unwrap();
        load_balance(Some("random"), &mut l).unwrap();
        let mut names: Vec<String> = l.iter().map(|h| h.host.clone()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        assert!(load_balance(Some("sometimes"), &mut l).is_err());
    }

    #[test]
    fn session_attrs_refuse_as_libpq_does() {
        assert_eq!(
            SessionAttrs::parse("read-write").unwrap(),
            SessionAttrs::ReadWrite
        );
        assert!(SessionAttrs::parse("master").is_err());
        assert_eq!(
            SessionAttrs::ReadWrite.refuses(true, false),
            Some("session is read-only")
        );
        assert_eq!(SessionAttrs::ReadWrite.refuses(false, false), None);
        assert_eq!(
            SessionAttrs::ReadOnly.refuses(false, false),
            Some("session is not read-only")
        );
        assert_eq!(
            SessionAttrs::Primary.refuses(true, true),
            Some("server is in hot standby mode")
        );
        assert_eq!(
            SessionAttrs::Standby.refuses(false, false),
            Some("server is not in hot standby mode")
        );
        assert_eq!(SessionAttrs::Any.refuses(true, true), None);
    }
}
