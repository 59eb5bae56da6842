//! The Python values Prefect 1.x's configuration is made of, and the two Python behaviours its loader
//! depends on: `string_to_type` (every string setting goes through `ast.literal_eval`, so `"4200"` is
//! the integer 4200 and `"true"` is `True`) and `str()` (how a value reads when it is interpolated into
//! another, e.g. a password into `connection_url`).
//!
//! `literal_eval` is implemented for what it accepts in Python 3.11: numbers in every notation
//! (underscores, hex/octal/binary, exponents, imaginary parts with `+`/`-`), strings and bytes with
//! their prefixes, escapes and implicit concatenation, `True`/`False`/`None`/`...`, tuples, lists,
//! dicts, sets and `set()`, one unary sign on a number, comments and line continuations. Anything else
//! is not a literal and the text stays a string, as in Python. Nesting is parsed with an explicit stack
//! (Python's parser gives up at 200 levels, and so does this one) and integers are kept as decimal text.
//! Not modelled, so treated as "not a literal": `\N{…}` named escapes, integers of more than 4,300 digits
//! (Python refuses to convert them too). A set's printed order is Python's hash order, which is not
//! modelled: [`Py::exactly_printable`] says when a value's text may differ from Python's.

use std::fmt::Write as _;

/// A Python value, as far as configuration values go.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    Str(String),
    /// Decimal digits with an optional leading `-`, normalized (no leading zeros).
    Int(String),
    Float(f64),
    Complex(f64, f64),
    Bool(bool),
    None,
    Ellipsis,
    Bytes(Vec<u8>),
    List(Vec<Py>),
    Tuple(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    Set(Vec<Py>),
    /// A TOML date or time (toml 0.10 makes `datetime` objects): its `str()` and `repr()`.
    Date {
        text: String,
        repr: String,
    },
}

impl Py {
    /// Python's type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Py::Str(_) => "str",
            Py::Int(_) => "int",
            Py::Float(_) => "float",
            Py::Complex(..) => "complex",
            Py::Bool(_) => "bool",
            Py::None => "NoneType",
            Py::Ellipsis => "ellipsis",
            Py::Bytes(_) => "bytes",
            Py::List(_) => "list",
            Py::Tuple(_) => "tuple",
            Py::Dict(_) => "dict",
            Py::Set(_) => "set",
            Py::Date { .. } => "datetime",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Py::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python's truth value (`api_server or config.cloud.api` depends on it).
    pub fn truthy(&self) -> bool {
        match self {
            Py::Str(s) => !s.is_empty(),
            Py::Int(i) => i != "0",
            Py::Float(f) => *f != 0.0,
            Py::Complex(r, i) => *r != 0.0 || *i != 0.0,
            Py::Bool(b) => *b,
            Py::None => false,
            Py::Ellipsis | Py::Date { .. } => true,
            Py::Bytes(b) => !b.is_empty(),
            Py::List(v) | Py::Tuple(v) | Py::Set(v) => !v.is_empty(),
            Py::Dict(v) => !v.is_empty(),
        }
    }

    /// `str(value)`.
    pub fn py_str(&self) -> String {
        match self {
            Py::Str(s) => s.clone(),
            Py::Date { text, .. } => text.clone(),
            other => other.py_repr(),
        }
    }

