//! The catalog and the code agree, and the generated docs are in sync.

use prefect_doctor::{
    catalog::{self, Catalog},
    checks::REGISTRY,
    docs,
};

#[test]
fn every_catalog_entry_has_an_implementation_and_back() {
    let catalog = Catalog::builtin();
    for spec in catalog.entries() {
        assert!(
            REGISTRY.iter().any(|d| d.id == spec.id),
            "checks/{}.toml has no implementation in src/checks",
            spec.id
        );
    }
    for def in REGISTRY {
        assert!(
            catalog.get(def.id).is_some(),
            "check {} has no catalog entry checks/{}.toml",
            def.id,
            def.id
        );
    }
}

#[test]
fn ids_are_stable_shaped_and_fixes_use_known_placeholders() {
    let known: Vec<&str> = catalog::PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
    for spec in Catalog::builtin().entries() {
        assert!(
            spec.id.split('.').count() == 2
                && spec
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '-'),
            "id {:?} must be area.name in lower case",
            spec.id
        );
        assert!(
            spec.docs.starts_with("https://"),
            "{}: docs must be a link",
            spec.id
        );
        assert!(!spec.modes.is_empty(), "{}: no modes", spec.id);
        for text in std::iter::once(&spec.fix)
            .chain(spec.fixes.values())
            .chain([&spec.symptom, &spec.cause])
        {
            for p in catalog::placeholders(text) {
                assert!(
                    known.contains(&p.as_str()),
                    "{}: unknown placeholder {{{p}}}",
                    spec.id
                );
            }
        }
    }
}

#[test]
fn generated_docs_are_in_sync() {
    let catalog = Catalog::builtin();
    let root = env!("CARGO_MANIFEST_DIR");
    let md = docs::checks_markdown(catalog);
    let readme_path = format!("{root}/README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let spliced = docs::splice_readme(&readme, &docs::readme_table(catalog))
        .expect("README.md has the <!-- checks:start --> / <!-- checks:end --> markers");
    let md_path = format!("{root}/docs/checks.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&md_path, &md).expect("write docs/checks.md");
        std::fs::write(&readme_path, &spliced).expect("write README.md");
        return;
    }
    let on_disk = std::fs::read_to_string(&md_path).unwrap_or_default();
    assert!(
        on_disk == md,
        "docs/checks.md is out of date: run `UPDATE_DOCS=1 cargo test --test testsuite catalog::`"
    );
    assert!(
        readme == spliced,
        "README.md's check list is out of date: run `UPDATE_DOCS=1 cargo test --test testsuite catalog::`"
    );
}

/// Every fix variant the code asks for (`.fix("name")`) is written in the catalog: in the entry of
/// the check whose function asks for it, or, for a helper shared by several checks, in at least one
/// entry (the engine then refuses, in debug builds, a variant its check's entry lacks).
#[test]
fn every_fix_variant_the_code_names_is_in_the_catalog() {
    let catalog = Catalog::builtin();
    let fn_of_id = |id: &str| id.replace(['.', '-'], "_");
    let mut asked = 0;
    for entry in std::fs::read_dir("src/checks").expect("src/checks") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        // Split the file at each `fn NAME(`; variants belong to the function they are in.
        let mut current: Option<String> = None;
        for line in text.lines() {
            let t = line.trim_start();
            if let Some(rest) = t
                .strip_prefix("pub async fn ")
                .or_else(|| t.strip_prefix("async fn "))
                .or_else(|| t.strip_prefix("pub fn "))
                .or_else(|| t.strip_prefix("fn "))
            {
                current = rest.split('(').next().map(str::to_string);
            }
            let mut rest = line;
            while let Some(i) = rest.find(".fix(\"") {
                let after = &rest[i + 6..];
                let Some(end) = after.find('"') else { break };
                let variant = &after[..end];
                rest = &after[end..];
                asked += 1;
                let owner = catalog
                    .entries()
                    .iter()
                    .find(|s| current.as_deref() == Some(fn_of_id(&s.id).as_str()));
                match owner {
                    Some(spec) => assert!(
                        spec.fixes.contains_key(variant),
                        "{}: {} asks for fix variant {variant:?}, which checks/{}.toml lacks",
                        path.display(),
                        spec.id,
                        spec.id
                    ),
                    None => assert!(
                        catalog
                            .entries()
                            .iter()
                            .any(|s| s.fixes.contains_key(variant)),
                        "{}: helper {:?} asks for fix variant {variant:?}, which no catalog entry has",
                        path.display(),
                        current
                    ),
                }
            }
        }
    }
    assert!(asked > 20, "the scan found only {asked} fix variants");
}

#[test]
fn automatic_fixes_and_their_words_agree() {
    let catalog = Catalog::builtin();
    for spec in catalog.entries() {
        assert_eq!(
            spec.automatic.is_some(),
            prefect_doctor::fix::is_automatic(&spec.id),
            "checks/{}.toml says `automatic` and src/fix/ must agree",
            spec.id
        );
    }
    for (id, _) in prefect_doctor::fix::FIXERS {
        assert!(
            catalog.get(id).is_some(),
            "src/fix/ plans a fix for {id}, which is no check"
        );
    }
}
