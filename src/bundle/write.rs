//! Writes a bundle: every file redacted (the run's registered secrets and credential shapes, then the
//! `--redact` patterns), kept under `--max-size` by cutting the largest recorded answers first (the
//! manifest names each), and written to a temporary file renamed into place.

use std::{io::Write as _, path::Path};

use serde::Serialize;
use serde_json::Value;

use super::{Manifest, Snapshot};
use crate::probes::tape::Tape;

/// What a match of a `--redact` pattern becomes (a word that stays valid in a host name or a path,
/// so a redacted URL still reads as one).
pub const REDACTED: &str = "REDACTED";

/// The redaction of every string that goes into a bundle.
pub struct Redactor {
    patterns: Vec<regex::Regex>,
}

impl Redactor {
    /// Compiles the `--redact` and `[redact]` patterns; `Err` is a usage error.
    pub fn new(patterns: &[String]) -> Result<Redactor, String> {
        let patterns = patterns
            .iter()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("--redact {p:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor { patterns })
    }

    pub fn count(&self) -> usize {
        self.patterns.len()
    }

    /// `s` with the run's secrets masked and every pattern's matches replaced.
    pub fn text(&self, s: &str) -> String {
        let mut out = crate::redact::scrub(s);
        for p in &self.patterns {
            if p.is_match(&out) {
                out = p.replace_all(&out, REDACTED).into_owned();
            }
        }
        out
    }

    /// Every string (keys too) of `v` redacted, without recursion.
    pub fn value(&self, v: Value) -> Value {
        let mut root = v;
        let mut stack: Vec<&mut Value> = vec![&mut root];
        while let Some(node) = stack.pop() {
            match node {
                Value::String(s) => *s = self.text(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.text(&k), v);
                    }
                    stack.extend(map.values_mut());
                }
                _ => {}
            }
        }
        root
    }

    /// `data` as redacted, pretty JSON.
    pub fn json<T: Serialize>(&self, data: &T) -> Result<String, String> {
        let v = serde_json::to_value(data).map_err(|e| e.to_string())?;
        serde_json::to_string_pretty(&self.value(v)).map_err(|e| e.to_string())
    }
}

/// The bundle's parts before they are redacted and written.
pub struct Contents {
    pub manifest: Manifest,
    /// The live run's JSON report.
    pub report: String,
    pub snapshot: Snapshot,
    pub tape: Tape,
}

/// Cuts the largest recorded answers until the files fit `max` bytes (before compression, so the
/// bundle surely fits); returns what was cut.
fn cut_to_fit(tape: &mut Tape, fixed: usize, max: u64) -> Vec<String> {
    let mut cut = Vec::new();
    let size = |t: &Tape| serde_json::to_string(t).map(|s| s.len()).unwrap_or(0);
    let mut total = fixed + size(tape);
    while total as u64 > max {
        let pg = tape
            .postgres
            .iter()
            .enumerate()
            .map(|(i, e)| (serde_json::to_string(e).map(|s| s.len()).unwrap_or(0), i))
            .max();
        let http = tape
            .http
            .iter()
            .enumerate()
            .map(|(i, e)| (serde_json::to_string(e).map(|s| s.len()).unwrap_or(0), i))
            .max();
        let kube = tape
            .kube
            .iter()
            .enumerate()
            .map(|(i, e)| (serde_json::to_string(e).map(|s| s.len()).unwrap_or(0), i))
            .max();
        if let Some((k, i)) = kube
            && pg.is_none_or(|(p, _)| k >= p)
            && http.is_none_or(|(h, _)| k >= h)
        {
            let e = tape.kube.remove(i);
            cut.push(format!(
                "the cluster's answer to {} {} ({k} bytes)",
                e.method, e.uri
            ));
            total = fixed + size(tape);
            continue;
        }
        match (pg, http) {
            (Some((p, i)), h) if h.is_none_or(|(h, _)| p >= h) => {
                let e = tape.postgres.remove(i);
                cut.push(format!(
                    "the answer to {:?} ({p} bytes)",
                    crate::untrusted::cap(&e.sql, 80)
                ));
            }
            (_, Some((h, i))) => {
                let e = tape.http.remove(i);
                cut.push(format!(
                    "the answer to {} {} ({h} bytes)",
                    e.request.method, e.request.url
                ));
            }
            _ => break,
        }
        total = fixed + size(tape);
    }
    cut
}

/// Writes the bundle to `path`; returns its size in bytes and how many answers were cut. `Err` says
/// what failed (nothing is left behind).
pub fn write(
    path: &Path,
    mut c: Contents,
    redactor: &Redactor,
    max: u64,
) -> Result<(u64, usize), String> {
    let report: Value =
        serde_json::from_str(&c.report).map_err(|e| format!("the report is not JSON: {e}"))?;
    let report =
        serde_json::to_string_pretty(&redactor.value(report)).map_err(|e| e.to_string())?;
    let snapshot = redactor.json(&c.snapshot)?;
    // The manifest and the fixed files are small; the tape is what can grow.
    let fixed = report.len() + snapshot.len() + 64 * 1024;
    c.manifest.cut = cut_to_fit(&mut c.tape, fixed, max);
    let cut = c.manifest.cut.len();
    c.manifest.redact_patterns = redactor.count();
    let tape = redactor.json(&c.tape)?;
    let manifest = redactor.json(&c.manifest)?;
    let mtime = jiff::Timestamp::now().as_second().max(0) as u64;

    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = tempfile::Builder::new()
        .prefix(".prefect-doctor-bundle")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    {
        let gz = flate2::write::GzEncoder::new(tmp.as_file(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, text) in [
            ("manifest.json", &manifest),
            ("report.json", &report),
            ("session.json", &snapshot),
            ("tape.json", &tape),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let gz = tar
            .into_inner()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut f = gz
            .finish()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        f.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    std::fs::metadata(path)
        .map(|m| (m.len(), cut))
        .map_err(|e| format!("cannot read back {}: {e}", path.display()))
}
