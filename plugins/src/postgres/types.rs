//! Which PostgreSQL type each Arrow type is written as, and the table made from a schema.
//!
//! | Arrow | PostgreSQL |
//! |---|---|
//! | Boolean | `boolean` |
//! | Int8, Int16, UInt8 | `smallint` |
//! | Int32, UInt16 | `integer` |
//! | Int64, UInt32 | `bigint` |
//! | Float16, Float32 | `real` |
//! | Float64 | `double precision` |
//! | Utf8, LargeUtf8, Utf8View, a dictionary of strings | `text` |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | `bytea` |
//! | Date32, Date64 | `date` |
//! | Timestamp without a time zone | `timestamp` (microseconds: nanoseconds are truncated) |
//! | Timestamp with a time zone | `timestamptz` |
//!
//! Refused, with the cast to write in the query: UInt64 (no PostgreSQL type holds it), decimals,
//! lists, structs, maps, intervals and durations.

use arrow::datatypes::{DataType, TimeUnit};

/// A PostgreSQL column type the sink writes in binary COPY format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `text` (or `varchar` in an existing table)
    Text,
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `timestamp without time zone`
    Timestamp,
    /// `timestamp with time zone`
    Timestamptz,
}

impl PgType {
    /// The type for a column of Arrow type `t`, or why there is none and what to cast to.
    pub fn for_arrow(t: &DataType) -> Result<Self, String> {
        Ok(match t {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::Dictionary(_, value) if is_text(value) => PgType::Text,
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => PgType::Bytea,
            DataType::Date32 | DataType::Date64 => PgType::Date,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::UInt64 => {
                return Err("PostgreSQL has no unsigned 64-bit type: CAST it to BIGINT (if it \
                            fits) or to a string in the query"
                    .into());
            }
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => {
                return Err("decimals are not written yet: CAST it to DOUBLE or to a string in \
                            the query"
                    .into());
            }
            other => {
                return Err(format!(
                    "{other} has no PostgreSQL column type here: select scalar columns (CAST \
                     it to a string in the query)"
                ));
            }
        })
    }

    /// The type's name in `CREATE TABLE`.
    pub fn sql(self) -> &'static str {
        match self {
            PgType::Bool => "boolean",
            PgType::Int2 => "smallint",
            PgType::Int4 => "integer",
            PgType::Int8 => "bigint",
            PgType::Float4 => "real",
            PgType::Float8 => "double precision",
            PgType::Text => "text",
            PgType::Bytea => "bytea",
            PgType::Date => "date",
            PgType::Timestamp => "timestamp without time zone",
            PgType::Timestamptz => "timestamp with time zone",
        }
    }

    /// Whether an existing column of type `udt` (`information_schema.columns.udt_name`)
    /// reads this type's binary format: binary COPY needs the exact type.
    pub fn accepts(self, udt: &str) -> bool {
        match self {
            PgType::Bool => udt == "bool",
            PgType::Int2 => udt == "int2",
            PgType::Int4 => udt == "int4",
            PgType::Int8 => udt == "int8",
            PgType::Float4 => udt == "float4",
            PgType::Float8 => udt == "float8",
            PgType::Text => matches!(udt, "text" | "varchar" | "bpchar" | "name"),
            PgType::Bytea => udt == "bytea",
            PgType::Date => udt == "date",
            PgType::Timestamp => udt == "timestamp",
            PgType::Timestamptz => udt == "timestamptz",
        }
    }

    /// The Arrow type a column of type `source` is cast to before it is encoded (itself when
    /// no cast is needed).
    pub fn arrow(self, source: &DataType) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            // Strings and binaries are read as they come; only dictionaries and fixed-size
            // binaries are converted.
            PgType::Text if is_text(source) => source.clone(),
            PgType::Text => DataType::LargeUtf8,
            PgType::Bytea if is_binary(source) => source.clone(),
            PgType::Bytea => DataType::LargeBinary,
            PgType::Date => DataType::Date32,
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz => {
                let tz = match source {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                DataType::Timestamp(TimeUnit::Microsecond, tz)
            }
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_binary(t: &DataType) -> bool {
    matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

/// `name` quoted as a PostgreSQL identifier (`"` doubled), so any column name is safe.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A possibly schema-qualified table name (`schema.table`) quoted part by part.
pub fn quote_table(table: &str) -> String {
    match table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_mapped_type_accepts_the_column_it_creates() {
        let udt = |t: PgType| match t {
            PgType::Bool => "bool",
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Text => "text",
            PgType::Bytea => "bytea",
            PgType::Date => "date",
            PgType::Timestamp => "timestamp",
            PgType::Timestamptz => "timestamptz",
        };
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let tz = DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("+00:00")));
        for (arrow, pg) in [
            (DataType::Boolean, PgType::Bool),
            (DataType::UInt8, PgType::Int2),
            (DataType::UInt16, PgType::Int4),
            (DataType::UInt32, PgType::Int8),
            (DataType::Float16, PgType::Float4),
            (DataType::Utf8View, PgType::Text),
            (dict, PgType::Text),
            (DataType::FixedSizeBinary(4), PgType::Bytea),
            (DataType::Date64, PgType::Date),
            (DataType::Timestamp(TimeUnit::Second, None), PgType::Timestamp),
            (tz, PgType::Timestamptz),
        ] {
            assert_eq!(PgType::for_arrow(&arrow), Ok(pg), "{arrow}");
            assert!(pg.accepts(udt(pg)), "{pg:?}");
            assert!(!pg.accepts("numeric"), "{pg:?}");
        }
        for refused in [DataType::UInt64, DataType::Decimal128(10, 2)] {
            let advice = PgType::for_arrow(&refused).unwrap_err();
            assert!(advice.contains("CAST"), "{advice}");
        }
    }

    #[test]
    fn identifiers_are_quoted_so_that_no_name_escapes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("s.t"), "\"s\".\"t\"");
        assert_eq!(quote_table("t; DROP TABLE x"), "\"t; DROP TABLE x\"");
    }
}
