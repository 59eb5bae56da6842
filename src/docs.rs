//! Documentation generated from the catalog: `docs/checks.md` and the check list in the README. Tests
//! keep both in sync (`UPDATE_DOCS=1 cargo test` rewrites them).

use std::fmt::Write as _;

use crate::{
    catalog::{AREAS, Catalog, CheckSpec, Mode, area_title},
    checks::REGISTRY,
};

fn modes(spec: &CheckSpec) -> String {
    spec.modes
        .iter()
        .map(|m| match m {
            Mode::Check => "check",
            Mode::Preflight => "preflight",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Catalog entries in report order (registry order, then anything else by id).
fn ordered(catalog: &Catalog) -> Vec<&CheckSpec> {
    let mut v: Vec<&CheckSpec> = REGISTRY.iter().filter_map(|d| catalog.get(d.id)).collect();
    for e in catalog.entries() {
        if !v.iter().any(|x| x.id == e.id) {
            v.push(e);
        }
    }
    v
}

/// `docs/checks.md`: every check, whole.
pub fn checks_markdown(catalog: &Catalog) -> String {
    let mut out = String::from(
        "<!-- Generated from checks/*.toml by `prefect-doctor gen-docs`; do not edit by hand. -->\n\
         # prefect-doctor checks\n\n\
         Every check has a stable id. `prefect-doctor explain <id>` prints the same text in a terminal.\n\
         Placeholders such as `{release}` are filled with the names `prefect-doctor` discovers.\n",
    );
    for (area, _) in AREAS {
        let specs: Vec<_> = ordered(catalog)
            .into_iter()
            .filter(|s| s.area == *area)
            .collect();
        if specs.is_empty() {
            continue;
        }
        let _ = write!(out, "\n## {}\n", area_title(area));
        for s in specs {
            let _ = write!(
                out,
                "\n### `{}` — {}\n\n*severity:* {} · *runs in:* {} · [README]({})\n\n\
                 **Symptom.** {}\n\n**Cause.** {}\n\n**Fix.**\n\n{}\n",
                s.id,
                s.title,
                s.severity,
                modes(s),
                s.docs,
                s.symptom.trim(),
                s.cause.trim(),
                s.fix.trim()
            );
            for (name, fix) in &s.fixes {
                let _ = write!(
                    out,
                    "\n**Fix when the cause is `{name}`.**\n\n{}\n",
                    fix.trim()
                );
            }
            if let Some(auto) = &s.automatic {
                let _ = write!(
                    out,
                    "\n**Automatic fix** ([`prefect-doctor fix --apply`](fix.md)). {}\n",
                    auto.trim()
                );
            }
        }
    }
    out
}

pub const README_START: &str = "<!-- checks:start -->";
pub const README_END: &str = "<!-- checks:end -->";

/// The check table inside the README's markers.
pub fn readme_table(catalog: &Catalog) -> String {
    let mut out = String::from("| id | severity | runs in | what it checks |\n|---|---|---|---|\n");
    for s in ordered(catalog) {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            s.id,
            s.severity,
            modes(s),
            s.title
        );
    }
    out
}

/// Replaces the text between the README markers; `None` when the markers are missing.
pub fn splice_readme(readme: &str, table: &str) -> Option<String> {
    let start = readme.find(README_START)? + README_START.len();
    let end = readme.find(README_END)?;
    (start <= end).then(|| format!("{}\n{}{}", &readme[..start], table, &readme[end..]))
}

/// `prefect-doctor list -o json`: the catalog as JSON.
pub fn list_json(catalog: &Catalog) -> String {
    let mut s = serde_json::to_string_pretty(catalog.entries()).unwrap_or_default();
    s.push('\n');
    s
}

/// `prefect-doctor list`: one line a check, grouped by area.
pub fn list_text(catalog: &Catalog) -> String {
    {
        {
            let width = catalog
                .entries()
                .iter()
                .map(|e| e.id.len())
                .max()
                .unwrap_or(0);
            let mut out = String::new();
            // The built-in areas in their order, then the user checks' own.
            let mut areas: Vec<(String, String)> = AREAS
                .iter()
                .map(|(a, t)| (a.to_string(), t.to_string()))
                .collect();
            for e in catalog.entries() {
                if !areas.iter().any(|(a, _)| *a == e.area) {
                    areas.push((e.area.clone(), e.area.clone()));
                }
            }
            for (area, title) in &areas {
                let entries: Vec<_> = catalog
                    .entries()
                    .iter()
                    .filter(|e| e.area == *area)
                    .collect();
                if entries.is_empty() {
                    continue;
                }
                out.push_str(&format!("{title}\n"));
                for e in entries {
                    out.push_str(&format!(
                        "  {:<width$}  {:<7}  {}{}{}\n",
                        e.id,
                        e.severity.to_string(),
                        e.title,
                        if e.automatic.is_some() { "  [fix]" } else { "" },
                        e.source
                            .as_ref()
                            .map(|s| format!("  (from {s})"))
                            .unwrap_or_default()
                    ));
                }
            }
            out.push_str("\n[fix]: `prefect-doctor fix --apply` can make the fix (docs/fix.md)\n");
            out
        }
    }
}

/// `prefect-doctor explain ID`: one check whole, headings in bold (when colour is on).
/// `prefect-doctor lint-checks`: what loaded.
pub fn lint_report(loaded: &[crate::user_checks::UserCheck]) -> String {
    let mut out = format!(
        "{} user check{} valid\n",
        loaded.len(),
        if loaded.len() == 1 { " is" } else { "s are" }
    );
    for c in loaded {
        out.push_str(&format!("  {}  {}\n", c.spec.id, c.file));
    }
    out
}

pub fn explain_text(spec: &CheckSpec) -> String {
    use colored::Colorize as _;
    let h = |t: &str| t.bold().to_string();
    let block = |t: &str| {
        t.trim_end()
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("  {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = format!(
        "{} — {}\narea: {} · severity: {} · runs in: {}\n",
        h(&spec.id),
        spec.title,
        spec.area,
        spec.severity,
        modes(spec),
    );
    // A user check need not say everything: what it leaves empty is left out, not shown as an
    // empty heading.
    for (heading, text) in [
        ("Symptom", &spec.symptom),
        ("Cause", &spec.cause),
        ("Fix", &spec.fix),
    ] {
        if !text.trim().is_empty() {
            out.push_str(&format!("\n{}\n{}\n", h(heading), block(text)));
        }
    }
    for (name, fix) in &spec.fixes {
        out.push_str(&format!(
            "\n{}\n{}\n",
            h(&format!("Fix when the cause is {name}")),
            block(fix)
        ));
    }
    if let Some(auto) = &spec.automatic {
        out.push_str(&format!(
            "\n{}\n{}\n",
            h("Automatic fix (prefect-doctor fix --apply)"),
            block(auto)
        ));
    }
    if !spec.docs.trim().is_empty() {
        out.push_str(&format!("\n{}\n  {}\n", h("Docs"), spec.docs));
    }
    if let Some(file) = &spec.source {
        out.push_str(&format!("\n{}\n  {file}\n", h("A user check, from")));
    }
    out
}
