//! A fleet run against the in-test API server: `check -A` over 20 releases (20 namespaces, every pod
//! port-forwarded to one real PostgreSQL, Apollo and UI) beside `check` of one of them, whole-process
//! wall time, CPU time and peak memory. Each run of the doctor is started by a copy of this bench
//! (`FLEET_BENCH_MEASURE=1`) that has no other child, so getrusage's children's figures are the
//! doctor's alone: the bench's own children (initdb, psql, the servers) never count.
//!
//!     cargo bench --bench fleet
//!
//! It benches twice: with the API server on this machine, and 20 ms away (every byte to and from it
//! delayed by half that, the port-forwarded servers behind it as in a real cluster).
//! `FLEET_BENCH_RTT_MS=0,5,50` names other round trips; `FLEET_BENCH_PARALLEL=N` runs both with
//! `--parallel N`.
//!
//! Then, when the real control plane is built (`tests/cluster/build`), the same on it: 20 Helm
//! releases installed by real Helm into kube-apiserver, their pods on kwok's Nodes, every database,
//! Apollo and UI port-forward going through the real API server and kubelet to a real PostgreSQL
//! per release and in-test Apollo and UI (`FLEET_BENCH_REAL=0` leaves it out).
//!
//! Targets (issue 17): 20 releases in at most 2× the wall time of one; peak memory under 60 MB.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{
    cluster, doctor_process,
    kube_fleet::fleet_install,
    kubelet::{Scenario, running_release},
};

/// One run of the doctor as measured by its own parent: wall time, CPU time (user and system), peak
/// resident set.
#[derive(Clone, Copy, Default)]
struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
}

fn run(kubeconfig: &str, args: &[&str]) -> Measured {
    let out = std::process::Command::new(std::env::current_exe().expect("the bench's own path"))
        .env(MEASURE, "1")
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
        .args(
            std::env::var("FLEET_BENCH_PARALLEL")
                .ok()
                .map(|n| ["--parallel".to_string(), n])
                .into_iter()
                .flatten(),
        )
        .output()
        .expect("run the measuring copy");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("a figure"));
    let mut next = || f.next().expect("three figures");
    Measured {
        wall: Duration::from_micros(next()),
        cpu: Duration::from_micros(next()),
        peak_kib: next(),
    }
}

const MEASURE: &str = "FLEET_BENCH_MEASURE";

/// The measuring copy: runs the doctor with its own arguments and prints its wall time and CPU
/// time in microseconds and its peak resident set in KiB (the doctor is this process's only child).
fn measure() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let out = doctor_process()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run prefect-doctor");
    let wall = started.elapsed();
    if out.status.code() != Some(0) {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(out.status.code().unwrap_or(1));
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!(
        "{} {} {}",
        wall.as_micros(),
        cpu_in(&usage).as_micros(),
        usage.max_rss().max(0)
    );
}

/// The connections the database server has authorized so far (its log says each).
fn connections(log: &str) -> usize {
    log.matches("connection authorized").count()
}

/// The mean wall and CPU time and the largest peak of `iterations` runs after a warm-up.
fn mean(iterations: u32, mut f: impl FnMut() -> Measured) -> Measured {
    f(); // warm-up
    let mut total = Measured::default();
    for _ in 0..iterations {
        let m = f();
        total.wall += m.wall;
        total.cpu += m.cpu;
        total.peak_kib = total.peak_kib.max(m.peak_kib);
    }
    Measured {
        wall: total.wall / iterations,
        cpu: total.cpu / iterations,
        peak_kib: total.peak_kib,
    }
}

/// User and system CPU time of this process: the in-test API server with its port-forwards, Apollo
/// and the UI.
fn own_cpu() -> Duration {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

fn cpu_of(who: nix::sys::resource::UsageWho) -> Duration {
    nix::sys::resource::getrusage(who)
        .map(|u| cpu_in(&u))
        .unwrap_or_default()
}

/// User and system CPU time of a usage reading.
fn cpu_in(u: &nix::sys::resource::Usage) -> Duration {
    let t = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec().max(0) as u64)
            + Duration::from_micros(tv.tv_usec().max(0) as u64)
    };
    t(u.user_time()) + t(u.system_time())
}

