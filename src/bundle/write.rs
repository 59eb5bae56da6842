//! Writes a bundle: every file redacted (the run's registered secrets and credential shapes, then the
//! `--redact` patterns), kept under `--max-size` by cutting the largest recorded answers first (the
//! manifest names each), and written to a temporary file renamed into place.

use std::path::Path;

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

    /// Every string value of `v` redacted (keys are kept: a report's and a values file's keys
    /// are structure), without recursion.
    pub fn value(&self, v: Value) -> Value {
        let mut root = v;
        let mut stack: Vec<&mut Value> = vec![&mut root];
        while let Some(node) = stack.pop() {
            match node {
                Value::String(s) => *s = self.text(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => stack.extend(map.values_mut()),
                _ => {}
            }
        }
        root
    }

    /// `data` as redacted, pretty JSON: its strings from outside redacted, its structure (field
    /// and variant names, map keys, our own statements) kept, so it reads back as its type.
    pub fn json<T: Serialize>(&self, data: &T) -> Result<String, String> {
        let v = self.typed(data)?;
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
    }

    /// As [`Redactor::json`], as a value.
    pub fn typed<T: Serialize>(&self, data: &T) -> Result<Value, String> {
        super::redacting::to_value(data, &|s| self.text(s)).map_err(|e| e.to_string())
    }
}

/// The bundle's parts before they are redacted and written.
pub struct Contents {
    pub manifest: Manifest,
    /// The files for people (values, pods, events, logs, the database's facts).
    pub people: Vec<super::people::File>,
    /// The live run's JSON report.
    pub report: String,
    pub snapshot: Snapshot,
    pub tape: Tape,
}

/// Room kept for `manifest.json`, whose list of cut parts is capped to fit in it.
const MANIFEST_ROOM: usize = 64 * 1024;
/// The most cut parts the manifest names one by one.
const MAX_CUT_NAMED: usize = 100;

/// Cuts the largest recorded answers until the files fit `max` bytes (before compression, so the
/// bundle surely fits, packed or unpacked); `fixed` is what the other files take. Returns what was
/// cut. Each answer is measured once; the tape is measured again only to confirm.
fn cut_to_fit(tape: &mut Tape, fixed: usize, max: u64) -> Vec<String> {
    let len = |v: Result<String, serde_json::Error>| v.map(|s| s.len()).unwrap_or(0);
    let mut total = fixed + len(serde_json::to_string(tape));
    if total as u64 <= max {
        return Vec::new();
    }
    // (bytes, which list, index), the largest first.
    let mut entries: Vec<(usize, u8, usize)> = Vec::new();
    entries.extend((0..tape.kube.len()).map(|i| (len(serde_json::to_string(&tape.kube[i])), 0, i)));
    entries.extend(
        (0..tape.postgres.len()).map(|i| (len(serde_json::to_string(&tape.postgres[i])), 1, i)),
    );
    entries.extend((0..tape.http.len()).map(|i| (len(serde_json::to_string(&tape.http[i])), 2, i)));
    entries.sort_by(|a, b| b.cmp(a));
    let mut gone: [Vec<usize>; 3] = Default::default();
    let mut cut = Vec::new();
    for (bytes, list, i) in entries {
        if total as u64 <= max {
            break;
        }
        // The answer and its comma.
        total = total.saturating_sub(bytes + 1);
        gone[usize::from(list)].push(i);
        cut.push(match list {
            0 => format!(
                "the cluster's answer to {} {} ({bytes} bytes)",
                tape.kube[i].method, tape.kube[i].uri
            ),
            1 => format!(
                "the answer to {:?} ({bytes} bytes)",
                crate::untrusted::cap(&tape.postgres[i].sql, 80)
            ),
            _ => format!(
                "the answer to {} {} ({bytes} bytes)",
                tape.http[i].request.method, tape.http[i].request.url
            ),
        });
    }
    fn drop_indices<T>(v: &mut Vec<T>, gone: &[usize]) {
        let gone: std::collections::BTreeSet<usize> = gone.iter().copied().collect();
        let mut i = 0;
        v.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
    }
    drop_indices(&mut tape.kube, &gone[0]);
    drop_indices(&mut tape.postgres, &gone[1]);
    drop_indices(&mut tape.http, &gone[2]);
    cut
}

/// Takes the largest non-empty file for people of a kind (a log or not) out of `people` and
/// `collected`; says what was cut.
fn cut_person(
    people: &mut Vec<(String, String, bool)>,
    collected: &mut Vec<super::Collected>,
    logs: bool,
) -> Option<String> {
    let (i, _) = people
        .iter()
        .enumerate()
        .filter(|(_, (_, t, log))| *log == logs && !t.is_empty())
        .max_by_key(|(_, (_, t, _))| t.len())?;
    let (name, text, _) = people.remove(i);
    collected.retain(|f| f.file != name);
    let kind = if logs { "the log" } else { "the file" };
    Some(format!("{kind} {name} ({} bytes)", text.len()))
}

