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
        "docs/checks.md is out of date: run `UPDATE_DOCS=1 cargo test --test catalog`"
    );
    assert!(
        readme == spliced,
        "README.md's check list is out of date: run `UPDATE_DOCS=1 cargo test --test catalog`"
    );
}
