//! Opens a bundle as hostile input: a size cap on the file and on what it unpacks to, only regular
//! files with plain relative names (no `..`, no absolute path, no link or device), a known format
//! version, and nothing written anywhere: the parts are read into memory, each under its own cap.

use std::{io::Read as _, path::Path};

use super::{FORMAT, Manifest, Snapshot};
use crate::probes::tape::Tape;

/// The largest bundle file read.
pub const MAX_FILE: u64 = 256 * 1024 * 1024;
/// The most bytes one part may unpack to.
pub const MAX_PART: u64 = 128 * 1024 * 1024;
/// The most bytes the whole bundle may unpack to, and the most entries it may have.
pub const MAX_TOTAL: u64 = 512 * 1024 * 1024;
pub const MAX_ENTRIES: usize = 10_000;
/// The parts a replay reads are parsed into memory: each has a cap of its own, far above what a
/// bundle ever holds (answers are cut to `--max-size`, a body to 1 MiB) and low enough that a
/// hostile one costs little.
pub const MAX_MANIFEST: u64 = 1024 * 1024;
pub const MAX_SESSION: u64 = 16 * 1024 * 1024;
pub const MAX_TAPE: u64 = 64 * 1024 * 1024;
/// What one JSON part may hold: values (elements of arrays and objects), nesting, one string.
pub const MAX_JSON_VALUES: usize = 2_000_000;
pub const MAX_JSON_DEPTH: usize = 64;
pub const MAX_JSON_STRING: usize = 8 * 1024 * 1024;

/// Measures a JSON text without building it: how many values, how deep, the longest string. A
/// part past a bound is refused before it is parsed, so a small file that unpacks to sixty
/// million zeros, or one string of fifty megabytes, costs a scan and no more memory than its text.
pub fn json_within_bounds(text: &str) -> Result<(), String> {
    let (mut values, mut depth, mut string) = (0usize, 0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            string += 1;
            if string > MAX_JSON_STRING {
                return Err(format!(
                    "a string longer than {} MiB",
                    MAX_JSON_STRING / 1024 / 1024
                ));
            }
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string = 0;
            }
            b'[' | b'{' => {
                depth += 1;
                values += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!("nesting deeper than {MAX_JSON_DEPTH}"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => {}
        }
        if values > MAX_JSON_VALUES {
            return Err(format!("more than {MAX_JSON_VALUES} values"));
        }
    }
    Ok(())
}

/// A bundle's parts, read back.
pub struct Bundle {
    pub manifest: Manifest,
    pub snapshot: Snapshot,
    pub tape: Tape,
}

/// Reads the bundle at `path`; `Err` is a clear message (a usage error: exit 2).
pub fn read(path: &Path) -> Result<Bundle, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("--from {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("--from {shown}: not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(format!(
            "--from {shown}: {} bytes, larger than any bundle ({} MiB at the most)",
            meta.len(),
            MAX_FILE / 1024 / 1024
        ));
    }
    let file = crate::bounded::open_regular(path).map_err(|e| format!("--from {e}"))?;
    let gz = flate2::read::GzDecoder::new(std::io::Read::take(file, MAX_FILE));
    // Bounded however the archive lies about its sizes.
    let mut archive = tar::Archive::new(std::io::Read::take(gz, MAX_TOTAL + 1));
    let bad = |why: String| format!("--from {shown}: not a prefect-doctor bundle: {why}");
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("cannot read it as a gzip'd tar ({e})")))?;
    let (mut manifest, mut snapshot, mut tape) = (None, None, None);
    let mut total: u64 = 0;
    for (n, entry) in entries.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(format!("a damaged entry ({e})")))?;
        let name = entry
            .path()
            .map_err(|e| bad(format!("an entry with an unreadable name ({e})")))?
            .into_owned();
        let name_shown = crate::untrusted::line(&name.display().to_string(), 200);
        if name.is_absolute()
            || name.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        {
            return Err(bad(format!(
                "entry {name_shown} has an absolute path or `..`"
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {name_shown} is a link or a special file, which a bundle never holds"
            )));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_PART {
            return Err(bad(format!("entry {name_shown} is {size} bytes")));
        }
        total = total.saturating_add(size);
        if total > MAX_TOTAL {
            return Err(bad(format!(
                "it unpacks to more than {} MiB",
                MAX_TOTAL / 1024 / 1024
            )));
        }
        let key = name.to_string_lossy().trim_start_matches("./").to_string();
        if !matches!(key.as_str(), "manifest.json" | "session.json" | "tape.json") {
            // report.json and the files for people are not needed to re-analyse.
            continue;
        }
        let cap = match key.as_str() {
            "manifest.json" => MAX_MANIFEST,
            "session.json" => MAX_SESSION,
            _ => MAX_TAPE,
        };
        if size > cap {
            return Err(bad(format!(
                "{key} is {size} bytes; a bundle's is at most {} MiB",
                cap.div_ceil(1024 * 1024)
            )));
        }
        let mut text = String::new();
        std::io::Read::take(&mut entry, cap)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("entry {name_shown} cannot be read ({e})")))?;
        json_within_bounds(&text).map_err(|why| bad(format!("{key} holds {why}")))?;
        match key.as_str() {
            "manifest.json" => {
                // The format first: a newer bundle is said as such, whatever else it holds.
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| bad(format!("manifest.json is not JSON ({e})")))?;
                match v.get("format").and_then(serde_json::Value::as_u64) {
                    Some(f) if f > u64::from(FORMAT) => {
                        return Err(format!(
                            "--from {shown}: the bundle's format is {f}, made by a newer \
                             prefect-doctor; this one reads format {FORMAT}"
                        ));
                    }
                    Some(_) => {}
                    None => return Err(bad("manifest.json has no format".to_string())),
                }
                manifest = Some(
                    serde_json::from_value::<Manifest>(v)
                        .map_err(|e| bad(format!("manifest.json: {e}")))?,
                );
            }
            "session.json" => {
                snapshot = Some(
                    serde_json::from_str::<Snapshot>(&text)
                        .map_err(|e| bad(format!("session.json: {e}")))?,
                );
            }
            _ => {
                tape = Some(
                    serde_json::from_str::<Tape>(&text)
                        .map_err(|e| bad(format!("tape.json: {e}")))?,
                );
            }
        }
    }
    match (manifest, snapshot, tape) {
        (Some(manifest), Some(snapshot), Some(tape)) => Ok(Bundle {
            manifest,
            snapshot,
            tape,
        }),
        (m, s, t) => {
            let missing: Vec<&str> = [
                (m.is_none(), "manifest.json"),
                (s.is_none(), "session.json"),
                (t.is_none(), "tape.json"),
            ]
            .into_iter()
            .filter_map(|(gone, n)| gone.then_some(n))
            .collect();
            Err(bad(format!("it lacks {}", missing.join(", "))))
        }
    }
}
