//! A Prefect configuration file, read as Prefect 1.4.1 reads it: with the `toml` 0.10 package (TOML
//! 0.5), not TOML 1.x. The file is parsed with the `toml` crate, then held to what toml 0.10 refuses
//! or reads differently, so a file that makes every `prefect` command crash is said to do so:
//! - arrays must be homogeneous (`[1, "a"]`, `[1, 2.0]`, `[1, [2]]` are refused; dates and
//!   date-times count as one type, times as another); an array that starts with a table keeps only
//!   its tables;
//! - TOML 1.1's additions are refused: `\e` and `\xHH` escapes, inline tables over several lines or
//!   with a trailing comma, times without seconds.
//!
//! The result is a flat list of dotted keys in file order, as Prefect's `dict_to_flatdict` makes it,
//! with empty tables kept as markers (a merge needs them).

use super::pyvalue::Py;

/// One flat entry of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Value(Py),
    /// `[section]` with nothing in it.
    EmptyTable,
}

pub type Flat = Vec<(Vec<String>, Entry)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not TOML at all (the `toml` crate's message): Prefect's parser refuses it too.
    Invalid(String),
    /// TOML that toml 0.10 refuses, with the error it raises.
    Prefect(String),
}

/// Parses `text` as Prefect's loader would.
pub fn read(text: &str) -> Result<Flat, Unreadable> {
    if let Some(why) = toml11_syntax(text) {
        return Err(Unreadable::Prefect(why));
    }
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Unreadable::Invalid(e.message().trim().to_string()))?;
    let mut flat = Flat::new();
    // Depth-first in file order, with an explicit stack of the tables being walked.
    let mut stack: Vec<(Vec<String>, toml::map::Iter<'_, String, toml::Value>)> =
        vec![(Vec::new(), table.iter())];
    while let Some((prefix, items)) = stack.last_mut() {
        let Some((k, v)) = items.next() else {
            stack.pop();
            continue;
        };
        let mut path = prefix.clone();
        path.push(k.clone());
        match v {
            toml::Value::Table(sub) if sub.is_empty() => flat.push((path, Entry::EmptyTable)),
            toml::Value::Table(sub) => stack.push((path, sub.iter())),
            other => flat.push((path, Entry::Value(value(other)?))),
        }
    }
    Ok(flat)
}

/// toml 0.10's type of an array element, for its homogeneity rule.
fn kind(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "str",
        toml::Value::Integer(_) => "int",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "bool",
        toml::Value::Datetime(d) if d.date.is_none() => "time",
        toml::Value::Datetime(_) => "date",
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => "table",
    }
}

/// A value below a table: scalars, and arrays (whose tables become dicts), built without recursion.
fn value(v: &toml::Value) -> Result<Py, Unreadable> {
    enum Work<'a> {
        Visit(&'a toml::Value),
        List(usize),
        Dict(Vec<String>),
    }
    let mut work = vec![Work::Visit(v)];
    let mut out: Vec<Py> = Vec::new();
    while let Some(w) = work.pop() {
        match w {
            Work::Visit(v) => match v {
                toml::Value::String(s) => out.push(Py::Str(s.clone())),
                toml::Value::Integer(i) => out.push(Py::Int(i.to_string())),
                toml::Value::Float(f) => out.push(Py::Float(*f)),
                toml::Value::Boolean(b) => out.push(Py::Bool(*b)),
                toml::Value::Datetime(d) => out.push(date(d)),
                toml::Value::Array(items) => {
                    let items: Vec<&toml::Value> = match items.first() {
                        // toml 0.10 reads an array that starts with a table as tables only.
                        Some(toml::Value::Table(_)) => items
                            .iter()
                            .filter(|i| matches!(i, toml::Value::Table(_)))
                            .collect(),
                        Some(first) => {
                            let k = kind(first);
                            if items.iter().any(|i| kind(i) != k) {
                                return Err(Unreadable::Prefect(
                                    "Not a homogeneous array".to_string(),
                                ));
                            }
                            items.iter().collect()
                        }
                        None => Vec::new(),
                    };
                    work.push(Work::List(items.len()));
                    work.extend(items.into_iter().rev().map(Work::Visit));
                }
                toml::Value::Table(t) => {
                    work.push(Work::Dict(t.keys().cloned().collect()));
                    work.extend(t.values().rev().map(Work::Visit));
                }
            },
            Work::List(n) => {
                let items = out.split_off(out.len() - n);
                out.push(Py::List(items));
            }
            Work::Dict(keys) => {
                let values = out.split_off(out.len() - keys.len());
                out.push(Py::Dict(
                    keys.into_iter().map(Py::Str).zip(values).collect(),
                ));
            }
        }
    }
    Ok(out.pop().unwrap_or(Py::None))
}

