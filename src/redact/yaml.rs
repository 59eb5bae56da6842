//! Where the secrets are in YAML text, even text that does not parse: a values file with a syntax
//! error is shown in the error's snippet, and the values of its secret-named keys must not be.
//!
//! This is a tolerant scanner, not a parser: it knows keys, scalars (plain, quoted, block), flow
//! collections, comments, anchors, tags and aliases, and never fails. A value is secret when its key
//! names one ([`super::is_secret_key`]), at any nesting, in block or flow style, quoted or not; the
//! whole value of such a key is secret (a nested mapping, a list, a multi-line scalar). It errs on
//! the side of masking: in broken text, a key-like scalar after a secret key on the same line is
//! taken as part of the secret.

use super::{is_placeholder, is_secret_key};

/// The byte ranges of `text` that hold the values of secret-named keys.
pub fn secret_spans(text: &str) -> Vec<(usize, usize)> {
    let mut s = Scan {
        t: text,
        b: text.as_bytes(),
        i: 0,
        out: Vec::new(),
        flow: Vec::new(),
        line_start: 0,
        pending: None,
        block_region: None,
        flow_region: None,
        block_text: None,
        last_key: None,
    };
    s.run();
    s.out
}

/// `message` (a parser's words about `text`) with every quoted secret value of `text` masked: a
/// parser quotes what it cites (`"…"`, `'…'`, `` `…` ``). Words of its own that merely equal a
/// value taken as secret stay readable.
pub fn mask_quoted(message: &str, text: &str) -> String {
    let mut out = super::scrub(message);
    for (a, e) in secret_spans(text) {
        for v in text[a..e].lines().map(str::trim).filter(|v| !v.is_empty()) {
            for (open, close) in [('"', '"'), ('\'', '\''), ('`', '`')] {
                let quoted = format!("{open}{v}{close}");
                if out.contains(&quoted) {
                    out = out.replace(&quoted, &format!("{open}{}{close}", super::MASK));
                }
            }
        }
    }
    out
}

/// A secret key was just read: its value comes next.
#[derive(Clone, Copy)]
struct Pending {
    /// The flow depth the key sits at; in flow, the value ends at that depth's `,` or bracket.
    depth: usize,
    /// Where the key's line starts (in block style the value is on the key's line).
    line: usize,
}

struct Scan<'a> {
    t: &'a str,
    b: &'a [u8],
    i: usize,
    out: Vec<(usize, usize)>,
    /// Open flow brackets.
    flow: Vec<u8>,
    line_start: usize,
    pending: Option<Pending>,
    /// In block style, lines indented more than this column belong to a secret key's value.
    block_region: Option<usize>,
    /// In flow style, everything deeper than this depth belongs to a secret key's value.
    flow_region: Option<usize>,
    /// A block scalar's header was read: lines indented more than this column are its text,
    /// secret or not.
    block_text: Option<(usize, bool)>,
    /// (line start, column, secret) of the last key read.
    last_key: Option<(usize, usize, bool)>,
}

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

