//! Whole-process wall time of `prefect-doctor check` against the sandbox database, beside the same
//! checks done by hand as the README's Troubleshooting section does them: one `psql` per query.
//!
//!     cargo bench --bench check_vs_psql
//!
//! Prints the mean of each and the ratio (target: the doctor at most a quarter of the by-hand time).

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    pg::{PgServer, bin_dir},
    prefect::{APP_USER, CANARY, Seed, seed},
};

/// The by-hand walk-through: what a user types, one psql each.
const BY_HAND: &[&str] = &[
    "SELECT version();",
    "SELECT extname, extversion FROM pg_extension WHERE extname IN ('pgcrypto', 'pg_trgm');",
    "SELECT name, installed_version FROM pg_available_extensions WHERE name IN ('pgcrypto', 'pg_trgm');",
    "SHOW timezone;",
    "SELECT to_regclass('public.alembic_version'), to_regclass('public.tenant');",
    "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'hdb_catalog';",
    "SELECT proname, proowner::regrole FROM pg_proc WHERE pronamespace::regnamespace::text = 'hdb_catalog';",
    "SELECT count(*) FROM tenant;",
];

fn time<F: FnMut()>(iterations: u32, mut f: F) -> Duration {
    f(); // warm-up
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn main() {
    // `cargo bench` passes --bench; a test run (`cargo test --benches`) passes nothing: keep it short.
    let iterations: u32 = if std::env::args().any(|a| a == "--bench") {
        30
    } else {
        2
    };
    let pg = PgServer::start();
    seed(
        &pg,
        &Seed {
            tenant: false,
            ..Seed::healthy("prefect")
        },
    );
    let url = pg.url(APP_USER, CANARY, "prefect");
    let doctor = env!("CARGO_BIN_EXE_prefect-doctor");
    let psql = bin_dir().join("psql");
    let psql = if psql.is_file() { psql } else { "psql".into() };

    let doctor_time = time(iterations, || {
        let status = Command::new(doctor)
            .args(["check", "--output", "json", "--database-url", &url])
            .stdout(Stdio::null())
            .status()
            .expect("run prefect-doctor");
        assert_eq!(
            status.code(),
            Some(1),
            "the seeded fault (no tenant) is found"
        );
    });
    let by_hand_time = time(iterations, || {
        for sql in BY_HAND {
            let status = Command::new(&psql)
                .args(["-X", "-q", "-At", "-d", &url, "-c", sql])
                .stdout(Stdio::null())
                .status()
                .expect("run psql");
            assert!(status.success(), "psql failed on {sql}");
        }
    });
    let ratio = doctor_time.as_secs_f64() / by_hand_time.as_secs_f64();
    println!(
        "prefect-doctor check:          {:>8.1} ms (mean of {iterations})",
        doctor_time.as_secs_f64() * 1e3
    );
    println!(
        "by hand ({} psql invocations): {:>8.1} ms (mean of {iterations})",
        BY_HAND.len(),
        by_hand_time.as_secs_f64() * 1e3
    );
    println!("ratio doctor / by hand:        {ratio:>8.3} (target ≤ 0.25)");
}