    /// `repr(value)`.
    pub fn py_repr(&self) -> String {
        let mut out = String::new();
        // Iterative: a value nested 200 deep costs no stack.
        enum Step<'a> {
            Value(&'a Py),
            Text(&'static str),
        }
        fn seq<'a>(
            open: &'static str,
            close: &'static str,
            items: &'a [Py],
            stack: &mut Vec<Step<'a>>,
        ) {
            stack.push(Step::Text(close));
            for (i, item) in items.iter().enumerate().rev() {
                stack.push(Step::Value(item));
                if i > 0 {
                    stack.push(Step::Text(", "));
                }
            }
            stack.push(Step::Text(open));
        }
        let mut stack = vec![Step::Value(self)];
        while let Some(step) = stack.pop() {
            let v = match step {
                Step::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Step::Value(v) => v,
            };
            match v {
                Py::Str(s) => out.push_str(&repr_str(s)),
                Py::Int(i) => out.push_str(i),
                Py::Float(f) => out.push_str(&repr_float(*f)),
                Py::Complex(r, i) => out.push_str(&repr_complex(*r, *i)),
                Py::Bool(true) => out.push_str("True"),
                Py::Bool(false) => out.push_str("False"),
                Py::None => out.push_str("None"),
                Py::Ellipsis => out.push_str("Ellipsis"),
                Py::Bytes(b) => out.push_str(&repr_bytes(b)),
                Py::Date { repr, .. } => out.push_str(repr),
                Py::List(items) => seq("[", "]", items, &mut stack),
                Py::Tuple(items) if items.len() == 1 => {
                    stack.push(Step::Text(",)"));
                    stack.push(Step::Value(&items[0]));
                    stack.push(Step::Text("("));
                }
                Py::Tuple(items) => seq("(", ")", items, &mut stack),
                Py::Set(items) if items.is_empty() => out.push_str("set()"),
                Py::Set(items) => seq("{", "}", items, &mut stack),
                Py::Dict(pairs) => {
                    stack.push(Step::Text("}"));
                    for (i, (k, v)) in pairs.iter().enumerate().rev() {
                        stack.push(Step::Value(v));
                        stack.push(Step::Text(": "));
                        stack.push(Step::Value(k));
                        if i > 0 {
                            stack.push(Step::Text(", "));
                        }
                    }
                    stack.push(Step::Text("{"));
                }
            }
        }
        out
    }

    /// False when Python's text for this value may differ from [`Py::py_str`]'s: a set of more than
    /// one element (Python prints it in hash order).
    pub fn exactly_printable(&self) -> bool {
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            match v {
                Py::Set(items) if items.len() > 1 => return false,
                Py::List(items) | Py::Tuple(items) | Py::Set(items) => stack.extend(items),
                Py::Dict(pairs) => stack.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
                _ => {}
            }
        }
        true
    }
}

/// `repr(str)`: single quotes unless the text has a `'` and no `"`; escapes as Python's.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    let _ = write!(out, "\\x{n:02x}");
                } else if n < 0x10000 {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character: not a control, format, separator (but space),
/// private-use or surrogate character. Unassigned code points are not known here and count as printable.
fn printable(c: char) -> bool {
    let n = c as u32;
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(n,
            0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
            | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD))
}

fn repr_bytes(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(quote as char);
    out
}

/// `repr(float)`: the shortest digits that read back the same, in fixed notation when the decimal
/// exponent is from -4 to 15, else as `1e+16` / `1.5e-05`.
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-5", "-1e16", "0e0".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
        } else {
            let p = point as usize;
            if digits.len() <= p {
                format!("{}{}.0", digits, "0".repeat(p - digits.len()))
            } else {
                format!("{}.{}", &digits[..p], &digits[p..])
            }
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{frac}e{esign}{:02}", exp.unsigned_abs())
    }
}

fn repr_complex(re: f64, im: f64) -> String {
    let part = |f: f64| {
        let s = repr_float(f);
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    };
    if re == 0.0 && re.is_sign_positive() {
        format!("{}j", part(im))
    } else {
        let im_s = part(im);
        let im_s = if im_s.starts_with('-') || im.is_nan() {
            im_s
        } else {
            format!("+{im_s}")
        };
        format!("({}{}j)", part(re), im_s)
    }
}

/// Prefect's `string_to_type`: `"true"`/`"false"` in any case to a bool, else `ast.literal_eval`, else
/// the string itself.
pub fn string_to_type(s: &str) -> Py {
    let upper = s.to_uppercase();
    if upper == "TRUE" {
        return Py::Bool(true);
    }
    if upper == "FALSE" {
        return Py::Bool(false);
    }
    literal_eval(s).unwrap_or_else(|| Py::Str(s.to_string()))
}

/// Python's parser gives up on deeper nesting ("too many nested parentheses").
const MAX_NESTING: usize = 200;
/// Python 3.11 refuses to convert longer decimal integers (`sys.get_int_max_str_digits()`).
const MAX_INT_DIGITS: usize = 4300;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Py),
    Str(String),
    Bytes(Vec<u8>),
    Name(String),
    Op(char),
    Ellipsis,
}

