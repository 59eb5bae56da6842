//! One values file's YAML parsed into JSON with the `file:line:col` of every value, under a budget
//! (depth, nodes, aliases bounded; the parser on a stack of its own), and its errors said at their place.

use std::{collections::BTreeMap, fmt};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use super::{MAX_DEPTH, join};
use crate::report::Location;

/// A values file larger than this is refused (real ones are a few KiB).
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// The YAML parser's stack: ample for [`MAX_DEPTH`] levels even in a debug build.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// A YAML node with the location of every value.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Spanned<Node>>()? {
            out.push(v);
        }
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Node>>()? {
            let v = map.next_value::<Spanned<Node>>()?;
            out.push((k, v));
        }
        Ok(Node::Map(out))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Where each user-written key is, by dotted path (`postgresql.auth.password`, `ui.ingress.hosts[0]`).
pub type Locations = BTreeMap<String, Location>;

fn scalar_key(n: &Node) -> String {
    match n {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::UInt(u) => u.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Str(s) => s.clone(),
        Node::Seq(_) | Node::Map(_) => "<complex key>".into(),
    }
}

fn to_json(n: &Node, path: &str, file: &str, locs: &mut Locations, depth: usize) -> Value {
    match n {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::Number((*i).into()),
        Node::UInt(u) => Value::Number((*u).into()),
        Node::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = format!("{path}[{i}]");
                    locs.insert(p.clone(), loc(file, &v.referenced));
                    if depth > MAX_DEPTH {
                        return Value::Null;
                    }
                    to_json(&v.value, &p, file, locs, depth + 1)
                })
                .collect(),
        ),
        Node::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let key = scalar_key(&k.value);
                let p = join(path, &key);
                locs.insert(p.clone(), loc(file, &k.referenced));
                let value = if depth > MAX_DEPTH {
                    Value::Null
                } else {
                    to_json(&v.value, &p, file, locs, depth + 1)
                };
                m.insert(key, value);
            }
            Value::Object(m)
        }
    }
}

fn loc(file: &str, l: &serde_saphyr::Location) -> Location {
    Location {
        file: file.to_string(),
        line: u32::try_from(l.line()).unwrap_or(u32::MAX),
        column: u32::try_from(l.column()).unwrap_or(u32::MAX),
        snippet: None,
    }
}

/// A values file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{}:{}:{}: {}", l.file, l.line, l.column, self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = 1_000;
    budget.max_nodes = 200_000;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    // Helm reads values as YAML 1.1: `010` is 8.
    o.legacy_octal_numbers = true;
    o
}

/// Parses one values file into JSON and the locations of its keys.
pub fn parse(file: &str, text: &str) -> Result<(Value, Locations), ParseError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ParseError {
            location: None,
            message: format!(
                "{file} is {} bytes; values files over {} MiB are refused",
                text.len(),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        });
    }
    if text.trim().is_empty() {
        return Ok((Value::Object(Map::new()), Locations::new()));
    }
    // The parser recurses once per level up to the depth budget; it runs on a thread whose stack
    // is sized for that budget, whatever thread (a test's, a runtime worker's) called it.
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("values-parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                // Every document of the file, merged in order (as Helm reads a values file).
                serde_saphyr::from_multiple_with_options::<Spanned<Node>>(text, options())
                    .map_err(|e| parse_error(file, text, &e))
            })
            .map(|h| h.join())
    });
    let docs: Vec<Spanned<Node>> = match parsed {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) | Err(_) => {
            return Err(ParseError {
                location: None,
                message: format!("{file} could not be parsed (the parser stopped)"),
            });
        }
    };
    let mut locs = Locations::new();
    let mut merged = Value::Object(Map::new());
    for node in &docs {
        match to_json(&node.value, "", file, &mut locs, 0) {
            Value::Object(m) => merged = crate::chart::release::merge(merged, &Value::Object(m)),
            Value::Null => {}
            other => {
                return Err(ParseError {
                    location: Some(loc(file, &node.referenced)),
                    message: format!(
                        "a values file must be a mapping of keys, not {}",
                        kind_of(&other)
                    ),
                });
            }
        }
    }
    Ok((merged, locs))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn parse_error(file: &str, text: &str, e: &serde_saphyr::Error) -> ParseError {
    let location = e.location().map(|l| loc(file, &l));
    // The first line of the parser's message, without its own snippet; ours follows.
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("invalid YAML").trim();
    // The parser library's advice to its programmers ("set DuplicateKeyPolicy in Options") is not
    // for the user.
    let first = match first.find(", set ").or_else(|| first.find(" set ignore_")) {
        Some(i) if first.contains("Options") => &first[..i],
        _ => first,
    };
    // "error: line 3 column 7: …": the place is said by the location already.
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((place, rest)) if place.contains(" column ") => rest,
        _ => first,
    };
    let first = first.trim_end_matches(['.', ',', ' ']).replace(
        "duplicate mapping key",
        "a key appears twice in one mapping",
    );
    // A value the parser's words quote is masked if it is a secret's; the line shown masks the
    // secrets before it is cut (`redact::snippet`) and travels with the location.
    let first = crate::redact::yaml::mask_quoted(&first, text);
    let location = location.map(|mut l| {
        l.snippet = usize::try_from(l.line).ok().and_then(|line| {
            let column = usize::try_from(l.column).unwrap_or(1);
            crate::redact::snippet::yaml_line(text, line, column)
        });
        l
    });
    ParseError {
        location,
        message: first,
    }
}
