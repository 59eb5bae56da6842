//! Prefect Server's migrations (services/postgres/alembic in PrefectHQ/server), in the order they run,
//! with the day each was written: which revision a database is at, and which one a server of a given
//! version (`2022.09.23`, a release date) has at least.

/// (revision, written on, what it does), in the order of the chain (each one's down_revision is
/// the one before).
pub const CHAIN: &[(&str, (u32, u32, u32), &str)] = &[
    ("27811b58307b", (2020, 6, 24), "create extensions"),
    ("72e2cd3e0469", (2020, 6, 24), "initial database migration"),
    (
        "c4d792bdd05e",
        (2020, 6, 24),
        "add flow run idempotency key",
    ),
    ("3398e4807bfb", (2020, 6, 24), "add traversal functions"),
    ("b9086bd4b962", (2020, 7, 1), "create message table"),
    ("c1f317aa658c", (2020, 8, 8), "remove state id foreign keys"),
    (
        "6611fd0ccc73",
        (2020, 9, 2),
        "simplify run state update triggers",
    ),
    ("70528cee0d2b", (2020, 9, 4), "add agent persistence"),
    ("9cb7539b7363", (2020, 9, 16), "add index on agent id"),
    ("e148cf9f1e5b", (2020, 9, 3), "add task run name"),
    ("850b76d44332", (2020, 9, 21), "add flow run config"),
    (
        "24f10aeee83e",
        (2020, 9, 30),
        "add label column to flow runs",
    ),
    ("3c87ad7e0b71", (2020, 10, 21), "add artifact api"),
    (
        "57ac2cb01ac1",
        (2020, 12, 2),
        "add index for task run names",
    ),
    (
        "7ca57ea2fdff",
        (2020, 12, 28),
        "add run config to flow runs",
    ),
    (
        "9116e81c6dc2",
        (2021, 1, 20),
        "add description to flow group table",
    ),
    ("459a61bedc9e", (2021, 3, 16), "improve run triggers"),
    (
        "a666a3f4e422",
        (2021, 3, 16),
        "add unique index for idempotency key",
    ),
    (
        "ac5747fb571c",
        (2021, 8, 25),
        "add unique constraint on edge table",
    ),
];

/// A migration written this many days before a server's release date is taken to be in it (a
/// release ships what was merged some time before).
const SHIP_DAYS: u32 = 30;

/// Where `revision` is in the chain.
pub fn position(revision: &str) -> Option<usize> {
    CHAIN.iter().position(|(r, _, _)| *r == revision)
}

/// A day as a number that orders as days do (not a calendar: months of 31 days).
fn day((y, m, d): (u32, u32, u32)) -> u32 {
    y * 372 + m * 31 + d
}

/// The newest migration a server released on `version` (`2022.09.23`, `v2021.03.06`) surely has:
/// the last in the chain written (with every one before it) at least [`SHIP_DAYS`] before. `None` for
/// a version that is not a date (`latest`, a commit) or older than every migration.
pub fn expected_for(version: &str) -> Option<usize> {
    let parts: Vec<u32> = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    if *y < 2020 || *m == 0 || *m > 12 || *d == 0 || *d > 31 {
        return None;
    }
    let released = day((*y, *m, *d));
    // A migration lands with every one before it: the latest date so far.
    let mut landed = 0;
    let mut expected = None;
    for (i, (_, written, _)) in CHAIN.iter().enumerate() {
        landed = landed.max(day(*written));
        if landed + SHIP_DAYS <= released {
            expected = Some(i);
        }
    }
    expected
}

/// The server's version and where it was read: the API's `api { version }`, else the tag of the
/// release's graphql image (which runs the migrations).
async fn server_version(cx: &super::Cx) -> Option<(String, String)> {
    if let Some((url, Some(versions))) = super::web::server_versions(cx).await
        && let Some(v) = versions.version
    {
        return Some((v, format!("the API at {url}")));
    }
    let (k, f) = super::cluster_cx::release(cx).ok()?;
    let pods = k.pods(f).await.ok()?;
    let image = super::cluster_cx::component_image(pods, "graphql", "graphql")?;
    let tag = super::cluster_cx::image_tag(&image).to_string();
    Some((tag, format!("the graphql image {image}")))
}

/// db.schema's word on the revision the database is at.
pub async fn judge(cx: &super::Cx, rev: &str) -> super::Outcome {
    use super::Outcome;
    let head = CHAIN.len() - 1;
    let Some(at) = position(rev) else {
        return Outcome::pass(format!(
            "migrations have run (alembic revision {rev}, not one of Prefect Server's published \
             migrations: a newer or patched server?)"
        ))
        .with("revision", rev);
    };
    let (_, _, what) = CHAIN[at];
    if at == head {
        return Outcome::pass(format!(
            "migrations have run (alembic revision {rev}, \"{what}\", the newest)"
        ))
        .with("revision", rev);
    }
    let behind = head - at;
    let Some((version, from)) = server_version(cx).await else {
        return Outcome::pass(format!(
            "migrations have run (alembic revision {rev}, \"{what}\", {behind} behind the newest \
             schema; the server's version was not read to tell whether it expects more)"
        ))
        .with("revision", rev)
        .with("behind_newest", behind);
    };
    match expected_for(&version) {
        Some(want) if want > at => {
            let (want_rev, _, want_what) = CHAIN[want];
            Outcome::finding(format!(
                "the database is at alembic revision {rev} (\"{what}\"), older than {want_rev} \
                 (\"{want_what}\") that Prefect Server {version} (from {from}) has: the graphql \
                 service has not finished migrating ({} migration{} missing)",
                want - at,
                if want - at == 1 { "" } else { "s" }
            ))
            .with("revision", rev)
            .with("expected", want_rev)
            .with("server_version", version)
        }
        _ => Outcome::pass(format!(
            "migrations have run (alembic revision {rev}, \"{what}\", as far as Prefect Server \
             {version} goes)"
        ))
        .with("revision", rev)
        .with("server_version", version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_and_what_a_release_has() {
        assert_eq!(position("ac5747fb571c"), Some(CHAIN.len() - 1));
        assert_eq!(position("27811b58307b"), Some(0));
        assert_eq!(position("deadbeef"), None);
        assert_eq!(expected_for("2022.09.23"), Some(CHAIN.len() - 1));
        assert_eq!(expected_for("2021.03.10"), position("9116e81c6dc2"));
        // e148cf9f1e5b was written before 9cb7539b7363 but runs after it: it lands with it.
        assert_eq!(expected_for("2020.10.14"), position("70528cee0d2b"));
        assert_eq!(expected_for("2020.10.16"), position("e148cf9f1e5b"));
        assert_eq!(expected_for("latest"), None);
        assert_eq!(expected_for("2020.06.30"), None);
    }
}
