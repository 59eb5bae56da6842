//! Text from outside (servers, files, flags) is untrusted: before any renderer sees it, control
//! characters are shown visibly ([`escape`]) and its length is capped ([`cap`]). The report passes
//! through [`crate::report::Report::sanitized`], which applies both to every string it holds, so a
//! renderer never receives a raw byte from a server, whatever the check that put it there.

use std::fmt::Write as _;

/// A message line: long enough for any real diagnosis, short enough to keep a report readable.
pub const MAX_MESSAGE: usize = 2_000;
/// One evidence string (a URL, a log line, a server's answer).
pub const MAX_EVIDENCE_STRING: usize = 1_000;
/// Items kept from one evidence list; the rest are counted.
pub const MAX_LIST: usize = 50;
/// A fix, placeholders filled.
pub const MAX_FIX: usize = 16_000;
/// A placeholder value filled into a fix.
pub const MAX_VAR: usize = 4_000;

/// Is `c` shown escaped? C0 and C1 controls, DEL, the line and paragraph separators, the bidi
/// overrides and isolates (which reorder what a terminal shows), and the noncharacters XML refuses.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
}

/// `s` on one line with every control character shown visibly (`\x1b`, `\r`, `\n`, `\u{202e}`).
/// Idempotent: the escapes are plain printable text.
pub fn escape(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// As [`escape`], but line breaks (`\n`) are kept: for the catalog's multi-line fixes, whose lines
/// come from our own words and placeholder values that were escaped when filled.
pub fn escape_multiline(s: &str) -> String {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most `max` bytes at a character boundary, saying how much was cut.
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

/// [`escape`] then [`cap`]: one line of outside text, ready for a report.
pub fn line(s: &str, max: usize) -> String {
    cap(&escape(s), max)
}

/// The first `max` items of a list and, when there were more, "… and N more".
pub fn list<T: AsRef<str>>(items: &[T], max: usize) -> String {
    let mut out = items
        .iter()
        .take(max)
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        let _ = write!(out, " … and {} more", items.len() - max);
    }
    out
}

/// A duration as a person reads it: milliseconds below ten seconds, whole seconds above, never
/// nanoseconds ("2s 2ms 165us 495ns" becomes "2.002s").
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn controls_are_visible_and_escaping_is_idempotent() {
        let s = "a\x1b[2Jb\r\n✔ db.password\x07\u{9b}\u{202e}x\u{7f}";
        let e = escape(s);
        assert_eq!(e, "a\\x1b[2Jb\\r\\n✔ db.password\\x07\\x9b\\u{202e}x\\x7f");
        assert!(!e.chars().any(needs_escape));
        assert_eq!(escape(&e), e);
        assert_eq!(escape_multiline("a\nb\rc"), "a\nb\\rc");
    }

    #[test]
    fn caps_at_a_character_boundary() {
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("ééé", 3), "é… (4 bytes cut)");
        assert_eq!(list(&["a", "b", "c"], 2), "a, b … and 1 more");
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration(Duration::from_nanos(2_002_165_495)), "2.002s");
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::from_millis(90_500)), "1m 30s");
    }
}
