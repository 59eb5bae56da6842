//! Redaction that keeps a bundle's structure: a `Serialize` value turned into JSON with every string
//! that came from outside redacted, while what serde writes for the types themselves — field names,
//! enum variant names (as keys or as strings), map keys — passes through untouched. So a bundle
//! redacted with any word (`postgres`, `rows`, `Ok`) still reads back into its types and replays.
//!
//! serde tells the two apart by the method it calls: data strings come through `serialize_str`,
//! the type's own names through `serialize_struct`'s field keys and the `*_variant` methods. The
//! adapter below forwards every call to serde_json's value serializer and redacts only
//! `serialize_str`/`serialize_char`. Fields that hold our own text, not outside data (`sql`: the
//! statements the checks send, which replay looks answers up by), are kept as they are.

use serde::ser::{self, Serialize};
use serde_json::Value;

/// Fields whose strings are the program's own text, kept unredacted.
const OWN_TEXT: &[&str] = &["sql"];

type Inner = serde_json::value::Serializer;
type Error = serde_json::Error;

/// `value` as JSON, its outside strings passed through `redact`.
pub fn to_value<T: Serialize + ?Sized>(
    value: &T,
    redact: &dyn Fn(&str) -> String,
) -> Result<Value, Error> {
    value.serialize(Redacting { redact })
}

#[derive(Clone, Copy)]
struct Redacting<'r> {
    redact: &'r dyn Fn(&str) -> String,
}

/// A value to serialize through the adapter (`keep`: as it is).
struct Wrapped<'a, 'r, T: ?Sized> {
    value: &'a T,
    r: Redacting<'r>,
    keep: bool,
}

impl<T: Serialize + ?Sized> Serialize for Wrapped<'_, '_, T> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every compound below serializes into a `Value` first: `S` is only ever serde_json's.
        let v = if self.keep {
            serde_json::to_value(self.value)
        } else {
            self.value.serialize(self.r)
        }
        .map_err(ser::Error::custom)?;
        v.serialize(s)
    }
}

impl<'r> Redacting<'r> {
    fn wrap<'a, T: ?Sized>(self, value: &'a T) -> Wrapped<'a, 'r, T> {
        Wrapped {
            value,
            r: self,
            keep: false,
        }
    }
}

macro_rules! forward {
    ($($name:ident($t:ty)),* $(,)?) => {
        $(fn $name(self, v: $t) -> Result<Value, Error> {
            ser::Serializer::$name(Inner {}, v)
        })*
    };
}

impl<'r> ser::Serializer for Redacting<'r> {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Seq<'r, <Inner as ser::Serializer>::SerializeSeq>;
    type SerializeTuple = Seq<'r, <Inner as ser::Serializer>::SerializeTuple>;
    type SerializeTupleStruct = Seq<'r, <Inner as ser::Serializer>::SerializeTupleStruct>;
    type SerializeTupleVariant = Seq<'r, <Inner as ser::Serializer>::SerializeTupleVariant>;
    type SerializeMap = Seq<'r, <Inner as ser::Serializer>::SerializeMap>;
    type SerializeStruct = Seq<'r, <Inner as ser::Serializer>::SerializeStruct>;
    type SerializeStructVariant = Seq<'r, <Inner as ser::Serializer>::SerializeStructVariant>;

    forward!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String((self.redact)(&v.to_string())))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String((self.redact)(v)))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        ser::Serializer::serialize_unit_variant(Inner {}, name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        ser::Serializer::serialize_newtype_variant(Inner {}, name, index, variant, &self.wrap(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_seq(Inner {}, len)?,
        ))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_tuple(Inner {}, len)?,
        ))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_tuple_struct(Inner {}, name, len)?,
        ))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_tuple_variant(Inner {}, name, index, variant, len)?,
        ))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_map(Inner {}, len)?,
        ))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_struct(Inner {}, name, len)?,
        ))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Ok(Seq::new(
            self,
            ser::Serializer::serialize_struct_variant(Inner {}, name, index, variant, len)?,
        ))
    }
}

/// A compound of serde_json's value serializer whose elements go through the adapter.
struct Seq<'r, C> {
    r: Redacting<'r>,
    inner: C,
}

impl<'r, C> Seq<'r, C> {
    fn new(r: Redacting<'r>, inner: C) -> Self {
        Seq { r, inner }
    }
}

macro_rules! elements {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait<Ok = Value, Error = Error>> ser::$trait for Seq<'_, C> {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.inner.$method(&self.r.wrap(v))
            }
            fn end(self) -> Result<Value, Error> {
                self.inner.end()
            }
        }
    };
}

elements!(SerializeSeq, serialize_element);
elements!(SerializeTuple, serialize_element);
elements!(SerializeTupleStruct, serialize_field);
elements!(SerializeTupleVariant, serialize_field);

impl<C: ser::SerializeMap<Ok = Value, Error = Error>> ser::SerializeMap for Seq<'_, C> {
    type Ok = Value;
    type Error = Error;
    /// Map keys are structure (a chart's value names, header names are in lists): kept.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.inner.serialize_key(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.inner.serialize_value(&self.r.wrap(v))
    }
    fn end(self) -> Result<Value, Error> {
        self.inner.end()
    }
}

macro_rules! fields {
    ($trait:ident) => {
        impl<C: ser::$trait<Ok = Value, Error = Error>> ser::$trait for Seq<'_, C> {
            type Ok = Value;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                let mut w = self.r.wrap(v);
                w.keep = OWN_TEXT.contains(&key);
                self.inner.serialize_field(key, &w)
            }
            fn end(self) -> Result<Value, Error> {
                self.inner.end()
            }
        }
    };
}

fields!(SerializeStruct);
fields!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Answer {
        Rows(Vec<Vec<Option<String>>>),
        Error { code: String },
        Missing,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Exchange {
        sql: String,
        params: Vec<String>,
        answer: Answer,
        kind: Answer,
        outcome: Result<String, String>,
        labels: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn structure_is_kept_and_every_outside_string_redacted() {
        let e = Exchange {
            sql: "SELECT rows FROM postgres".into(),
            params: vec!["postgres".into()],
            answer: Answer::Rows(vec![vec![Some("rows in postgres".into()), None]]),
            kind: Answer::Missing,
            outcome: Ok("Ok postgres".into()),
            labels: [("rows".to_string(), "postgres".to_string())].into(),
        };
        // The nastiest patterns: every structural word.
        let redact = |s: &str| {
            let mut out = s.to_string();
            for w in ["postgres", "rows", "Ok", "missing", "sql", "error", "code"] {
                out = out.replace(w, "REDACTED");
            }
            out
        };
        let v = super::to_value(&e, &redact).unwrap();
        let back: Exchange = serde_json::from_value(v.clone()).expect("still its type");
        assert_eq!(
            back.sql, "SELECT rows FROM postgres",
            "our own statement kept"
        );
        assert_eq!(back.params, ["REDACTED"]);
        assert_eq!(
            back.answer,
            Answer::Rows(vec![vec![Some("REDACTED in REDACTED".into()), None]])
        );
        assert_eq!(back.kind, Answer::Missing);
        assert_eq!(back.outcome, Ok("REDACTED REDACTED".into()));
        assert_eq!(back.labels["rows"], "REDACTED");
    }
}
