//! What user checks add to a run before anything runs: reading, parsing and validating 200 check
//! files (TOML, the SQL parse, CEL compilation), as `check --checks DIR` does.
//!
//!     cargo bench --bench user_checks_load
//!
//! Prints the mean and the slowest of 20 loads (target: at most 20 ms for 200 checks).

use std::time::{Duration, Instant};

use prefect_doctor::{catalog::Catalog, user_checks};

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..200 {
        let text = match i % 3 {
            0 => format!(
                "id = \"site.late-{i}\"\ntitle = \"At most {i} late runs\"\nrequires = [\"db.schema\"]\n\
                 fix = \"Start an agent in {{namespace}}\"\n[sql]\n\
                 query = \"SELECT count(*)::int AS late FROM flow_run WHERE state = 'Scheduled' AND scheduled_start_time < now() - interval '5 minutes'\"\n\
                 expect = \"rows[0].late <= {i}\"\nmessage = \"string(rows[0].late) + ' flow runs are late'\"\n"
            ),
            1 => format!(
                "id = \"site.tenant-{i}\"\ntitle = \"A tenant\"\n[graphql]\n\
                 query = \"query {{ tenant(limit: 1) {{ id slug }} }}\"\nexpect = \"size(errors) == 0 && size(data.tenant) > 0\"\n"
            ),
            _ => format!(
                "id = \"site.tls-{i}\"\ntitle = \"TLS\"\nmodes = [\"preflight\"]\n[values]\n\
                 expect = \"!values.ui.ingress.enabled || size(values.ui.ingress.tls) > 0\"\n"
            ),
        };
        std::fs::write(dir.path().join(format!("c{i:03}.toml")), text).expect("write");
    }
    let paths = vec![dir.path().to_path_buf()];
    let builtin = Catalog::builtin();
    // Warm the file cache and the built-in catalog.
    let loaded = user_checks::load(&paths, builtin).expect("the generated checks load");
    assert_eq!(loaded.len(), 200);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let loaded = user_checks::load(&paths, builtin).expect("load");
        times.push(t.elapsed());
        assert_eq!(loaded.len(), 200);
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "200 user checks loaded and validated: mean {:.2} ms, slowest {:.2} ms over {} loads (target ≤ 20 ms)",
        mean.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
        times.len()
    );
}
