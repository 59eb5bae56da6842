//! A row as the checks read it: plain cells decoded once at the probe, so that a row can be recorded
//! into a support bundle and answered from it again (`tokio_postgres::Row` cannot be rebuilt). The
//! API mirrors `tokio_postgres::Row::try_get`, strictly: NULL is an error unless an `Option` is asked
//! for, and a number must fit the type asked for.

use serde::{Deserialize, Serialize};

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// A column of a type the checks never read (its name, for the error).
    Unsupported {
        unsupported: String,
    },
}

/// Why a cell cannot be read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {index}: {problem}")]
pub struct CellError {
    pub index: usize,
    pub problem: String,
}

/// A type a cell can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Result<Self, String>;
}

fn wrong(cell: &Cell, want: &str) -> String {
    match cell {
        Cell::Null => format!("NULL where {want} was expected"),
        Cell::Unsupported { unsupported } => format!("a {unsupported} where {want} was expected"),
        other => format!("{other:?} where {want} was expected"),
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Result<bool, String> {
        match cell {
            Cell::Bool(b) => Ok(*b),
            c => Err(wrong(c, "a boolean")),
        }
    }
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Result<i64, String> {
        match cell {
            Cell::Int(n) => Ok(*n),
            c => Err(wrong(c, "an integer")),
        }
    }
}

impl FromCell for i32 {
    fn from_cell(cell: &Cell) -> Result<i32, String> {
        let n = i64::from_cell(cell)?;
        i32::try_from(n).map_err(|_| format!("{n} does not fit a 32-bit integer"))
    }
}

impl FromCell for f64 {
    fn from_cell(cell: &Cell) -> Result<f64, String> {
        match cell {
            Cell::Float(f) => Ok(*f),
            c => Err(wrong(c, "a floating-point number")),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Result<String, String> {
        match cell {
            Cell::Text(s) => Ok(s.clone()),
            c => Err(wrong(c, "text")),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Result<Option<T>, String> {
        match cell {
            Cell::Null => Ok(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// A column position (only `usize`, so that a literal `0` is one).
pub trait CellIndex {
    fn position(&self) -> usize;
}

impl CellIndex for usize {
    fn position(&self) -> usize {
        *self
    }
}

/// A row: its cells in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row(pub Vec<Cell>);

impl Row {
    /// The cell at `index` as a `T` (the generic index keeps `tokio_postgres`'s call shape,
    /// `try_get::<_, T>(0)`).
    pub fn try_get<I: CellIndex, T: FromCell>(&self, index: I) -> Result<T, CellError> {
        let index = index.position();
        let cell = self.0.get(index).ok_or_else(|| CellError {
            index,
            problem: format!("the row has {} columns", self.0.len()),
        })?;
        T::from_cell(cell).map_err(|problem| CellError { index, problem })
    }

    /// Decodes a row the server sent, by each column's type.
    pub fn from_pg(row: &tokio_postgres::Row) -> Row {
        use tokio_postgres::types::Type;
        let cell = |i: usize, ty: &Type| -> Cell {
            fn opt<T>(v: Result<Option<T>, tokio_postgres::Error>, f: impl Fn(T) -> Cell) -> Cell {
                match v {
                    Ok(Some(x)) => f(x),
                    Ok(None) => Cell::Null,
                    Err(e) => Cell::Unsupported {
                        unsupported: e.to_string(),
                    },
                }
            }
            match *ty {
                Type::BOOL => opt(row.try_get::<_, Option<bool>>(i), Cell::Bool),
                Type::INT2 => opt(row.try_get::<_, Option<i16>>(i), |n| Cell::Int(n.into())),
                Type::INT4 => opt(row.try_get::<_, Option<i32>>(i), |n| Cell::Int(n.into())),
                Type::INT8 => opt(row.try_get::<_, Option<i64>>(i), Cell::Int),
                Type::OID => opt(row.try_get::<_, Option<u32>>(i), |n| Cell::Int(n.into())),
                Type::FLOAT4 => opt(row.try_get::<_, Option<f32>>(i), |f| Cell::Float(f.into())),
                Type::FLOAT8 => opt(row.try_get::<_, Option<f64>>(i), Cell::Float),
                _ => match row.try_get::<_, Option<String>>(i) {
                    Ok(Some(s)) => Cell::Text(s),
                    Ok(None) => Cell::Null,
                    Err(_) => Cell::Unsupported {
                        unsupported: ty.name().to_string(),
                    },
                },
            }
        };
        Row(row
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| cell(i, c.type_()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_as_strict_as_tokio_postgres() {
        let r = Row(vec![
            Cell::Null,
            Cell::Int(1 << 40),
            Cell::Text("x".into()),
            Cell::Bool(true),
        ]);
        assert!(r.try_get::<_, i64>(0usize).is_err());
        assert_eq!(r.try_get::<_, Option<i64>>(0usize), Ok(None));
        assert_eq!(r.try_get::<_, i64>(1usize), Ok(1 << 40));
        assert!(r.try_get::<_, i32>(1usize).is_err());
        assert_eq!(r.try_get::<_, String>(2usize), Ok("x".to_string()));
        assert!(r.try_get::<_, bool>(2usize).is_err());
        assert_eq!(r.try_get::<_, bool>(3usize), Ok(true));
        assert!(r.try_get::<_, bool>(9usize).is_err());
    }

    #[test]
    fn cells_round_trip_through_json() {
        let r = Row(vec![
            Cell::Null,
            Cell::Bool(false),
            Cell::Int(-3),
            Cell::Float(2.5),
            Cell::Float(3.0),
            Cell::Text("3".into()),
            Cell::Unsupported {
                unsupported: "tsvector".into(),
            },
        ]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), r);
    }
}
