//! The main job, on a throwaway install: starts a local PostgreSQL from the machine's binaries, seeds
//! it like a Prefect Server database with a few faults (no tenant, a Hasura function owned by the
//! wrong user, a non-UTC time zone), starts an in-process Apollo and UI that answer as Prefect's do
//! (the UI with the classic fault: a cluster-internal server_url), runs `prefect-doctor check` against
//! all of it, and cleans up.
//!
//!     cargo run --example sandbox                 # the text report
//!     cargo run --example sandbox -- -o json      # any `check` flags pass through
//!     cargo run --example sandbox -- --healthy    # no faults seeded
//!     cargo run --example sandbox -- --serve      # print the URL and keep the database up until Enter

#[path = "../tests/support/mod.rs"]
mod support;

use support::{
    http::{Apollo, ui},
    pg::PgServer,
    prefect::{APP_USER, CANARY, Seed, seed},
};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let healthy = take_flag(&mut args, "--healthy");
    let serve = take_flag(&mut args, "--serve");

    eprintln!(
        "sandbox: starting a throwaway PostgreSQL from {} …",
        support::pg::bin_dir().display()
    );
    let pg = PgServer::start();
    let s = if healthy {
        Seed::healthy("prefect")
    } else {
        Seed {
            tenant: false,
            hdb_function_owner: Some("postgres".into()),
            db_timezone: Some("Europe/Berlin".into()),
            ..Seed::healthy("prefect")
        }
    };
    seed(&pg, &s);
    let url = pg.url(APP_USER, CANARY, "prefect");

    if serve {
        // For scripts (the benchmark): the URL on stdout, then wait.
        println!("{url}");
        eprintln!("sandbox: database up; press Enter (or close stdin) to stop it");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }

    let apollo = Apollo {
        tenants: if healthy { vec!["default"] } else { vec![] },
        ..Apollo::default()
    }
    .start();
    let api_url = format!("{}/graphql", apollo.url);
    let ui = ui(if healthy {
        &api_url
    } else {
        "http://prefect-apollo.default:4200/graphql"
    });
    eprintln!(
        "sandbox: seeded database \"prefect\"{}; Apollo at {api_url}, UI at {}\n",
        if healthy { "" } else { " with faults" },
        ui.url
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut argv = vec![
        "prefect-doctor".to_string(),
        "check".to_string(),
        "--database-url".to_string(),
        url,
        "--api-url".to_string(),
        api_url,
        "--ui-url".to_string(),
        ui.url.clone(),
    ];
    argv.extend(args);
    let code = prefect_doctor::cli::run_from(argv);
    eprintln!("\nsandbox: prefect-doctor exited with {code}; stopping the database");
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}
