//! The per-type cost model behind [`SchemaAnalysis`](super::SchemaAnalysis).
//!
//! Every figure is the number of bytes one value of the type adds to the Arrow buffers of a
//! record batch, so that `rows × row size` approximates the memory a result takes:
//!
//! | type | bytes per value |
//! |---|---|
//! | `Null` | 0 (no buffer) |
//! | `Boolean` | 0.125 (one bit) |
//! | `Int8`/`UInt8`, `Int16`/`UInt16`/`Float16`, `Int32`/`UInt32`/`Float32`, `Int64`/`UInt64`/`Float64` | 1, 2, 4, 8 |
//! | `Date32`, `Time32`; `Date64`, `Time64`, `Timestamp`, `Duration` | 4; 8 |
//! | `Interval(YearMonth)`, `Interval(DayTime)`, `Interval(MonthDayNano)` | 4, 8, 16 |
//! | `Decimal32`, `Decimal64`, `Decimal128`, `Decimal256` | 4, 8, 16, 32 |
//! | `FixedSizeBinary(n)` | n |
//! | `Utf8` / `Binary` | average + 4 (one `i32` offset) |
//! | `LargeUtf8` / `LargeBinary` | average + 8 (one `i64` offset) |
//! | `Utf8View` / `BinaryView` | 16 (the view) + the average when it exceeds the 12 bytes a view inlines |
//! | `List` / `LargeList` | 4 / 8 (offset) + list length × element |
//! | `ListView` / `LargeListView` | 8 / 16 (offset and size) + list length × element |
//! | `FixedSizeList(_, n)` | n × element |
//! | `Struct` | sum of the children |
//! | `Map` | 4 (offset) + list length × (key + value entry struct) |
//! | `Union` sparse / dense | 1 (type id) + sum of children / 1 + 4 (offset) + the largest child |
//! | `Dictionary(K, V)` | width of K + the estimate of V |
//! | `RunEndEncoded(R, V)` | width of R + the estimate of V |
//!
//! Dictionaries and run-end encoding are costed as if every row held its own value: an upper
//! bound, since the point of both encodings is that values repeat, but the only one that holds
//! without looking at the data. Validity bitmaps (one bit per value of a nullable column) are not
//! counted: Arrow omits them from any batch without nulls, so counting them would overstate the
//! common case; the error is at most 1/8 byte per nullable column.

use arrow::datatypes::{DataType, IntervalUnit, UnionMode};
use serde::{Deserialize, Serialize};

/// Assumptions for the types whose size depends on the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SizeOptions {
    /// Average length in bytes of a string value (`Utf8`, `LargeUtf8`, `Utf8View`). Default 32.
    pub string_bytes: usize,
    /// Average length in bytes of a binary value (`Binary`, `LargeBinary`, `BinaryView`). Default 64.
    pub binary_bytes: usize,
    /// Average number of elements in a list or entries in a map. Default 4.
    pub list_length: usize,
}

impl Default for SizeOptions {
    fn default() -> Self {
        Self { string_bytes: 32, binary_bytes: 64, list_length: 4 }
    }
}

/// Bytes a view inlines: longer values live in a separate data buffer.
const VIEW_INLINE_BYTES: usize = 12;
/// Size of the view struct itself (length, prefix, buffer index, offset).
const VIEW_BYTES: f64 = 16.0;

/// Estimated bytes one value of `data_type` adds to a record batch (see the module table).
pub fn estimate_bytes(data_type: &DataType, options: &SizeOptions) -> f64 {
    if let Some(width) = fixed_width(data_type) {
        return width;
    }
    let strings = options.string_bytes as f64;
    let binaries = options.binary_bytes as f64;
    let items = options.list_length as f64;
    match data_type {
        DataType::Utf8 => strings + 4.0,
        DataType::LargeUtf8 => strings + 8.0,
        DataType::Utf8View => view_bytes(options.string_bytes),
        DataType::Binary => binaries + 4.0,
        DataType::LargeBinary => binaries + 8.0,
        DataType::BinaryView => view_bytes(options.binary_bytes),
        DataType::List(f) => 4.0 + items * estimate_bytes(f.data_type(), options),
        DataType::LargeList(f) => 8.0 + items * estimate_bytes(f.data_type(), options),
        DataType::ListView(f) => 8.0 + items * estimate_bytes(f.data_type(), options),
        DataType::LargeListView(f) => 16.0 + items * estimate_bytes(f.data_type(), options),
        DataType::FixedSizeList(f, n) => {
            f64::from((*n).max(0)) * estimate_bytes(f.data_type(), options)
        }
        DataType::Struct(fields) => {
            fields.iter().map(|f| estimate_bytes(f.data_type(), options)).sum()
        }
        DataType::Map(entries, _) => 4.0 + items * estimate_bytes(entries.data_type(), options),
        DataType::Union(fields, UnionMode::Sparse) => {
            1.0 + fields.iter().map(|(_, f)| estimate_bytes(f.data_type(), options)).sum::<f64>()
        }
        DataType::Union(fields, UnionMode::Dense) => {
            5.0 + fields
                .iter()
                .map(|(_, f)| estimate_bytes(f.data_type(), options))
                .fold(0.0, f64::max)
        }
        DataType::Dictionary(key, value) => {
            estimate_bytes(key, options) + estimate_bytes(value, options)
        }
        DataType::RunEndEncoded(run_ends, values) => {
            estimate_bytes(run_ends.data_type(), options)
                + estimate_bytes(values.data_type(), options)
        }
        // Every fixed-width type was answered above; a type added to arrow later costs like a
        // pointer-sized value until it gets its own row in the table.
        _ => 8.0,
    }
}

fn view_bytes(average: usize) -> f64 {
    if average > VIEW_INLINE_BYTES { VIEW_BYTES + average as f64 } else { VIEW_BYTES }
}

/// The width of types whose size does not depend on the data, `None` for the others.
fn fixed_width(data_type: &DataType) -> Option<f64> {
    let width = match data_type {
        DataType::Null => 0.0,
        DataType::Boolean => 0.125,
        DataType::Int8 | DataType::UInt8 => 1.0,
        DataType::Int16 | DataType::UInt16 | DataType::Float16 => 2.0,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4.0,
        DataType::Date32 | DataType::Time32(_) | DataType::Decimal32(_, _) => 4.0,
        DataType::Int64 | DataType::UInt64 | DataType::Float64 => 8.0,
        DataType::Date64 | DataType::Time64(_) | DataType::Decimal64(_, _) => 8.0,
        DataType::Timestamp(_, _) | DataType::Duration(_) => 8.0,
        DataType::Interval(IntervalUnit::YearMonth) => 4.0,
        DataType::Interval(IntervalUnit::DayTime) => 8.0,
        DataType::Interval(IntervalUnit::MonthDayNano) => 16.0,
        DataType::Decimal128(_, _) => 16.0,
        DataType::Decimal256(_, _) => 32.0,
        DataType::FixedSizeBinary(n) => f64::from((*n).max(0)),
        _ => return None,
    };
    Some(width)
}