/// `ast.literal_eval(s)`; `None` where Python raises.
pub fn literal_eval(s: &str) -> Option<Py> {
    let toks = tokenize(s.trim_start_matches([' ', '\t']))?;
    Parser { toks, pos: 0 }.parse()
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
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

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// A container being filled while the parser reads its elements.
enum Frame {
    /// `(`: a parenthesized value or a tuple; `bool` is whether a comma was seen.
    Paren(Vec<Py>, bool),
    List(Vec<Py>),
    /// `{`: a dict (key and value alternate) or a set; decided at the first `:` or `,`.
    Brace {
        items: Vec<Py>,
        dict: Option<bool>,
    },
    /// The top level: a value, or a tuple when a comma was seen.
    Top(Vec<Py>, bool),
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// One atom that is not a container: a number with an optional sign, a complex sum, a string,
    /// a name constant, `set()`.
    fn scalar(&mut self) -> Option<Py> {
        let sign = match self.peek() {
            Some(Tok::Op(s @ ('+' | '-'))) => {
                let s = *s;
                self.pos += 1;
                Some(s)
            }
            _ => None,
        };
        // `-(1)`: parentheses make no node, so a sign applies to a parenthesized number.
        let mut parens = 0;
        if sign.is_some() {
            while self.peek() == Some(&Tok::Op('(')) {
                parens += 1;
                self.pos += 1;
            }
        }
        let t = self.next()?;
        if parens > 0 {
            let Tok::Num(n) = t else { return None };
            for _ in 0..parens {
                if self.next()? != Tok::Op(')') {
                    return None;
                }
            }
            return Some(if sign == Some('-') { negate(n) } else { n });
        }
        let value = match (t, sign) {
            (Tok::Num(n), s) => {
                let n = match s {
                    Some('-') => negate(n),
                    _ => n,
                };
                // `1+2j`: a real number, then + or -, then an imaginary literal.
                if let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned()
                    && let Some(Tok::Num(Py::Complex(_, im))) = self.toks.get(self.pos + 1).cloned()
                    && !matches!(n, Py::Complex(..))
                {
                    self.pos += 2;
                    let re = match &n {
                        Py::Int(i) => i.parse::<f64>().ok()?,
                        Py::Float(f) => *f,
                        _ => return None,
                    };
                    Py::Complex(re, if op == '-' { -im } else { im })
                } else {
                    n
                }
            }
            (_, Some(_)) => return None,
            (Tok::Str(s), None) => Py::Str(s),
            (Tok::Bytes(b), None) => Py::Bytes(b),
            (Tok::Ellipsis, None) => Py::Ellipsis,
            (Tok::Name(n), None) => match n.as_str() {
                "True" => Py::Bool(true),
                "False" => Py::Bool(false),
                "None" => Py::None,
                "set"
                    if self.peek() == Some(&Tok::Op('('))
                        && self.toks.get(self.pos + 1) == Some(&Tok::Op(')')) =>
                {
                    self.pos += 2;
                    Py::Set(Vec::new())
                }
                _ => return None,
            },
            (Tok::Op(_), None) => return None,
        };
        Some(value)
    }

    fn parse(mut self) -> Option<Py> {
        let mut stack: Vec<Frame> = vec![Frame::Top(Vec::new(), false)];
        // Whether the next token must start a value (after an opener, a comma or a colon).
        let mut want_value = true;
        loop {
            let tok = self.peek().cloned();
            match tok {
                None => {
                    if stack.len() != 1 {
                        return None;
                    }
                    let Some(Frame::Top(items, comma)) = stack.pop() else {
                        return None;
                    };
                    if items.is_empty() {
                        return None;
                    }
                    return Some(if comma {
                        Py::Tuple(items)
                    } else {
                        items.into_iter().next()?
                    });
                }
                Some(Tok::Op('(')) if want_value => {
                    self.pos += 1;
                    stack.push(Frame::Paren(Vec::new(), false));
                }
                Some(Tok::Op('[')) if want_value => {
                    self.pos += 1;
                    stack.push(Frame::List(Vec::new()));
                }
                Some(Tok::Op('{')) if want_value => {
                    self.pos += 1;
                    stack.push(Frame::Brace {
                        items: Vec::new(),
                        dict: None,
                    });
                }
                Some(Tok::Op(close @ (')' | ']' | '}'))) => {
                    self.pos += 1;
                    let frame = stack.pop()?;
                    let value = match (frame, close) {
                        (Frame::Paren(items, comma), ')') => {
                            // `()` is the empty tuple; `(x)` is x; `(x,)` and `(x, y)` are tuples.
                            if !want_value && !comma && items.len() == 1 {
                                items.into_iter().next()?
                            } else if items.is_empty() || comma {
                                Py::Tuple(items)
                            } else {
                                return None;
                            }
                        }
                        (Frame::List(items), ']') => Py::List(items),
                        (Frame::Brace { items, dict }, '}') => match dict {
                            None if items.is_empty() => Py::Dict(Vec::new()),
                            None | Some(false) => set_of(items)?,
                            Some(true) => {
                                if items.len() % 2 != 0 {
                                    return None;
                                }
                                dict_of(items)?
                            }
                        },
                        _ => return None,
                    };
                    // A closer right after a comma is fine (trailing comma); after a colon it is not.
                    if want_value && self.toks.get(self.pos - 2) == Some(&Tok::Op(':')) {
                        return None;
                    }
                    push_value(&mut stack, value)?;
                    want_value = false;
                }
                Some(Tok::Op(',')) if !want_value => {
                    self.pos += 1;
                    match stack.last_mut()? {
                        Frame::Paren(_, comma) | Frame::Top(_, comma) => *comma = true,
                        Frame::List(_) => {}
                        Frame::Brace { items, dict } => match dict {
                            None => *dict = Some(false),
                            Some(true) if items.len() % 2 != 0 => return None,
                            _ => {}
                        },
                    }
                    want_value = true;
                }
                Some(Tok::Op(':')) if !want_value => {
                    self.pos += 1;
                    match stack.last_mut()? {
                        Frame::Brace { items, dict } => match dict {
                            None if items.len() == 1 => *dict = Some(true),
                            Some(true) if items.len() % 2 == 1 => {}
                            _ => return None,
                        },
                        _ => return None,
                    }
                    want_value = true;
                }
                Some(_) if want_value => {
                    let v = self.scalar()?;
                    push_value(&mut stack, v)?;
                    want_value = false;
                }
                Some(_) => return None,
            }
        }
    }
}

fn push_value(stack: &mut [Frame], v: Py) -> Option<()> {
    match stack.last_mut()? {
        Frame::Paren(items, _)
        | Frame::List(items)
        | Frame::Top(items, _)
        | Frame::Brace { items, .. } => items.push(v),
    }
    Some(())
}

fn negate(n: Py) -> Py {
    match n {
        Py::Int(i) if i == "0" => Py::Int(i),
        Py::Int(i) => Py::Int(format!("-{i}")),
        Py::Float(f) => Py::Float(-f),
        Py::Complex(r, i) => Py::Complex(-r, -i),
        other => other,
    }
}

fn hashable(v: &Py) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Py::List(_) | Py::Dict(_) | Py::Set(_) => return false,
            Py::Tuple(items) => stack.extend(items),
            _ => {}
        }
    }
    true
}