fn main() {
    if std::env::var_os(MEASURE).is_some() {
        measure();
        return;
    }
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
    println!(
        "{} cores here; the doctor, the API server and the database share them",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for round_trip in round_trips() {
        fleet.server.set_round_trip(round_trip);
        println!(
            "\n── the API server {} ──",
            if round_trip.is_zero() {
                "on this machine (no network)".to_string()
            } else {
                format!(
                    "{} ms away (round trip; the port-forwarded servers behind it)",
                    round_trip.as_millis()
                )
            }
        );
        bench(&fleet, &kc, iterations);
    }
    drop(fleet);
    if std::env::var("FLEET_BENCH_REAL").as_deref() != Ok("0") {
        on_the_real_control_plane(iterations);
    }
}

/// 20 releases on the real control plane (real Helm, kube-apiserver, kwok as the kubelet), one
/// alone and then all, as [`bench`] does on the in-test API server.
fn on_the_real_control_plane(iterations: u32) {
    let Some(cp) = cluster::shared() else {
        println!("\n(no real control plane built: tests/cluster/build; that part is skipped)");
        return;
    };
    let started = Instant::now();
    let releases: Vec<_> = (0..20)
        .map(|i| running_release(cp, &format!("fleet{i:02}"), Scenario::default()))
        .collect();
    println!(
        "\n── the real control plane: kube-apiserver, etcd, kwok; 20 Helm releases, each with its own \
         PostgreSQL (set up in {:.0} s) ──",
        started.elapsed().as_secs_f64()
    );
    let one_kc = releases[0].kubeconfig.display().to_string();
    let one = mean(iterations, || run(&one_kc, &["--release", "prefect"]));
    let twenty = mean(iterations, || run(&one_kc, &["-A"]));
    print_runs(&one, &twenty, iterations);
    println!(
        "peak memory:   {:>8.1} MiB for one, {:.1} MiB for the fleet run (target < 60 MB)",
        one.peak_kib as f64 / 1024.0,
        twenty.peak_kib as f64 / 1024.0
    );
}

/// Wall time of one release and of 20, their ratio, and the doctor's CPU for each.
fn print_runs(one: &Measured, twenty: &Measured, iterations: u32) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "one release:   {:>8.1} ms (mean of {iterations})",
        ms(one.wall)
    );
    println!(
        "20 releases:   {:>8.1} ms (mean of {iterations})",
        ms(twenty.wall)
    );
    println!(
        "ratio:         {:>8.2}× (target ≤ 2×)",
        twenty.wall.as_secs_f64() / one.wall.as_secs_f64()
    );
    println!(
        "doctor's CPU:  {:>8.1} ms for one, {:.1} ms for 20",
        ms(one.cpu),
        ms(twenty.cpu)
    );
}

/// The networks between the doctor and the API server to bench across: `FLEET_BENCH_RTT_MS`
/// (comma-separated round trips in milliseconds), by default none (this machine) and 20 ms (a
/// cluster in another region, or behind a VPN).
fn round_trips() -> Vec<Duration> {
    let spec = std::env::var("FLEET_BENCH_RTT_MS").unwrap_or_else(|_| "0,20".to_string());
    spec.split(',')
        .map(|ms| {
            Duration::from_millis(ms.trim().parse().unwrap_or_else(|_| {
                panic!("FLEET_BENCH_RTT_MS: {ms:?} is not a number of milliseconds")
            }))
        })
        .collect()
}

/// One release alone and then all 20, `iterations` times each, and what each cost.
fn bench(fleet: &support::kube_fleet::FleetInstall, kc: &str, iterations: u32) {
    // What the servers spend, as (the database server, the API server and the HTTP parts, the
    // database connections opened).
    let costs = || (fleet.pg.cpu(), own_cpu(), connections(&fleet.pg.log()));
    let per_run = |a: (Duration, Duration, usize), b: (Duration, Duration, usize)| {
        let n = iterations + 1;
        // Saturating: a reading /proc could not give is zero, never a panic.
        (
            b.0.saturating_sub(a.0) / n,
            b.1.saturating_sub(a.1) / n,
            b.2.saturating_sub(a.2) / n as usize,
        )
    };
    let c0 = costs();
    let one = mean(iterations, || {
        run(kc, &["-n", "team-00", "--release", "prefect"])
    });
    let c1 = costs();
    let twenty = mean(iterations, || run(kc, &["-A"]));
    let c2 = costs();
    let (db_one, api_one, conn_one) = per_run(c0, c1);
    let (db_all, api_all, conn_all) = per_run(c1, c2);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mib = |kib: u64| kib as f64 / 1024.0;
    print_runs(&one, &twenty, iterations);
    println!(
        "database CPU:  {:>8.1} ms for one, {:.1} ms for 20 ({conn_one} and {conn_all} connections)",
        ms(db_one),
        ms(db_all),
    );
    println!(
        "API server's:  {:>8.1} ms for one, {:.1} ms for 20 (with its port-forwards, Apollo and the UI)",
        ms(api_one),
        ms(api_all),
    );
    println!(
        "peak memory:   {:>8.1} MiB for one, {:.1} MiB for the fleet run (target < 60 MB; the \
         doctor's largest resident set)",
        mib(one.peak_kib),
        mib(twenty.peak_kib),
    );
}
