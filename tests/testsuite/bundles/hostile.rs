//! Hostile and broken bundles, bombs among them, refused clearly in bounded memory.

use super::*;

/// Writes a gzip'd tar of `entries` (name, kind, bytes) at `path`, names written raw.
fn hostile_tar(path: &Path, entries: &[(&str, tar::EntryType, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, kind, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        // Set the raw name so that `..` and absolute paths get through the builder's own checks.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(*kind);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
            h.set_size(0);
        }
        h.set_cksum();
        b.append(
            &h,
            if *kind == tar::EntryType::Symlink {
                &[][..]
            } else {
                *bytes
            },
        )
        .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_and_broken_bundles_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = br#"{"format": 1, "doctor_version": "0.1.0", "created": "2026-12-04T00:00:00Z", "command_line": [], "collected": [], "left_out": []}"#;
    let newer = br#"{"format": 99, "something": "new"}"#;
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "garbage",
            Box::new(|p: &Path| std::fs::write(p, b"not a bundle at all").unwrap()),
            "not a prefect-doctor bundle",
        ),
        (
            "dotdot",
            Box::new(|p: &Path| {
                hostile_tar(p, &[("../evil.json", tar::EntryType::Regular, b"{}")])
            }),
            "has an absolute path or `..`",
        ),
        (
            "absolute",
            Box::new(|p: &Path| {
                hostile_tar(p, &[("/tmp/evil.json", tar::EntryType::Regular, b"{}")])
            }),
            "has an absolute path or `..`",
        ),
        (
            "symlink",
            Box::new(|p: &Path| hostile_tar(p, &[("tape.json", tar::EntryType::Symlink, b"")])),
            "is a link or a special file",
        ),
        (
            "newer",
            Box::new(move |p: &Path| {
                hostile_tar(p, &[("manifest.json", tar::EntryType::Regular, newer)])
            }),
            "made by a newer prefect-doctor; this one reads format 1",
        ),
        (
            "incomplete",
            Box::new(move |p: &Path| {
                hostile_tar(p, &[("manifest.json", tar::EntryType::Regular, manifest)])
            }),
            "it lacks session.json, tape.json",
        ),
        (
            "huge",
            Box::new(|p: &Path| {
                // A 1 GB file (sparse: nothing is really written).
                let f = std::fs::File::create(p).unwrap();
                f.set_len(1 << 30).unwrap();
            }),
            "larger than any bundle",
        ),
    ];
    for (name, make, expect) in cases {
        let path = d.join(format!("{name}.tar.gz"));
        make(&path);
        let (code, out, err, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string()],
        );
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    // A truncated real-looking bundle: its first half.
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let url = pg.url(APP_USER, CANARY, "prefect");
    let (_, path, _) = bundle(d, &["--database-url", &url, "--only", "db.*"]);
    let bytes = std::fs::read(&path).unwrap();
    let cut = d.join("truncated.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err, _) = run_once_in(
        &BTreeMap::new(),
        &["check", "--from", &cut.display().to_string()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a prefect-doctor bundle"), "{err}");
    // Nothing was written beside the inputs.
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".tar.gz") || n == "evil.json"),
        "{names:?}"
    );
    assert!(!d.join("evil.json").exists() && !d.parent().unwrap().join("evil.json").exists());
}

/// Bytes made on the fly: `head`, then `unit` `count` times, then `tail` (a bomb never held whole).
struct Repeat {
    parts: Vec<(Vec<u8>, u64)>,
    at: usize,
    left: u64,
    pos: usize,
}

impl Repeat {
    fn new(head: &str, unit: &str, count: u64, tail: &str) -> (Repeat, u64) {
        let parts = vec![
            (head.as_bytes().to_vec(), 1),
            (unit.as_bytes().to_vec(), count),
            (tail.as_bytes().to_vec(), 1),
        ];
        let len = parts.iter().map(|(b, n)| b.len() as u64 * n).sum();
        let left = parts[0].1;
        (
            Repeat {
                parts,
                at: 0,
                left,
                pos: 0,
            },
            len,
        )
    }
}

impl std::io::Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.at < self.parts.len() {
            let (unit, _) = &self.parts[self.at];
            if self.left == 0 || unit.is_empty() {
                self.at += 1;
                self.left = self.parts.get(self.at).map_or(0, |p| p.1);
                self.pos = 0;
                continue;
            }
            let take = (unit.len() - self.pos).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&unit[self.pos..self.pos + take]);
            n += take;
            self.pos += take;
            if self.pos == unit.len() {
                self.pos = 0;
                self.left -= 1;
            }
        }
        Ok(n)
    }
}

