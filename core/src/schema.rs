//! Schema analysis: what a query returns and how much memory a row of it takes, learned from the
//! prepared statement's dataset schema without running the query.
//!
//! ```
//! use arrow::datatypes::{DataType, Field, Schema};
//! use flightline_core::schema::{SchemaAnalysis, SizeOptions};
//!
//! let schema = Schema::new(vec![
//!     Field::new("level", DataType::Int32, false),
//!     Field::new("msg", DataType::Utf8, true),
//! ]);
//! let analysis = SchemaAnalysis::from_schema(&schema, &SizeOptions::default());
//! assert_eq!(analysis.column_count, 2);
//! assert_eq!(analysis.estimated_row_bytes, 4.0 + 32.0 + 4.0);
//! ```

mod size;

use std::fmt;

use arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;

pub use size::{SizeOptions, estimate_bytes};

/// One column of a result schema, with its estimated size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnAnalysis {
    /// Column name as the server returns it.
    pub name: String,
    /// Arrow type of the column (serialized as arrow's display string, e.g. `Timestamp(ns, "+00:00")`).
    #[serde(serialize_with = "serialize_display")]
    pub data_type: DataType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
    /// Estimated bytes per value; fractional for booleans (one bit is 0.125 byte).
    pub estimated_bytes: f64,
}

impl ColumnAnalysis {
    /// Whether the column holds instants or dates (`Timestamp`, `Date32`, `Date64`), also under a
    /// dictionary or run-end encoding: the columns a time predicate restricts.
    pub fn is_temporal(&self) -> bool {
        is_temporal(&self.data_type)
    }
}

fn is_temporal(data_type: &DataType) -> bool {
    match data_type {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => true,
        DataType::Dictionary(_, value) => is_temporal(value),
        DataType::RunEndEncoded(_, values) => is_temporal(values.data_type()),
        _ => false,
    }
}

/// A result schema with per-column and per-row size estimates (see [`estimate_bytes`] for the cost model).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaAnalysis {
    /// Number of top-level columns.
    pub column_count: usize,
    /// Sum of the columns' estimated bytes.
    pub estimated_row_bytes: f64,
    /// The columns, in schema order.
    pub columns: Vec<ColumnAnalysis>,
    /// The assumptions the estimates were made with.
    pub options: SizeOptions,
}

impl SchemaAnalysis {
    /// Analyses `schema` with the given size assumptions.
    pub fn from_schema(schema: &Schema, options: &SizeOptions) -> Self {
        let columns: Vec<ColumnAnalysis> =
            schema.fields().iter().map(|field| analyse_field(field, options)).collect();
        Self {
            column_count: columns.len(),
            estimated_row_bytes: columns.iter().map(|c| c.estimated_bytes).sum(),
            columns,
            options: *options,
        }
    }

    /// Analyses the dataset schema of a prepared statement: the result schema the server
    /// announced without executing the query.
    pub fn from_prepared(
        prepared: &crate::client::PreparedStatement,
        options: &SizeOptions,
    ) -> Self {
        Self::from_schema(&prepared.dataset_schema, options)
    }

    /// Estimated bytes of `rows` rows of this result.
    pub fn estimated_bytes_for_rows(&self, rows: u64) -> f64 {
        self.estimated_row_bytes * rows as f64
    }

    /// The column named `name`, if any (exact, case-sensitive match as Arrow names are).
    pub fn column(&self, name: &str) -> Option<&ColumnAnalysis> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Names of the columns holding timestamps or dates.
    pub fn temporal_columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter(|c| c.is_temporal()).map(|c| c.name.as_str())
    }
}

fn analyse_field(field: &Field, options: &SizeOptions) -> ColumnAnalysis {
    ColumnAnalysis {
        name: field.name().clone(),
        data_type: field.data_type().clone(),
        nullable: field.is_nullable(),
        estimated_bytes: estimate_bytes(field.data_type(), options),
    }
}

fn serialize_display<S: serde::Serializer>(
    value: &DataType,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Formats a byte estimate: whole numbers without decimals, fractions with up to three.
pub fn format_bytes(bytes: f64) -> String {
    if bytes.fract() == 0.0 {
        format!("{bytes:.0}")
    } else {
        let text = format!("{bytes:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The table the guide prints: one line per column, then the totals.
impl fmt::Display for SchemaAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types: Vec<String> = self.columns.iter().map(|c| c.data_type.to_string()).collect();
        let name_width = width_of(self.columns.iter().map(|c| c.name.as_str()), "column");
        let type_width = width_of(types.iter().map(String::as_str), "type");
        writeln!(
            f,
            "{:<name_width$}  {:<type_width$}  {:<8}  {:>10}",
            "column", "type", "nullable", "est. bytes"
        )?;
        for (column, type_name) in self.columns.iter().zip(&types) {
            writeln!(
                f,
                "{:<name_width$}  {:<type_width$}  {:<8}  {:>10}",
                column.name,
                type_name,
                if column.nullable { "yes" } else { "no" },
                format_bytes(column.estimated_bytes)
            )?;
        }
        writeln!(f)?;
        writeln!(f, "total columns: {}", self.column_count)?;
        write!(f, "estimated row size: {} bytes", format_bytes(self.estimated_row_bytes))
    }
}

fn width_of<'a>(values: impl Iterator<Item = &'a str>, header: &str) -> usize {
    values
        .map(|v| v.chars().count())
        .chain(std::iter::once(header.len()))
        .max()
        .unwrap_or(header.len())
}
