//! `ast.literal_eval` over the tokens: tuples, lists, dicts, sets and `set()`, one unary sign on a
//! number, implicit string concatenation; nesting on an explicit stack, never recursion.

use super::{
    Py,
    lexer::{Tok, tokenize},
};

/// `ast.literal_eval(s)`; `None` where Python raises.
pub fn literal_eval(s: &str) -> Option<Py> {
    let toks = tokenize(s.trim_start_matches([' ', '\t']))?;
    Parser { toks, pos: 0 }.parse()
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
