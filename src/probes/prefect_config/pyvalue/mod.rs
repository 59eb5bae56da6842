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

mod lexer;
mod parser;

pub use parser::literal_eval;

#[cfg(test)]
mod tests;
