//! A line of the user's own file, shown under an error with a caret at the column: secrets masked
//! before the line is escaped or cut, so that no part of one is shown, and the caret moved with them.

use super::{MASK, SECRETS, auth_values, pair_values, url_passwords, yaml};

/// Characters of the line shown at the most; a longer line is shown as a window around the column.
pub const WIDTH: usize = 120;

/// Line `line` (1-based) of the YAML `text`, for an error at `column` (1-based, in characters):
/// `12 | <the line>` and `   |      ^` on the next line, or `None` when there is no such line.
///
/// Masked, each as `****` (the caret moved to match, and a note saying so): the values of
/// secret-named keys (in the whole document: a multi-line flow mapping's value on a later line
/// too), the passwords of URLs, `password=…`-style pairs, authorization values, and every secret
/// registered so far. Control characters are shown escaped. Masking comes first, so a window or
/// cut never shows part of a secret.
pub fn yaml_line(text: &str, line: usize, column: usize) -> Option<String> {
    let start = line_start(text, line)?;
    let end = text[start..]
        .find('\n')
        .map(|e| e + start)
        .unwrap_or(text.len());
    let shown = text[start..end].trim_end_matches('\r');
    let end = start + shown.len();

    let mut spans: Vec<(usize, usize)> = yaml::secret_spans(text)
        .into_iter()
        .filter(|&(s, e)| s < end && e > start)
        .map(|(s, e)| (s.max(start) - start, e.min(end) - start))
        .collect();
    // The line alone as well: where the document's structure is broken beyond reading, the line's
    // own `key: value` still tells.
    spans.extend(yaml::secret_spans(shown));
    spans.extend(url_passwords(shown));
    spans.extend(auth_values(shown));
    spans.extend(pair_values(shown));
    spans.extend(registered_in(shown));
    Some(render(shown, line, column, spans))
}

/// Byte offset of line `n` (1-based).
fn line_start(text: &str, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let mut at = 0;
    for _ in 1..n {
        at += text[at..].find('\n')? + 1;
    }
    Some(at)
}

/// Where the registered secrets occur in `line`.
fn registered_in(line: &str) -> Vec<(usize, usize)> {
    let list = match SECRETS.read() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = Vec::new();
    for s in list.iter() {
        let mut from = 0;
        while let Some(p) = line[from..].find(s.as_str()) {
            out.push((from + p, from + p + s.len()));
            from += p + s.len();
        }
    }
    out
}

fn render(line: &str, n: usize, column: usize, mut spans: Vec<(usize, usize)>) -> String {
    spans.retain(|(s, e)| s < e);
    spans.sort_unstable();
    // Merged, so overlapping findings make one mask.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let masked = !merged.is_empty();
    let target = column.max(1) - 1;
    let mut shown: Vec<char> = Vec::with_capacity(line.len());
    let mut caret = None;
    let mut spans = merged.into_iter().peekable();
    // Where the mask of the span being passed starts in `shown`.
    let mut mask_at: Option<(usize, usize)> = None;
    for (index, (at, c)) in line.char_indices().enumerate() {
        while spans.peek().is_some_and(|&(_, e)| e <= at) {
            spans.next();
        }
        let here = match spans.peek() {
            Some(&(s, _)) if s <= at => match mask_at {
                Some((span_start, shown_at)) if span_start == s => shown_at,
                _ => {
                    mask_at = Some((s, shown.len()));
                    shown.extend(MASK.chars());
                    shown.len() - MASK.len()
                }
            },
            _ => {
                let here = shown.len();
                shown.extend(crate::untrusted::escape(&c.to_string()).chars());
                here
            }
        };
        if index == target {
            caret = Some(here);
        }
    }
    // A column past the end (a missing closing bracket) points just after the line.
    let caret = caret.unwrap_or(shown.len());
    let (from, to) = if shown.len() <= WIDTH {
        (0, shown.len())
    } else {
        let from = caret.saturating_sub(WIDTH / 2).min(shown.len() - WIDTH);
        (from, from + WIDTH)
    };
    let mut text: String = shown[from..to].iter().collect();
    let mut caret_at = caret - from;
    if from > 0 {
        text.insert(0, '…');
        caret_at += 1;
    }
    if to < shown.len() {
        text.push('…');
    }
    let gutter = " ".repeat(n.to_string().len());
    let note = if masked {
        format!(" (secrets on this line are shown as {MASK})")
    } else {
        String::new()
    };
    format!("{n} | {text}\n{gutter} | {}^{note}", " ".repeat(caret_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caret_under(snippet: &str) -> (String, String) {
        let mut lines = snippet.lines();
        let shown = lines
            .next()
            .unwrap()
            .split_once(" | ")
            .unwrap()
            .1
            .to_string();
        let marker = lines.next().unwrap().split_once(" | ").unwrap().1;
        let col = marker.find('^').unwrap();
        let under: String = shown.chars().skip(col).collect();
        (shown, under)
    }

    #[test]
    fn the_caret_follows_the_mask() {
        let text = "a: 1\npostgresql: {postgresqlPassword: S3cret-canary, user: [x}\n";
        let col = text.lines().nth(1).unwrap().find('}').unwrap() + 1;
        let s = yaml_line(text, 2, col).unwrap();
        assert!(!s.contains("S3cret"), "{s}");
        let (shown, under) = caret_under(&s);
        assert_eq!(shown, "postgresql: {postgresqlPassword: ****, user: [x}");
        assert_eq!(under, "}");
        assert!(s.contains("shown as ****"), "{s}");
        // A caret inside the secret points at its mask.
        let inside = text.lines().nth(1).unwrap().find("canary").unwrap() + 1;
        let (_, under) = caret_under(&yaml_line(text, 2, inside).unwrap());
        assert!(under.starts_with("****"), "{under}");
    }

    #[test]
    fn urls_and_later_lines_of_a_flow_mapping() {
        let text = "db: {\n  password:\n    hunter2-canary x, y: ]\n}\n";
        let s = yaml_line(text, 3, 20).unwrap();
        assert!(!s.contains("hunter2"), "{s}");
        let s = yaml_line("url: postgres://u:pw-canary@h/db: x\n", 1, 30).unwrap();
        assert!(!s.contains("pw-canary"), "{s}");
        assert!(yaml_line("a: 1\n", 3, 1).is_none());
    }

    #[test]
    fn a_long_line_is_a_window_around_the_column_masked_first() {
        let secret = "Z".repeat(200);
        let text = format!("{{a: {}, password: {secret}, b: c]\n", "x".repeat(80));
        let col = text.find(']').unwrap() + 1;
        let s = yaml_line(&text, 1, col).unwrap();
        assert!(!s.contains("ZZ"), "{s}");
        let (shown, under) = caret_under(&s);
        assert_eq!(under, "]");
        assert!(shown.chars().count() <= WIDTH + 2, "{shown}");
        // Escaped control characters keep the caret in place.
        let s = yaml_line("a:\t\"b\x1b\" ]\n", 1, 9).unwrap();
        let (shown, under) = caret_under(&s);
        assert_eq!((shown.as_str(), under.as_str()), ("a:\\t\"b\\x1b\" ]", "]"));
    }
}