impl Scan<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    /// Is the byte after `i` a space, a line end or the end (or, in flow, a flow indicator)?
    fn ends_token_after(&self, i: usize) -> bool {
        match self.at(i + 1) {
            None => true,
            Some(c) => {
                is_space(c)
                    || c == b'\n'
                    || c == b'\r'
                    || (!self.flow.is_empty() && is_flow_indicator(c))
            }
        }
    }

    fn in_secret(&self) -> bool {
        self.pending.is_some() || self.block_region.is_some() || self.flow_region.is_some()
    }

    fn line_end(&self, from: usize) -> usize {
        self.t[from..]
            .find('\n')
            .map(|p| p + from)
            .unwrap_or(self.b.len())
    }

    fn push(&mut self, start: usize, end: usize) {
        let v = self.t[start..end].trim_end_matches(['\r', '\n', ' ', '\t']);
        let end = start + v.len();
        if end > start && !is_placeholder(v) {
            self.out.push((start, end));
        }
    }

    fn run(&mut self) {
        self.new_line();
        while self.i < self.b.len() {
            let c = self.b[self.i];
            match c {
                b'\n' => {
                    self.i += 1;
                    self.line_start = self.i;
                    self.new_line();
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'#' if self.i == self.line_start || self.at(self.i - 1).is_some_and(is_space) => {
                    self.i = self.line_end(self.i);
                }
                b'{' | b'[' => {
                    if self.pending.is_some() && self.flow_region.is_none() {
                        self.flow_region = Some(self.flow.len());
                    }
                    if self.flow.is_empty() {
                        // A flow value in block style is the whole value.
                        self.pending = None;
                    }
                    self.flow.push(c);
                    self.i += 1;
                }
                b'}' | b']' => {
                    self.flow.pop();
                    self.close_pending();
                    if self.flow_region.is_some_and(|d| self.flow.len() <= d) {
                        self.flow_region = None;
                        if self.flow.is_empty() {
                            self.pending = None;
                        }
                    }
                    self.i += 1;
                }
                b',' if !self.flow.is_empty() => {
                    self.close_pending();
                    self.i += 1;
                }
                b'-' | b'?' | b':' if self.ends_token_after(self.i) => self.i += 1,
                b'&' | b'!' | b'*' => {
                    // Anchors and tags come before a value; an alias is a value but no secret.
                    let end = self.t[self.i..]
                        .find(|ch: char| {
                            ch.is_whitespace()
                                || (!self.flow.is_empty()
                                    && matches!(ch, ',' | '[' | ']' | '{' | '}'))
                        })
                        .map(|p| p + self.i)
                        .unwrap_or(self.b.len());
                    if c == b'*' && self.flow.is_empty() {
                        self.pending = None;
                    }
                    self.i = end;
                }
                b'|' | b'>' if self.flow.is_empty() => {
                    let col = match self.last_key {
                        Some((line, col, _)) if line == self.line_start => col,
                        _ => self.indent_of_line(),
                    };
                    self.block_text = Some((col, self.in_secret()));
                    self.pending = None;
                    self.i = self.line_end(self.i);
                }
                b'"' | b'\'' => self.quoted(c),
                _ => self.plain(),
            }
        }
    }

    /// A `,` or a closing bracket ends a flow value at the key's depth.
    fn close_pending(&mut self) {
        if self.pending.is_some_and(|p| self.flow.len() <= p.depth) {
            self.pending = None;
        }
    }

    fn indent_of_line(&self) -> usize {
        self.b[self.line_start..]
            .iter()
            .take_while(|c| is_space(**c))
            .count()
    }

    /// At a line's start: block structure is decided by indentation.
    fn new_line(&mut self) {
        let indent = self.indent_of_line();
        let first = self.line_start + indent;
        let end = self.line_end(first);
        let content = self.t[first..end].trim_end_matches('\r');
        if let Some((col, secret)) = self.block_text {
            if content.is_empty() {
                self.i = end;
                return;
            }
            if indent > col {
                if secret {
                    self.push(first, end);
                }
                self.i = end;
                return;
            }
            self.block_text = None;
        }
        if content.is_empty() || content.starts_with('#') || !self.flow.is_empty() {
            return;
        }
        // A list may sit at its key's own indentation (`key:\n- a`).
        let entry = content == "-" || content.starts_with("- ");
        if self
            .block_region
            .is_some_and(|col| indent < col || (indent == col && !entry))
        {
            self.block_region = None;
        }
        // A block-style secret key whose value is on its own line ends with the line.
        if self.pending.is_some_and(|p| p.line != self.line_start) {
            self.pending = None;
        }
    }

    fn quoted(&mut self, q: u8) {
        let col = self.i - self.line_start;
        let start = self.i + 1;
        let mut j = start;
        let mut end = None;
        while j < self.b.len() {
            let c = self.b[j];
            if q == b'"' && c == b'\\' {
                j += 2;
                continue;
            }
            if c == q {
                if q == b'\'' && self.at(j + 1) == Some(b'\'') {
                    j += 2;
                    continue;
                }
                end = Some(j);
                break;
            }
            j += 1;
        }
        // An unterminated quote runs to the end: the parser reads it so too.
        let close = end.unwrap_or(self.b.len()).min(self.b.len());
        let next = end.map(|e| e + 1).unwrap_or(self.b.len());
        // Line starts crossed inside the scalar.
        if let Some(nl) = self.t[start..close].rfind('\n') {
            self.line_start = start + nl + 1;
        }
        let mut k = next;
        while self.at(k).is_some_and(is_space) {
            k += 1;
        }
        let is_key = self.at(k) == Some(b':') && !self.block_value_on_key_line();
        self.scalar(start, close, col, is_key);
        // A quoted key's `:` may touch the value (`{"a":"b"}`).
        self.i = if is_key { k + 1 } else { next };
    }

    /// In block style, a second key on the line of a secret key is broken YAML: taken as the value.
    fn block_value_on_key_line(&self) -> bool {
        self.flow.is_empty() && self.pending.is_some_and(|p| p.line == self.line_start)
    }

    fn plain(&mut self) {
        let col = self.i - self.line_start;
        let start = self.i;
        let in_flow = !self.flow.is_empty();
        let mut j = start;
        let mut is_key = false;
        while j < self.b.len() {
            let c = self.b[j];
            if c == b'\n' {
                break;
            }
            if c == b':' && self.ends_token_after(j) {
                is_key = true;
                break;
            }
            if c == b'#' && j > start && is_space(self.b[j - 1]) {
                break;
            }
            if in_flow && is_flow_indicator(c) {
                break;
            }
            j += 1;
        }
        if is_key && self.block_value_on_key_line() {
            is_key = false;
        }
        self.scalar(start, j, col, is_key);
        // A key's `:` is read as an indicator next.
        self.i = j.max(start + 1);
    }

    fn scalar(&mut self, start: usize, end: usize, col: usize, is_key: bool) {
        if is_key {
            let key = self.t[start..end].trim();
            let secret = is_secret_key(key);
            self.last_key = Some((self.line_start, col, secret));
            if self.pending.is_some() && !self.flow.is_empty() {
                // A key-like word inside a secret flow value is part of it.
                self.push(start, end);
                return;
            }
            if secret {
                self.pending = Some(Pending {
                    depth: self.flow.len(),
                    line: self.line_start,
                });
                if self.flow.is_empty() && self.block_region.is_none() {
                    self.block_region = Some(col);
                }
            }
            return;
        }
        if self.in_secret() {
            self.push(start, end);
        }
        if self.flow.is_empty() {
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        let mut out = String::new();
        let mut last = 0;
        for (s, e) in secret_spans(text) {
            out.push_str(&text[last..s]);
            out.push_str("****");
            last = e;
        }
        out.push_str(&text[last..]);
        out
    }

    #[test]
    fn block_style() {
        assert_eq!(
            masked("postgresql:\n  postgresqlPassword: S3cret\n  user: prefect\n"),
            "postgresql:\n  postgresqlPassword: ****\n  user: prefect\n"
        );
        assert_eq!(masked("password: 'a''b' # c\n"), "password: '****' # c\n");
        assert_eq!(
            masked("\"password\": \"a\\\"b\"\n"),
            "\"password\": \"****\"\n"
        );
        assert_eq!(masked("token: &t abc\nx: *t\n"), "token: &t ****\nx: *t\n");
        assert_eq!(masked("password: !!str abc\n"), "password: !!str ****\n");
        assert_eq!(
            masked("existingSecret: s\npasswordKey: k\n"),
            "existingSecret: s\npasswordKey: k\n"
        );
        assert_eq!(masked("password: <PASSWORD>\n"), "password: <PASSWORD>\n");
        assert_eq!(masked("password: abc=\n"), "password: ****\n");
    }

    #[test]
    fn a_secret_value_is_whole() {
        // A multi-line plain scalar, a nested mapping, a list, a block scalar.
        assert_eq!(
            masked("password: ab\n  cd\nx: 1\n"),
            "password: ****\n  ****\nx: 1\n"
        );
        assert_eq!(
            masked("credentials:\n  user: u1\n  pass: p1\nx: 1\n"),
            "credentials:\n  user: ****\n  pass: ****\nx: 1\n"
        );
        assert_eq!(
            masked("tokens:\n- t1\n- t2\nx: 1\n"),
            "tokens:\n- ****\n- ****\nx: 1\n"
        );
        assert_eq!(
            masked("privateKey: |\n  L1\n\n  L2\nx: 1\n"),
            "privateKey: |\n  ****\n\n  ****\nx: 1\n"
        );
        assert_eq!(
            masked("note: |\n  password: no\nx: 1\n"),
            "note: |\n  password: no\nx: 1\n"
        );
    }

    #[test]
    fn flow_style() {
        assert_eq!(
            masked("postgresql: {postgresqlPassword: S3cret, user: bob}\n"),
            "postgresql: {postgresqlPassword: ****, user: bob}\n"
        );
        assert_eq!(
            masked("a: {\"password\":\"x y\", b: [1, {token: t}]}\n"),
            "a: {\"password\":\"****\", b: [1, {token: ****}]}\n"
        );
        assert_eq!(
            masked("password: {a: b, c: [d]}\ne: f\n"),
            "password: {a: ****, c: [****]}\ne: f\n"
        );
        assert_eq!(
            masked("pg: {\n  user: u,\n  password:\n    S3cret x,\n  db: d}\n"),
            "pg: {\n  user: u,\n  password:\n    ****,\n  db: d}\n"
        );
    }

    #[test]
    fn broken_lines_still_mask() {
        // The error on the secret's own line.
        assert_eq!(masked("password: S3cret: oops\n"), "password: ****: ****\n");
        assert_eq!(
            masked("postgresql: {postgresqlPassword: S3cret, x: [}\n"),
            "postgresql: {postgresqlPassword: ****, x: [}\n"
        );
        assert_eq!(masked("password: \"S3cret\n"), "password: \"****\n");
        // Never panics on any prefix of a tricky document.
        let doc = "a: {\"b\": 'c''d', password: [e, f], g: |\n  h\n}\n- &x *y !z\n? k\n: v\n";
        for n in 0..=doc.len() {
            if doc.is_char_boundary(n) {
                let _ = secret_spans(&doc[..n]);
            }
        }
    }
}
