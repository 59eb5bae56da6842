//! The environment a database target is read from: variables, the password database (the
//! operating-system user and home directories), as libpq reads them.

use std::{collections::BTreeMap, path::Path};

/// The environment, as a lookup function so tests need not touch the process environment.
pub trait Env {
    /// A variable, when set to something other than the empty string (libpq's reading).
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable in the environment's order, empty values included (Python's `os.environ`).
    fn vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The home directory of `user`, or of the current user for `None`, from the password database.
    fn home_of(&self, _user: Option<&str>) -> Option<String> {
        None
    }
    /// The operating-system user's name, from the password database: libpq's default database
    /// user (it does not read `USER`).
    fn os_user(&self) -> Option<String> {
        None
    }
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn vars(&self) -> Vec<(String, String)> {
        // Variables that are not UTF-8 are passed over (Prefect's keys and values are text).
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
    fn home_of(&self, user: Option<&str>) -> Option<String> {
        passwd_home(user)
    }
    fn os_user(&self) -> Option<String> {
        passwd_name()
    }
}

/// The name of this process's effective user in the password database, as libpq asks it
/// (`getpwuid(geteuid())`).
fn passwd_name() -> Option<String> {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the buffers given.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

/// A home directory from `/etc/passwd` (bounded like every small file read): `user`'s, or for `None`
/// the one of this process's user id.
fn passwd_home(user: Option<&str>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let text = crate::bounded::read_text(
        Path::new("/etc/passwd"),
        crate::bounded::MAX_CONFIG_FILE,
        "password database",
    )
    .ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let hit = match user {
            Some(u) => f.first() == Some(&u),
            None => f.get(2) == Some(&uid.as_str()),
        };
        (hit && f.len() >= 6).then(|| f[5].to_string())
    })
}

/// A test's environment; its `USER` stands for the operating-system user.
impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn os_user(&self) -> Option<String> {
        self.get("USER").cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
