//! A control plane of its own, for the tests that must see everything on it: a fleet's exact
//! listing (`check -A` finds every release of every namespace, and the tests' shared control plane
//! holds every test's releases at once). One test at a time holds it, and each leaves it with no
//! release (uninstalled when its hold ends, a failed test's too).
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};

use super::cluster::ControlPlane;

/// The plane, held by one test.
pub struct Own {
    pub cp: &'static ControlPlane,
    _turn: MutexGuard<'static, ()>,
}

/// The plane (started on first use), once no other test holds it; `None` as [`super::cluster::shared`]
/// says when the binaries are not built.
pub fn own() -> Option<Own> {
    super::cluster::shared()?;
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(Own {
        cp: PLANE.get_or_init(ControlPlane::start),
        _turn: turn,
    })
}

impl Drop for Own {
    /// Every release on the plane uninstalled, and every other release Secret deleted, for the next
    /// test's exact listing.
    fn drop(&mut self) {
        let listed = self.cp.helm(&[
            "list",
            "-A",
            "--deployed",
            "--failed",
            "--pending",
            "--superseded",
            "--uninstalling",
            "-o",
            "json",
        ]);
        let releases: Vec<serde_json::Value> =
            serde_json::from_slice(&listed.stdout).unwrap_or_default();
        for r in releases {
            if let (Some(name), Some(ns)) = (r["name"].as_str(), r["namespace"].as_str()) {
                let _ = self.cp.helm(&["uninstall", name, "-n", ns]);
            }
        }
        // And what Helm cannot list: release Secrets that are not releases (a test's garbage).
        let _ = self.cp.kubectl(&[
            "delete",
            "secrets",
            "-A",
            "-l",
            "owner=helm",
            "--wait=false",
        ]);
    }
}
