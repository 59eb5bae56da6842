//! A fleet run against the in-test API server: `check -A` over 20 releases (20 namespaces, every pod
//! port-forwarded to one real PostgreSQL, Apollo and UI) beside `check` of one of them, whole-process
//! wall time and peak memory (the children's maximum resident set, from getrusage).
//!
//!     cargo bench --bench fleet
//!
//! Targets (issue 17): 20 releases in at most 2× the wall time of one; peak memory under 60 MB.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{doctor_process, kube::fleet_install};

fn run(kubeconfig: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = doctor_process()
        .args([
            "check",
            "-o",
            "json",
            "--timeout",
            "5s",
            "--kubeconfig",
            kubeconfig,
        ])
        .args(args)
        .output()
        .expect("run prefect-doctor");
    let took = started.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The connections the database server has authorized so far (its log says each).
fn connections(log: &str) -> usize {
    log.matches("connection authorized").count()
}

fn mean(iterations: u32, mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm-up
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        total += f();
    }
    total / iterations
}

/// User and system CPU time of every child waited for so far.
fn children_cpu() -> Duration {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

/// User and system CPU time of this process: the in-test API server with its port-forwards, Apollo
/// and the UI.
fn own_cpu() -> Duration {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

fn cpu_of(who: nix::sys::resource::UsageWho) -> Duration {
    nix::sys::resource::getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::from_secs(tv.tv_sec().max(0) as u64)
                    + Duration::from_micros(tv.tv_usec().max(0) as u64)
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// The largest resident set of any child waited for so far, in MiB (Linux reports KiB).
fn children_peak_mib() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let iterations: u32 = if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    };
    let names: Vec<(String, String)> = (0..20)
        .map(|i| ("prefect".to_string(), format!("team-{i:02}")))
        .collect();
    let refs: Vec<(&str, &str)> = names
        .iter()
        .map(|(r, n)| (r.as_str(), n.as_str()))
        .collect();
    let fleet = fleet_install(&refs, |_| {});
    let kc = fleet.server.kubeconfig();
    // What each run costs, as (the doctor, the database server, the API server and the HTTP parts).
    let costs = || {
        (
            children_cpu(),
            fleet.pg.cpu(),
            own_cpu(),
            connections(&fleet.pg.log()),
        )
    };
    let per_run = |a: (Duration, Duration, Duration, usize),
                   b: (Duration, Duration, Duration, usize)| {
        let n = iterations + 1;
        // Saturating: a reading /proc could not give is zero, never a panic.
        (
            b.0.saturating_sub(a.0) / n,
            b.1.saturating_sub(a.1) / n,
            b.2.saturating_sub(a.2) / n,
            b.3.saturating_sub(a.3) / n as usize,
        )
    };
    let c0 = costs();
    let one = mean(iterations, || {
        run(&kc, &["-n", "team-00", "--release", "prefect"])
    });
    let c1 = costs();
    let peak_one = children_peak_mib();
    let twenty = mean(iterations, || run(&kc, &["-A"]));
    let c2 = costs();
    let peak_all = children_peak_mib();
    let (cpu_one, db_one, api_one, conn_one) = per_run(c0, c1);
    let (cpu_all, db_all, api_all, conn_all) = per_run(c1, c2);
    let ratio = twenty.as_secs_f64() / one.as_secs_f64();
    println!(
        "one release:   {:>8.1} ms (mean of {iterations})",
        one.as_secs_f64() * 1e3
    );
    println!(
        "20 releases:   {:>8.1} ms (mean of {iterations})",
        twenty.as_secs_f64() * 1e3
    );
    println!("ratio:         {ratio:>8.2}× (target ≤ 2×)");
    println!(
        "doctor's CPU:  {:>8.1} ms for one, {:.1} ms for 20 ({} cores here; the API server and the \
         database share them)",
        cpu_one.as_secs_f64() * 1e3,
        cpu_all.as_secs_f64() * 1e3,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "database CPU:  {:>8.1} ms for one, {:.1} ms for 20 ({conn_one} and {conn_all} connections)",
        db_one.as_secs_f64() * 1e3,
        db_all.as_secs_f64() * 1e3,
    );
    println!(
        "API server's:  {:>8.1} ms for one, {:.1} ms for 20 (with its port-forwards, Apollo and the UI)",
        api_one.as_secs_f64() * 1e3,
        api_all.as_secs_f64() * 1e3,
    );
    println!(
        "peak memory:   {peak_one:>8.1} MiB for one, {peak_all:.1} MiB for the fleet run (target < 60 MB)"
    );
}