/// A bundle of the three parts, `bomb` standing in for one of them.
fn bomb_bundle(path: &Path, part: &str, head: &str, unit: &str, count: u64, tail: &str) {
    let manifest = r#"{"format": 1, "doctor_version": "0.1.0", "created": "2026-12-04T00:00:00Z", "command_line": [], "collected": [], "left_out": []}"#;
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    let mut b = tar::Builder::new(gz);
    // The bomb first: it is what the reader meets.
    let mut names = vec![part];
    names.extend(
        ["manifest.json", "session.json", "tape.json"]
            .into_iter()
            .filter(|n| *n != part),
    );
    for name in names {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        if name == part {
            let (reader, len) = Repeat::new(head, unit, count, tail);
            h.set_size(len);
            b.append_data(&mut h, name, reader).unwrap();
        } else {
            let text: &str = match name {
                "manifest.json" => manifest,
                "session.json" => "{}",
                _ => r#"{"postgres_session": null, "postgres": [], "http": []}"#,
            };
            h.set_size(text.len() as u64);
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// The largest resident size of any child this process has waited for, in bytes.
fn children_peak_rss() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    u64::try_from(usage.max_rss()).unwrap_or(0) * 1024
}

/// Small files that unpack into huge JSON: refused (exit 2, one line) before they are parsed,
/// every one in bounded memory.
#[test]
fn bundle_bombs_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let rows = r#"{"postgres_session": null, "postgres": [{"sql": "x", "params": [], "answer": {"rows": [["#;
    let end = "0]]}}], \"http\": []}";
    let cases: [(&str, &str, &str, &str, u64, &str, &str); 6] = [
        // ~60 million zeros in the recorded answers (120 MB unpacked): past the part's cap.
        (
            "zeros-in-tape",
            "tape.json",
            rows,
            "0,",
            60_000_000,
            end,
            "tape.json is 120000107 bytes",
        ),
        // Under the cap, 30 million values: past the count, refused before parsing.
        (
            "values-in-tape",
            "tape.json",
            rows,
            "0,",
            30_000_000,
            end,
            "tape.json holds more than 2000000 values",
        ),
        (
            "zeros-in-manifest",
            "manifest.json",
            r#"{"format": 1, "x": ["#,
            "0,",
            60_000_000,
            "0]}",
            "manifest.json is",
        ),
        (
            "long-string",
            "tape.json",
            r#"{"postgres_session": null, "postgres": [], "http": [], "x": ""#,
            "x",
            50_000_000,
            "\"}",
            "a string longer than",
        ),
        (
            "deep",
            "tape.json",
            "",
            "[",
            100_000,
            "",
            "nesting deeper than",
        ),
        (
            "big-session",
            "session.json",
            "\"",
            "x",
            50_000_000,
            "\"",
            "session.json is",
        ),
    ];
    let mut worst = 0;
    for (name, part, head, unit, count, tail, says) in cases {
        let path = dir.path().join(format!("{name}.tar.gz"));
        bomb_bundle(&path, part, head, unit, count, tail);
        let small = std::fs::metadata(&path).unwrap().len();
        assert!(small < 1024 * 1024, "{name}: {small} bytes is not a bomb");
        let (code, out, err, _) = run_once_in(
            &BTreeMap::new(),
            &["check", "--from", &path.display().to_string()],
        );
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
        worst = worst.max(children_peak_rss());
    }
    eprintln!("the largest child's peak: {} MiB", worst / (1024 * 1024));
    assert!(worst < 256 * 1024 * 1024, "{worst} bytes at the peak");
}

/// Redaction rewrites outside values, never the bundle's structure: a bundle redacted with the
/// words its own format is made of still replays.
#[test]
fn redacting_the_formats_own_words_keeps_the_bundle_readable() {
    let pg = PgServer::start();
    seed(&pg, &Seed::healthy("prefect"));
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url(APP_USER, CANARY, "prefect");
    let mut args = vec!["--database-url", url.as_str(), "--only", "db.*"];
    for word in [
        "postgres", "rows", "Ok", "Err", "sql", "error", "json", "format", "true",
    ] {
        args.extend(["--redact", word]);
    }
    let (code, path, out) = bundle(dir.path(), &args);
    assert_eq!(code, 0, "{out}");
    let files = unpack(&path);
    let tape = String::from_utf8_lossy(&files["tape.json"]).into_owned();
    assert!(
        tape.contains("\"postgres\""),
        "the tape's own keys are kept"
    );
    drop(pg);
    let (code, replayed, err) = replay(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        support::result_in(&replayed, "db.password")["status"],
        "pass"
    );
}
