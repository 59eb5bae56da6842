//! SARIF checked against the official 2.1.0 schema.

use std::path::PathBuf;

use serde_json::{Value, json};

fn sarif_schema() -> Value {
    // The official SARIF 2.1.0 schema, as shipped inside the serde-sarif crate (a dev-dependency, so
    // its source is in cargo's registry).
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registries = std::fs::read_dir(cargo_home.join("registry/src")).expect("cargo registry");
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            if krate
                .file_name()
                .to_string_lossy()
                .starts_with("serde-sarif-")
            {
                let path = krate.path().join("src/schema.json");
                if let Ok(text) = std::fs::read_to_string(&path) {
                    return serde_json::from_str(&text).expect("schema JSON");
                }
            }
        }
    }
    panic!(
        "serde-sarif's schema.json not found under {}",
        cargo_home.display()
    );
}

/// `sarif` is valid against the official SARIF 2.1.0 schema and reads into serde-sarif's types.
pub fn assert_valid_sarif(sarif: &Value) {
    let mut schema = sarif_schema();
    // The 2.1.0 schema's one invalid regex (the `language` patterns), as the OASIS errata corrected it.
    for def in ["run", "toolComponent"] {
        if let Some(p) =
            schema.pointer_mut(&format!("/definitions/{def}/properties/language/pattern"))
        {
            *p = json!("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
        }
    }
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:#?}\n{sarif:#}");
    // And it reads back into serde-sarif's types, generated from the same schema.
    let _: serde_sarif::sarif::Sarif =
        serde_json::from_value(sarif.clone()).expect("serde-sarif reads it");
}