/// Python's `==` for hashable literal values (`1 == 1.0 == True`).
fn py_eq(a: &Py, b: &Py) -> bool {
    fn num(v: &Py) -> Option<(f64, f64)> {
        match v {
            Py::Bool(b) => Some((f64::from(u8::from(*b)), 0.0)),
            Py::Int(i) => i.parse::<f64>().ok().map(|f| (f, 0.0)),
            Py::Float(f) => Some((*f, 0.0)),
            Py::Complex(r, i) => Some((*r, *i)),
            _ => None,
        }
    }
    match (a, b) {
        (Py::Int(x), Py::Int(y)) => x == y,
        (Py::Tuple(x), Py::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn set_of(items: Vec<Py>) -> Option<Py> {
    let mut out: Vec<Py> = Vec::new();
    for v in items {
        if !hashable(&v) {
            return None;
        }
        if !out.iter().any(|o| py_eq(o, &v)) {
            out.push(v);
        }
    }
    Some(Py::Set(out))
}

fn dict_of(items: Vec<Py>) -> Option<Py> {
    let mut out: Vec<(Py, Py)> = Vec::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if !hashable(&k) {
            return None;
        }
        match out.iter_mut().find(|(o, _)| py_eq(o, &k)) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    Some(Py::Dict(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        string_to_type(text).py_str()
    }

    #[test]
    fn literal_eval_as_python_3_11() {
        // Each pair was read off Python 3.11's `str(ast.literal_eval(text))`.
        for (text, want) in [
            ("\n1", "1"),
            ("1\n", "1"),
            (" 1", "1"),
            ("\t1", "1"),
            ("1 # c", "1"),
            ("1_000", "1000"),
            ("0x_1f", "31"),
            ("00", "0"),
            ("0_0", "0"),
            ("1e400", "inf"),
            ("-1e400", "-inf"),
            ("1.", "1.0"),
            (".5", "0.5"),
            ("5j", "5j"),
            ("1+2j", "(1+2j)"),
            ("-1-2j", "(-1-2j)"),
            ("...", "Ellipsis"),
            ("'a' 'b'", "ab"),
            ("b'x'", "b'x'"),
            ("u'x'", "x"),
            ("set()", "set()"),
            ("{}", "{}"),
            ("{1,1.0,True}", "{1}"),
            ("{'a':1,'a':2}", "{'a': 2}"),
            ("1,", "(1,)"),
            ("()", "()"),
            ("(1)", "1"),
            ("[1,]", "[1]"),
            ("None", "None"),
            ("True", "True"),
            ("r'\\n'", "\\n"),
            ("'\\x41'", "A"),
            ("'''a\nb'''", "a\nb"),
            ("(1,\n2)", "(1, 2)"),
            ("0o17", "15"),
            ("-0.0", "-0.0"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("123456789.123456789", "123456789.12345679"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5e-5", "1.5e-05"),
            ("'\\q'", "\\q"),
            ("-(1)", "-1"),
            ("+5", "5"),
            ("[1, 'a\"b']", "[1, 'a\"b']"),
            ("'\\xa0'", "\u{a0}"),
            ("{1: [2, (3,)]}", "{1: [2, (3,)]}"),
            ("\x0c1", "1"),
            ("1 ", "1"),
            ("\\\n1", "1"),
            ("0xFFFFFFFFFFFFFFFFFFFF", "1208925819614629174706175"),
            ("true", "True"),
            ("FALSE", "False"),
        ] {
            assert_eq!(s(text), want, "{text:?}");
        }
    }

    #[test]
    fn not_literals_stay_strings() {
        for text in [
            "\n 1",
            "1\n2",
            "01",
            "1+-2j",
            "--5",
            "-True",
            "f'x'",
            "{[1]:2}",
            "1 if 1 else 2",
            "'\\N{DASH}'",
            "1\\\n",
            "0b2",
            "1e",
            "1_",
            "1;",
            "[1,,]",
            "http://localhost",
            "localhost:4200",
            "test-password",
            "",
            "abc",
            "1 2",
            "(1 2)",
            "{1:}",
            "{1:2,3}",
            "[",
            "]",
            "'unterminated",
            "${server.host}",
        ] {
            assert_eq!(string_to_type(text), Py::Str(text.to_string()), "{text:?}");
        }
    }

    #[test]
    fn reprs_as_python() {
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("tab\there\u{1b}"), "'tab\\there\\x1b'");
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(1e22), "1e+22");
        assert_eq!(repr_float(123.0), "123.0");
        assert_eq!(repr_float(-2.5e-7), "-2.5e-07");
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = "[".repeat(199) + &"]".repeat(199);
        assert!(matches!(string_to_type(&deep), Py::List(_)));
        let too_deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(string_to_type(&too_deep), Py::Str(too_deep.clone()));
        let huge = "[".repeat(100_000);
        assert_eq!(string_to_type(&huge), Py::Str(huge.clone()));
        assert_eq!(string_to_type(&"9".repeat(5000)), Py::Str("9".repeat(5000)));
    }
}