/// At most [`MAX_CUT_NAMED`] parts named, then how many more.
fn name_cut(mut cut: Vec<String>) -> Vec<String> {
    if cut.len() > MAX_CUT_NAMED {
        let more = cut.len() - MAX_CUT_NAMED;
        cut.truncate(MAX_CUT_NAMED);
        cut.push(format!("and {more} smaller parts more"));
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
    // The people's files, redacted (JSON ones string by string, so that they stay JSON).
    let mut people: Vec<(String, String, bool)> = c
        .people
        .iter()
        .map(|f| {
            let text = if f.name.ends_with(".json") {
                serde_json::from_str::<Value>(&f.text)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&redactor.value(v)).ok())
                    .unwrap_or_else(|| redactor.text(&f.text))
            } else {
                redactor.text(&f.text)
            };
            (f.name.clone(), text, f.log)
        })
        .collect();
    // Measured as written, after redaction (which can change lengths): the largest logs are cut
    // first, then the largest recorded answers.
    let mut tape: Tape = redactor
        .typed(&c.tape)
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        .map_err(|e| format!("the recorded answers: {e}"))?;
    let mut cut_parts = Vec::new();
    let people_size =
        |p: &[(String, String, bool)]| p.iter().map(|(_, t, _)| t.len()).sum::<usize>();
    let others = report.len() + snapshot.len() + MANIFEST_ROOM;
    if others as u64 > max {
        return Err(format!(
            "nothing written: --max-size {max} bytes cannot hold even the report and the session \
             ({others} bytes with room for the manifest)"
        ));
    }
    let tape_size = |t: &Tape| serde_json::to_string(t).map(|s| s.len()).unwrap_or(0);
    let size = tape_size(&tape);
    while (others + people_size(&people) + size) as u64 > max {
        let Some(said) = cut_person(&mut people, &mut c.manifest.collected, true) else {
            break;
        };
        cut_parts.push(said);
    }
    cut_parts.extend(cut_to_fit(&mut tape, others + people_size(&people), max));
    let size = tape_size(&tape);
    while (others + people_size(&people) + size) as u64 > max {
        let Some(said) = cut_person(&mut people, &mut c.manifest.collected, false) else {
            break;
        };
        cut_parts.push(said);
    }
    let cut_logs = cut_parts;
    let cut = cut_logs.len();
    c.manifest.cut = name_cut(cut_logs);
    c.manifest.redact_patterns = redactor.count();
    // Compact: the tape is for the checks; the files for people are pretty.
    let tape = serde_json::to_string(&tape).map_err(|e| e.to_string())?;
    let manifest = redactor.json(&c.manifest)?;
    let mtime = jiff::Timestamp::now().as_second().max(0) as u64;

    let parts: Vec<(&str, &String)> = [
        ("manifest.json", &manifest),
        ("report.json", &report),
        ("session.json", &snapshot),
        ("tape.json", &tape),
    ]
    .into_iter()
    .chain(people.iter().map(|(n, t, _)| (n.as_str(), t)))
    .collect();
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    // A regular file (or none) is replaced whole by renaming a finished one over it; a FIFO that
    // a process reads or a character device (/dev/stdout) is written into as it is; anything else
    // is refused. Never is a special file replaced by a regular one.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if special {
        let sink = crate::bounded::open_for_write(path, false, "--output-file")?;
        let mut counted = Counted::new(sink.file);
        pack(&mut counted, &parts, mtime).map_err(|e| cannot(&e))?;
        return Ok((counted.bytes, cut));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = tempfile::Builder::new()
        .prefix(".prefect-doctor-bundle")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| cannot(&e))?;
    pack(tmp.as_file(), &parts, mtime).map_err(|e| cannot(&e))?;
    tmp.persist(path).map_err(|e| cannot(&e.error))?;
    std::fs::metadata(path)
        .map(|m| (m.len(), cut))
        .map_err(|e| format!("cannot read back {}: {e}", path.display()))
}

/// The gzip'd tar of `parts` into `w`.
fn pack<W: std::io::Write>(w: W, parts: &[(&str, &String)], mtime: u64) -> std::io::Result<()> {
    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, text) in parts {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, text.as_bytes())?;
    }
    let mut out = tar.into_inner()?.finish()?;
    out.flush()
}

/// A writer that counts what went through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted { inner, bytes: 0 }
    }
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
