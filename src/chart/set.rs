//! `--set`, `--set-string`, `--set-json`, `--set-file` and `--set-literal`, as Helm's strvals parsers
//! read them: dotted paths, `a[0]`, `{a,b}` lists, `\.` escaped dots, commas; typed values; bounded
//! in size, depth and list slots. Errors never quote the expression (it may hold a password): the
//! caller shows it masked.

use serde_json::{Map, Value};

use super::{MAX_DEPTH, join};

/// One step of a `--set` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Which flag an expression came with. Declared in the order Helm applies them, after the values
/// files, whatever the order on the command line: `--set-json`, `--set`, `--set-string`,
/// `--set-file`, `--set-literal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetKind {
    Json,
    Set,
    String,
    File,
    Literal,
}

impl SetKind {
    pub const ALL: [SetKind; 5] = [
        SetKind::Json,
        SetKind::Set,
        SetKind::String,
        SetKind::File,
        SetKind::Literal,
    ];
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Json => "--set-json",
            SetKind::Set => "--set",
            SetKind::String => "--set-string",
            SetKind::File => "--set-file",
            SetKind::Literal => "--set-literal",
        }
    }
    pub fn of_flag(flag: &str) -> Option<SetKind> {
        SetKind::ALL.into_iter().find(|k| k.flag() == flag)
    }
}

/// The longest `--set` expression.
pub const MAX_SET_BYTES: usize = 64 * 1024;
/// The most list slots all `--set` indices may create together (Helm allows an index up to 65536
/// in each; a thousand of those would be 65 million values).
pub const MAX_SET_SLOTS: usize = 1_000_000;

/// Parses one flag's expression (`a.b=c,d[0].e=f`) into assignments as Helm does for `kind`;
/// `read` gives a `--set-file` path's contents. Errors never quote the expression (it may hold a
/// password); the caller shows it masked.
pub fn parse(
    expr: &str,
    kind: SetKind,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Vec<(Vec<Seg>, Value)>, String> {
    if expr.len() > MAX_SET_BYTES {
        return Err(format!(
            "the expression is {} bytes long; at most {} KiB is read",
            expr.len(),
            MAX_SET_BYTES / 1024
        ));
    }
    // `--set-json '{"a": …}'`: one JSON object, merged as a values file is.
    if kind == SetKind::Json && expr.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(expr.trim()) {
            // One assignment at the root (an empty path): merged, not set.
            Ok(v @ Value::Object(_)) if super::depth_within(&v, MAX_DEPTH) => {
                Ok(vec![(Vec::new(), v)])
            }
            Ok(Value::Object(_)) => Err(format!("the JSON nests deeper than {MAX_DEPTH} levels")),
            _ => Err("the JSON object does not parse".to_string()),
        };
    }
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // The key, up to an unescaped '=' (a literal's key has no escapes).
        let mut path = Vec::new();
        let mut key = String::new();
        loop {
            let Some(&c) = chars.get(i) else {
                return Err(format!("key {:?} has no value", key_text(&path, &key)));
            };
            match c {
                '\\' if kind != SetKind::Literal => {
                    i += 1;
                    key.push(*chars.get(i).ok_or("a trailing backslash")?);
                }
                '.' => {
                    if !key.is_empty() {
                        path.push(Seg::Key(std::mem::take(&mut key)));
                    } else if !matches!(path.last(), Some(Seg::Index(_))) {
                        return Err(format!("empty key at character {}", i + 1));
                    }
                }
                '[' => {
                    if !key.is_empty() {
                        path.push(Seg::Key(std::mem::take(&mut key)));
                    }
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .ok_or_else(|| format!("unclosed '[' at character {}", i + 1))?;
                    let n: String = chars[i + 1..i + close].iter().collect();
                    let idx: usize = n.parse().map_err(|_| {
                        format!("list index {n:?} at character {} is not a number", i + 1)
                    })?;
                    if idx > 65_536 {
                        return Err(format!("list index {idx} is too large (Helm allows 65536)"));
                    }
                    path.push(Seg::Index(idx));
                    i += close;
                }
                '=' => {
                    if !key.is_empty() {
                        path.push(Seg::Key(std::mem::take(&mut key)));
                    }
                    i += 1;
                    break;
                }
                ',' if kind != SetKind::Literal => {
                    return Err(format!("key {:?} has no value", key_text(&path, &key)));
                }
                c => key.push(c),
            }
            if path.len() > MAX_DEPTH {
                return Err(format!(
                    "the key {}… nests deeper than {MAX_DEPTH} levels",
                    crate::untrusted::cap(&key_text(&path[..8], ""), 200)
                ));
            }
            i += 1;
        }
        if path.is_empty() {
            return Err(format!("empty key at character {}", i.max(1)));
        }
        let value = match kind {
            // The rest of the expression, as it is: no commas, no escapes, no lists.
            SetKind::Literal => {
                let v: String = chars[i..].iter().collect();
                i = chars.len();
                Value::String(v)
            }
            // One JSON value, then a ',' or the end.
            SetKind::Json => {
                let rest: String = chars[i..].iter().collect();
                let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<Value>();
                let v = match stream.next() {
                    Some(Ok(v)) => v,
                    _ => {
                        return Err(format!(
                            "the JSON value of key {:?} does not parse",
                            path_text(&path)
                        ));
                    }
                };
                if !super::depth_within(&v, MAX_DEPTH) {
                    return Err(format!("the JSON nests deeper than {MAX_DEPTH} levels"));
                }
                let used = stream.byte_offset();
                i += rest[..used].chars().count();
                if !matches!(chars.get(i), None | Some(',')) {
                    return Err(format!(
                        "the JSON value of key {:?} is followed by more than a ','",
                        path_text(&path)
                    ));
                }
                v
            }
            // A {a,b} list (not for --set-file), or text up to an unescaped ','.
            _ if kind != SetKind::File && chars.get(i) == Some(&'{') => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| format!("unclosed '{{' at character {}", i + 1))?;
                let inner: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                Value::Array(
                    inner
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| typed(s, kind == SetKind::String))
                        .collect(),
                )
            }
            _ => {
                let mut v = String::new();
                while let Some(&c) = chars.get(i) {
                    match c {
                        '\\' => {
                            i += 1;
                            if let Some(&n) = chars.get(i) {
                                v.push(n);
                            }
                        }
                        ',' => break,
                        c => v.push(c),
                    }
                    i += 1;
                }
                match kind {
                    SetKind::File => Value::String(
                        read(&v).map_err(|e| format!("key {:?}: {e}", path_text(&path)))?,
                    ),
                    _ => typed(&v, kind == SetKind::String),
                }
            }
        };
        out.push((path, value));
        // Skip the ',' separating assignments.
        if chars.get(i) == Some(&',') {
            i += 1;
        }
    }
    Ok(out)
}

