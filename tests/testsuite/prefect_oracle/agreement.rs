//! The doctor's reading of each configuration against the real prefect 1.4.1's.

use super::*;

/// What the doctor's library reads, in the oracle's terms.
fn ask_doctor(env: &BTreeMap<String, String>) -> Value {
    let p = PrefectConfig::load(env);
    if let Some(why) = &p.broken {
        return serde_json::json!({"broken": why});
    }
    let api = p.cli_api();
    // A setting that is not there (its section replaced by a value) is null on both sides.
    let setting = |key: &str| p.value(key).map(|v| v.setting().value);
    let call = match &api.call {
        Call::Sends(u) => serde_json::json!({"sends": u.as_str()}),
        Call::Fails { exception, .. } => serde_json::json!({"fails": exception}),
    };
    serde_json::json!({
        "backend": setting("backend"),
        "cloud_api": setting("cloud.api"),
        "ui_endpoint": setting("server.ui.endpoint"),
        "database": setting("server.database.connection_url"),
        "call": call,
    })
}

/// requests sends `http://h:1` as `http://h:1/`; the doctor's URL says the same.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[test]
fn the_doctor_reads_prefects_configuration_as_prefect_141_does() {
    let python = match oracle_python() {
        Ok(p) => p,
        Err(why) => {
            assert!(
                std::env::var_os("PREFECT_DOCTOR_ORACLE_REQUIRED").is_none(),
                "the oracle is required here, but prefect==1.4.1 cannot be used: {why}"
            );
            eprintln!(
                "SKIPPED: prefect==1.4.1 cannot be installed here, so the oracle did not run: {why}"
            );
            return;
        }
    };
    let all = cases();
    let results: Vec<(String, Value, Value, support::Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(all.len().div_ceil(4))
            .map(|chunk| {
                let python = &python;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| {
                            let home = tempfile::tempdir().unwrap();
                            let env = lay_out(c, home.path());
                            let prefect = ask_prefect(python, &env, &[]);
                            let doctor = ask_doctor(&env);
                            let run = report(&env);
                            (c.name.to_string(), prefect, doctor, run)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case thread"))
            .collect()
    });
    let mut disagree = Vec::new();
    for (name, prefect, doctor, run) in &results {
        // The library.
        match (prefect.get("broken"), doctor.get("broken")) {
            (Some(_), Some(_)) => {}
            (None, None) => {
                for key in ["backend", "cloud_api", "ui_endpoint", "database"] {
                    if prefect[key] != doctor[key] {
                        disagree.push(format!(
                            "{name}: {key}: prefect {} / doctor {}",
                            prefect[key], doctor[key]
                        ));
                    }
                }
                let same_call = match (
                    prefect["call"]["sends"].as_str(),
                    doctor["call"]["sends"].as_str(),
                ) {
                    (Some(a), Some(b)) => same_url(a, b),
                    (None, None) => prefect["call"]["fails"] == doctor["call"]["fails"],
                    _ => false,
                };
                if !same_call {
                    disagree.push(format!(
                        "{name}: the client's call: prefect {} / doctor {}",
                        prefect["call"], doctor["call"]
                    ));
                }
            }
            _ => disagree.push(format!(
                "{name}: prefect {prefect} / doctor {doctor} (one cannot load the configuration)"
            )),
        }
        // The binary's report.
        let cli = run.result("prefect.cli-config");
        let api_target = run.json["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["kind"] == "api")
            .and_then(|t| t["address"].as_str())
            .map(str::to_string);
        if prefect.get("broken").is_some() {
            let noticed = run.json["notices"]
                .to_string()
                .contains("cannot be loaded by Prefect 1.4.1");
            if !noticed
                || !cli["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("every `prefect` command")
            {
                disagree.push(format!(
                    "{name}: the report does not say the CLI is broken: {cli}"
                ));
            }
            continue;
        }
        match (
            prefect["backend"].as_str(),
            prefect["call"]["sends"].as_str(),
        ) {
            (Some("server"), Some(url)) => {
                if !api_target.as_deref().is_some_and(|t| same_url(t, url)) {
                    disagree.push(format!(
                        "{name}: the CLI calls {url}; the doctor checks the API at {api_target:?}"
                    ));
                }
            }
            (Some("server"), None) => {
                if !cli["message"].as_str().unwrap_or("").contains("fails") {
                    disagree.push(format!(
                        "{name}: the CLI cannot call its API ({}); the report says: {cli}",
                        prefect["call"]
                    ));
                }
            }
            _ => {
                if !cli["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Prefect Cloud")
                {
                    disagree.push(format!(
                        "{name}: the CLI talks to Prefect Cloud; the report says: {cli}"
                    ));
                }
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "{} of {} configurations read differently from prefect 1.4.1:\n{}",
        disagree.len(),
        results.len(),
        disagree.join("\n")
    );
}

/// `prefect-doctor check` in the case's environment, only the CLI check, in every format; the canary
/// must not be in any of them.
fn report(env: &BTreeMap<String, String>) -> support::Run {
    support::run_sub_in(
        env,
        "check",
        &["--timeout", "2s", "--only", "prefect.cli-config"],
        &[CANARY],
    )
}
