//! Python's tokens, as far as literals go: numbers in every notation, strings and bytes with their
//! prefixes and escapes, names, operators; comments and line continuations skipped.

use std::fmt::Write as _;

use super::Py;

/// Python's parser gives up on deeper nesting ("too many nested parentheses").
pub(super) const MAX_NESTING: usize = 200;
/// Python 3.11 refuses to convert longer decimal integers (`sys.get_int_max_str_digits()`).
pub(super) const MAX_INT_DIGITS: usize = 4300;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(Py),
    Str(String),
    Bytes(Vec<u8>),
    Name(String),
    Op(char),
    Ellipsis,
}

pub(super) fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    // A top-level logical line with tokens has ended: another token is a syntax error.
    let mut line_done = false;
    // At the start of a physical line outside brackets, and whether it was indented so far.
    let mut line_start = true;
    let mut indented = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                if line_start {
                    indented = true;
                }
                i += 1;
            }
            // A form feed resets the indentation count, as in Python's tokenizer.
            '\x0c' => {
                indented = false;
                i += 1;
            }
            '\n' | '\r' => {
                if depth == 0 {
                    if !toks.is_empty() {
                        line_done = true;
                    }
                    line_start = true;
                    indented = false;
                }
                i += 1;
            }
            '#' => {
                while i < chars.len() && !matches!(chars[i], '\n' | '\r') {
                    i += 1;
                }
            }
            '\\' => {
                // A line continuation: backslash, newline, and more to come.
                i += match chars.get(i + 1) {
                    Some('\n') => 2,
                    Some('\r') if chars.get(i + 2) == Some(&'\n') => 3,
                    Some('\r') => 2,
                    _ => return None,
                };
                if i >= chars.len() {
                    return None;
                }
                line_start = false;
            }
            _ => {
                // A second top-level line, or an indented one (IndentationError).
                if line_done || (line_start && indented) {
                    return None;
                }
                line_start = false;
                let (tok, next) = token(&chars, i)?;
                match &tok {
                    Tok::Op('(' | '[' | '{') => {
                        depth += 1;
                        if depth >= MAX_NESTING {
                            return None;
                        }
                    }
                    Tok::Op(')' | ']' | '}') => depth = depth.checked_sub(1)?,
                    _ => {}
                }
                // Implicit concatenation of adjacent string (or bytes) literals.
                match (toks.last_mut(), &tok) {
                    (Some(Tok::Str(a)), Tok::Str(b)) => a.push_str(b),
                    (Some(Tok::Bytes(a)), Tok::Bytes(b)) => a.extend_from_slice(b),
                    (Some(Tok::Str(_)), Tok::Bytes(_)) | (Some(Tok::Bytes(_)), Tok::Str(_)) => {
                        return None;
                    }
                    _ => toks.push(tok),
                }
                i = next;
            }
        }
    }
    (depth == 0).then_some(toks)
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn token(chars: &[char], i: usize) -> Option<(Tok, usize)> {
    let c = chars[i];
    if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
        return number(chars, i);
    }
    if c == '.' {
        if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
            return Some((Tok::Ellipsis, i + 3));
        }
        return None;
    }
    if is_ident_start(c) {
        let mut j = i;
        while j < chars.len() && is_ident_char(chars[j]) {
            j += 1;
        }
        let word: String = chars[i..j].iter().collect();
        if matches!(chars.get(j), Some('\'' | '"')) {
            let lower = word.to_ascii_lowercase();
            let (raw, bytes) = match lower.as_str() {
                "r" => (true, false),
                "u" => (false, false),
                "b" => (false, true),
                "br" | "rb" => (true, true),
                // f-strings are not literals (a JoinedStr).
                _ => return None,
            };
            return string(chars, j, raw, bytes);
        }
        return Some((Tok::Name(word), j));
    }
    if c == '\'' || c == '"' {
        return string(chars, i, false, false);
    }
    if "()[]{},:+-".contains(c) {
        return Some((Tok::Op(c), i + 1));
    }
    None
}

/// Digits with single underscores between them, from `i`; returns the digits and the end.
fn digit_part(chars: &[char], mut i: usize, ok: impl Fn(char) -> bool) -> Option<(String, usize)> {
    let mut out = String::new();
    if !chars.get(i).is_some_and(|c| ok(*c)) {
        return None;
    }
    while i < chars.len() {
        if ok(chars[i]) {
            out.push(chars[i]);
            i += 1;
        } else if chars[i] == '_' && chars.get(i + 1).is_some_and(|c| ok(*c)) {
            i += 1;
        } else {
            break;
        }
    }
    Some((out, i))
}