fn key_text(path: &[Seg], key: &str) -> String {
    let mut s = path_text(path);
    if !key.is_empty() {
        s = join(&s, key);
    }
    s
}

/// A `--set` path as findings print it.
pub fn path_text(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => s = join(&s, k),
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Helm's typing of `--set` values: true/false, null, integers; everything else a string.
fn typed(s: &str, string: bool) -> Value {
    if string {
        return Value::String(s.to_string());
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match s.parse::<i64>() {
            Ok(n) if !(s.len() > 1 && s.starts_with('0')) => Value::Number(n.into()),
            _ => Value::String(s.to_string()),
        },
    }
}

/// Writes `value` at `path`, creating maps and lists on the way (as Helm's strvals does).
pub fn set_path(root: &mut Value, path: &[Seg], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *root = value;
        return;
    };
    match first {
        Seg::Key(k) => {
            if !root.is_object() {
                *root = Value::Object(Map::new());
            }
            if let Value::Object(m) = root {
                let slot = m.entry(k.clone()).or_insert(Value::Null);
                set_path(slot, rest, value);
            }
        }
        Seg::Index(i) => {
            if !root.is_array() {
                *root = Value::Array(Vec::new());
            }
            if let Value::Array(a) = root {
                while a.len() <= *i {
                    a.push(Value::Null);
                }
                set_path(&mut a[*i], rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_set(expr: &str, string: bool) -> Result<Vec<(Vec<Seg>, Value)>, String> {
        let kind = if string {
            SetKind::String
        } else {
            SetKind::Set
        };
        parse(expr, kind, &mut |_| Err("no file here".to_string()))
    }

    fn set(expr: &str) -> Value {
        let mut v = json!({});
        for (p, val) in parse_set(expr, false).expect(expr) {
            set_path(&mut v, &p, val);
        }
        v
    }

    #[test]
    fn set_syntax_as_helm() {
        assert_eq!(set("a.b=c"), json!({"a": {"b": "c"}}));
        assert_eq!(
            set("a=1,b=true,c=null,d=007"),
            json!({"a": 1, "b": true, "c": null, "d": "007"})
        );
        assert_eq!(set("list[1]=x"), json!({"list": [null, "x"]}));
        assert_eq!(
            set("hosts[0].host=h.example"),
            json!({"hosts": [{"host": "h.example"}]})
        );
        assert_eq!(set("a={x,y}"), json!({"a": ["x", "y"]}));
        assert_eq!(
            set("annotations.kubernetes\\.io/ingress\\.class=nginx"),
            json!({"annotations": {"kubernetes.io/ingress.class": "nginx"}})
        );
        assert_eq!(set("pw=a\\,b"), json!({"pw": "a,b"}));
        assert_eq!(
            set("url=http://x:4200/graphql?a=b"),
            json!({"url": "http://x:4200/graphql?a=b"})
        );
        let s: Vec<_> = parse_set("port=5432", true).expect("string");
        assert_eq!(s[0].1, json!("5432"));
        for bad in ["a", "=x", "a[x]=1", "a[1=2", "a..b=1", "a[99999999]=1"] {
            assert!(parse_set(bad, false).is_err(), "{bad}");
        }
    }
}
