//! The house's own rules, kept by a test: no Rust file of the project (sources, tests, benches,
//! examples) is over 600 lines, and every file of `src/` is reached from the crate's root.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    // A work list, not recursion: the tree's depth is not ours to trust.
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                todo.push(p);
            } else if kind.is_file() && p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_rust_file_is_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 100, "the walk found the project's files");
    let mut over: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{} ({lines} lines)",
                    p.strip_prefix(root()).unwrap_or(p).display()
                )
            })
        })
        .collect();
    over.sort();
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines, split by concern: {over:#?}"
    );
}

/// Every file under `src/` is a module the crate declares (`mod NAME;` in its parent, or a
/// `#[path]`): a file nobody declares is dead text that still looks like code to a newcomer.
#[test]
fn every_source_file_is_part_of_the_crate() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut orphans = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root().join("src")).expect("under src");
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if rel.parent() == Some(Path::new("")) && ["lib", "main"].contains(&name) {
            continue;
        }
        // Declared by the parent folder's mod.rs or lib.rs, or by the sibling file of the folder's
        // name (`a/b.rs` declared in `a.rs`), or, for `a/mod.rs`, by `a`'s parent.
        let (module, dir) = if name == "mod" {
            let dir = f.parent().expect("a folder");
            (
                dir.file_name().and_then(|s| s.to_str()).unwrap_or_default(),
                dir.parent().expect("a parent"),
            )
        } else {
            (name, f.parent().expect("a folder"))
        };
        let mut parents = vec![dir.join("mod.rs"), dir.with_extension("rs")];
        if dir == root().join("src") {
            parents.push(dir.join("lib.rs"));
            parents.push(dir.join("main.rs"));
        }
        let declared = parents.iter().any(|p| {
            std::fs::read_to_string(p).is_ok_and(|text| {
                text.lines().any(|l| {
                    let l = l.trim();
                    let l = l.strip_prefix("pub ").unwrap_or(l);
                    let l = l
                        .strip_prefix("pub(crate) ")
                        .or_else(|| l.strip_prefix("pub(super) "))
                        .unwrap_or(l);
                    l == format!("mod {module};")
                })
            })
        }) || files.iter().any(|g| {
            std::fs::read_to_string(g).is_ok_and(|text| {
                text.contains(&format!(
                    "#[path = \"{}\"]",
                    f.file_name().and_then(|s| s.to_str()).unwrap_or_default()
                ))
            })
        });
        if !declared {
            orphans.push(rel.display().to_string());
        }
    }
    assert!(files.len() > 100, "the walk found the crate's files");
    assert!(orphans.is_empty(), "files no module declares: {orphans:?}");
}