fn number(chars: &[char], i: usize) -> Option<(Tok, usize)> {
    let end_ok = |j: usize| !chars.get(j).is_some_and(|c| is_ident_char(*c) || *c == '.');
    if chars[i] == '0'
        && let Some(&p) = chars.get(i + 1)
    {
        let radix = match p {
            'x' | 'X' => 16,
            'o' | 'O' => 8,
            'b' | 'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            // `0x_1f` is allowed: an underscore may follow the prefix.
            let start = if chars.get(i + 2) == Some(&'_') {
                i + 3
            } else {
                i + 2
            };
            let (digits, j) = digit_part(chars, start, |c| c.is_digit(radix))?;
            if !end_ok(j) {
                return None;
            }
            return Some((Tok::Num(Py::Int(to_decimal(&digits, radix)?)), j));
        }
    }
    let (int_part, mut j) = if chars[i] == '.' {
        (String::new(), i)
    } else {
        digit_part(chars, i, |c| c.is_ascii_digit())?
    };
    let mut is_float = false;
    let mut text = int_part.clone();
    if chars.get(j) == Some(&'.') {
        is_float = true;
        text.push('.');
        j += 1;
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            let (frac, k) = digit_part(chars, j, |c| c.is_ascii_digit())?;
            text.push_str(&frac);
            j = k;
        } else if chars.get(j) == Some(&'_') {
            return None;
        }
    }
    if matches!(chars.get(j), Some('e' | 'E')) {
        let mut k = j + 1;
        let mut exp = String::from("e");
        if let Some(&s @ ('+' | '-')) = chars.get(k) {
            exp.push(s);
            k += 1;
        }
        let (digits, k) = digit_part(chars, k, |c| c.is_ascii_digit())?;
        exp.push_str(&digits);
        text.push_str(&exp);
        is_float = true;
        j = k;
    }
    if matches!(chars.get(j), Some('j' | 'J')) {
        let v: f64 = text.parse().ok()?;
        let j = j + 1;
        if !end_ok(j) {
            return None;
        }
        return Some((Tok::Num(Py::Complex(0.0, v)), j));
    }
    if !end_ok(j) {
        return None;
    }
    if is_float {
        return Some((Tok::Num(Py::Float(text.parse().ok()?)), j));
    }
    // "00" is zero; "01" is a syntax error.
    let trimmed = int_part.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some((Tok::Num(Py::Int("0".into())), j));
    }
    if int_part.starts_with('0') || trimmed.len() > MAX_INT_DIGITS {
        return None;
    }
    Some((Tok::Num(Py::Int(trimmed.to_string())), j))
}

/// Digits in `radix` to decimal text; `None` past Python's printable size.
fn to_decimal(digits: &str, radix: u32) -> Option<String> {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    let bits_per_digit = match radix {
        16 => 4,
        8 => 3,
        _ => 1,
    };
    // log10(2) ≈ 0.30103: refuse what would print to more than Python's limit.
    if digits.len() * bits_per_digit * 30103 / 100000 > MAX_INT_DIGITS {
        return None;
    }
    // Little-endian limbs of 10^9.
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix)?);
        for limb in &mut limbs {
            let v = *limb * u64::from(radix) + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut out = limbs.last().map(u64::to_string).unwrap_or_default();
    for limb in limbs.iter().rev().skip(1) {
        let _ = write!(out, "{limb:09}");
    }
    Some(out)
}

fn string(chars: &[char], i: usize, raw: bool, bytes: bool) -> Option<(Tok, usize)> {
    let q = chars[i];
    let triple = chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut out = String::new();
    loop {
        let c = *chars.get(j)?;
        if c == q && (!triple || (chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q))) {
            j += if triple { 3 } else { 1 };
            break;
        }
        if !triple && matches!(c, '\n' | '\r') {
            return None;
        }
        if bytes && !c.is_ascii() {
            return None;
        }
        if c != '\\' {
            out.push(c);
            j += 1;
            continue;
        }
        let n = *chars.get(j + 1)?;
        if raw {
            // A raw string keeps the backslash, and the escaped character cannot end the string.
            out.push('\\');
            out.push(n);
            j += 2;
            continue;
        }
        j += 2;
        match n {
            '\n' => {}
            '\r' => {
                if chars.get(j) == Some(&'\n') {
                    j += 1;
                }
            }
            '\\' | '\'' | '"' => out.push(n),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = n.to_digit(8)?;
                for _ in 0..2 {
                    match chars.get(j).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            j += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v)?);
            }
            'x' | 'u' | 'U' if !(bytes && n != 'x') => {
                let len = match n {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.get(j..j + len)?.iter().collect();
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                j += len;
            }
            // Named escapes need Unicode's name table: not modelled (see the module docs).
            'N' if !bytes => return None,
            other => {
                // An unknown escape keeps its backslash (a DeprecationWarning in Python).
                out.push('\\');
                out.push(other);
            }
        }
    }
    if bytes {
        // Octal escapes above 0xff are a ValueError for bytes; every char here is below 0x100.
        let b: Option<Vec<u8>> = out.chars().map(|c| u8::try_from(c as u32).ok()).collect();
        return Some((Tok::Bytes(b?), j));
    }
    Some((Tok::Str(out), j))
}