/// A TOML date or time as toml 0.10 gives it (`datetime.date`, `.time`, `.datetime`): its `str()`.
fn date(d: &toml::value::Datetime) -> Py {
    let date = d
        .date
        .map(|x| format!("{:04}-{:02}-{:02}", x.year, x.month, x.day));
    let time = d.time.map(|t| {
        let micros = t.nanosecond / 1000;
        let second = t.second;
        if micros > 0 && d.date.is_some() {
            format!("{:02}:{:02}:{:02}.{micros:06}", t.hour, t.minute, second)
        } else {
            format!("{:02}:{:02}:{:02}", t.hour, t.minute, second)
        }
    });
    let offset = d.offset.map(|o| match o {
        toml::value::Offset::Z => "+00:00".to_string(),
        toml::value::Offset::Custom { minutes } => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        }
    });
    let text = [date, time, offset]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .replacen(" +", "+", 1)
        .replacen(" -", "-", 1);
    Py::Date {
        repr: format!("datetime({text:?})"),
        text,
    }
}

/// TOML 1.1 syntax that toml 0.10 refuses, found with a small lexer over the text (strings and
/// comments are skipped). Returns toml 0.10's complaint.
fn toml11_syntax(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    // Open brackets: `{` inline tables and `[` arrays (table headers are on their own line).
    let mut open: Vec<char> = Vec::new();
    let mut after_equals = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '"' | '\'' => {
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                let mut j = if triple { i + 3 } else { i + 1 };
                while j < chars.len() {
                    if chars[j] == c
                        && (!triple
                            || (chars.get(j + 1) == Some(&c) && chars.get(j + 2) == Some(&c)))
                    {
                        break;
                    }
                    if c == '"' && chars[j] == '\\' {
                        match chars.get(j + 1) {
                            Some('e') | Some('x') => {
                                return Some("Reserved escape sequence used".to_string());
                            }
                            _ => j += 1,
                        }
                    }
                    if !triple && chars[j] == '\n' {
                        break;
                    }
                    j += 1;
                }
                i = j + if triple { 3 } else { 1 };
                continue;
            }
            '=' => after_equals = true,
            '\n' => {
                if open.last() == Some(&'{') {
                    return Some("Line breaks are not allowed in inline objects".to_string());
                }
                if open.is_empty() {
                    after_equals = false;
                }
            }
            '{' => open.push('{'),
            '[' if after_equals || !open.is_empty() => open.push('['),
            ']' if open.last() == Some(&'[') => {
                open.pop();
            }
            '}' => {
                // A trailing comma before the closing brace.
                let before = chars[..i].iter().rev().find(|c| !c.is_whitespace());
                if before == Some(&',') {
                    return Some("Invalid inline table encountered".to_string());
                }
                open.pop();
            }
            d if d.is_ascii_digit() && after_equals => {
                // A bare value: a time without seconds is `HH:MM` not followed by `:`.
                let mut j = i;
                while j < chars.len()
                    && !matches!(chars[j], ',' | ']' | '}' | '\n' | '#' | ' ' | '\t' | '\r')
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let time = word.rsplit(['T', 't']).next().unwrap_or(&word);
                let time = match chars.get(j) {
                    // `1979-05-27 07:32`: a date, a space, then the time.
                    Some(' ') if word.len() == 10 && word.as_bytes()[4] == b'-' => {
                        let mut k = j + 1;
                        while k < chars.len()
                            && !matches!(chars[k], ',' | ']' | '}' | '\n' | '#' | ' ' | '\t' | '\r')
                        {
                            k += 1;
                        }
                        let t: String = chars[j + 1..k].iter().collect();
                        j = k;
                        t
                    }
                    _ => time.to_string(),
                };
                let b = time.as_bytes();
                if b.len() >= 5
                    && b[..2].iter().all(u8::is_ascii_digit)
                    && b[2] == b':'
                    && b[3..5].iter().all(u8::is_ascii_digit)
                    && b.get(5) != Some(&b':')
                {
                    return Some("Invalid date or number".to_string());
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match read(text) {
            Err(Unreadable::Prefect(why)) => why,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn what_toml_0_10_refuses() {
        // Each was refused by toml 0.10.2 with this message.
        assert_eq!(refused("a = [1, 2.0]"), "Not a homogeneous array");
        assert_eq!(refused("a = [1, \"x\"]"), "Not a homogeneous array");
        assert_eq!(refused("a = [1, [2]]"), "Not a homogeneous array");
        assert_eq!(refused("a = [true, 1]"), "Not a homogeneous array");
        assert_eq!(
            refused("a = [07:32:00, 1979-05-27]"),
            "Not a homogeneous array"
        );
        assert_eq!(
            refused("[server]\nx = [\"a\", [\"b\"]]"),
            "Not a homogeneous array"
        );
        assert_eq!(refused("a = \"\\e\""), "Reserved escape sequence used");
        assert_eq!(
            refused("a = { b = 1, }"),
            "Invalid inline table encountered"
        );
        assert_eq!(
            refused("a = { b = 1,\n c = 2 }"),
            "Line breaks are not allowed in inline objects"
        );
        assert_eq!(refused("a = 07:32"), "Invalid date or number");
    }

    #[test]
    fn what_toml_0_10_reads() {
        for text in [
            "a = [[1], [\"x\"]]",
            "a = [1979-05-27, 1979-05-27T07:32:00]",
            "a = [{b=1}, {c=\"x\"}]",
            "a = [1,2,]",
            "a = [\n 1, # c\n 2\n]",
            "a = \"{ b = 1, }\" # a string, {x,}",
            "a = '\\e'",
            "a = 07:32:00",
            "a = 1979-05-27 07:32:00Z",
            "a = \"12:30\"",
            "[a.b]\nc=1\n[a]\nd=2",
        ] {
            assert!(read(text).is_ok(), "{text:?}: {:?}", read(text));
        }
        let flat = read("a = [{b=1}, \"x\"]\n[s]\n[t]\nu = 1").unwrap();
        assert_eq!(
            flat,
            vec![
                (
                    vec!["a".to_string()],
                    Entry::Value(Py::List(vec![Py::Dict(vec![(
                        Py::Str("b".into()),
                        Py::Int("1".into())
                    )])]))
                ),
                (vec!["s".to_string()], Entry::EmptyTable),
                (
                    vec!["t".to_string(), "u".to_string()],
                    Entry::Value(Py::Int("1".into()))
                ),
            ]
        );
    }

    #[test]
    fn dates_read_as_python_prints_them() {
        let flat = read("a = 1979-05-27T07:32:00Z\nb = 1979-05-27T07:32:00+05:30\nd = 1979-05-27T07:32:00\ne = 1979-05-27").unwrap();
        let texts: Vec<String> = flat
            .iter()
            .map(|(_, e)| match e {
                Entry::Value(v) => v.py_str(),
                Entry::EmptyTable => String::new(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "1979-05-27 07:32:00+00:00",
                "1979-05-27 07:32:00+05:30",
                "1979-05-27 07:32:00",
                "1979-05-27"
            ]
        );
    }
}
