//! A function's arguments read row by row, as sizes, integers and short texts, without
//! copying them: what the estimates of [`super::growth`] need.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;

/// The arguments of one call.
pub(crate) struct Args<'a> {
    values: &'a [ColumnarValue],
}

impl<'a> Args<'a> {
    pub(crate) fn new(values: &'a [ColumnarValue]) -> Self {
        Self { values }
    }

    /// How many arguments the call has.
    pub(crate) fn count(&self) -> usize {
        self.values.len()
    }

    /// Whether every argument is one value (the call then builds one value).
    pub(crate) fn all_scalar(&self) -> bool {
        self.values.iter().all(|v| matches!(v, ColumnarValue::Scalar(_)))
    }

    /// Bytes of argument `i` at `row`: a string's or binary's length, a fixed-width type's
    /// width; for a nested value, its size as a scalar, or its array's memory per row. Zero for
    /// a null or a missing argument.
    pub(crate) fn bytes(&self, i: usize, row: usize) -> u128 {
        match self.values.get(i) {
            None => 0,
            Some(ColumnarValue::Scalar(s)) => scalar_bytes(s),
            Some(ColumnarValue::Array(a)) => array_bytes(a.as_ref(), row),
        }
    }

    /// Whether argument `i` is text or binary.
    pub(crate) fn is_bytes(&self, i: usize) -> bool {
        self.values.get(i).is_some_and(|v| {
            matches!(
                v.data_type(),
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
            )
        })
    }

    /// Argument `i` at `row` as an integer; `None` when null, missing or not an integer.
    pub(crate) fn int(&self, i: usize, row: usize) -> Option<i64> {
        match self.values.get(i)? {
            ColumnarValue::Scalar(s) => scalar_int(s),
            ColumnarValue::Array(a) if row >= a.len() || a.is_null(row) => None,
            ColumnarValue::Array(a) => match a.as_primitive_opt::<Int64Type>() {
                Some(ints) => Some(ints.value(row)),
                None => scalar_int(&ScalarValue::try_from_array(a, row).ok()?),
            },
        }
    }

    /// Argument `i` at `row` as text; `None` when null, missing or not a string.
    pub(crate) fn text(&self, i: usize, row: usize) -> Option<&'a str> {
        match self.values.get(i)? {
            ColumnarValue::Scalar(s) => s.try_as_str().flatten(),
            ColumnarValue::Array(a) if row >= a.len() || a.is_null(row) => None,
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Utf8 => Some(a.as_string::<i32>().value(row)),
                DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row)),
                DataType::Utf8View => Some(a.as_string_view().value(row)),
                _ => None,
            },
        }
    }
}

fn scalar_bytes(s: &ScalarValue) -> u128 {
    if let Some(text) = s.try_as_str() {
        return text.map_or(0, |t| t.len() as u128);
    }
    match s {
        ScalarValue::Binary(b)
        | ScalarValue::LargeBinary(b)
        | ScalarValue::BinaryView(b)
        | ScalarValue::FixedSizeBinary(_, b) => b.as_ref().map_or(0, |b| b.len() as u128),
        _ if s.is_null() => 0,
        other => other.data_type().primitive_width().unwrap_or_else(|| other.size()) as u128,
    }
}

fn array_bytes(a: &dyn Array, row: usize) -> u128 {
    if row >= a.len() || a.is_null(row) {
        return 0;
    }
    let len = match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value_length(row) as usize,
        DataType::LargeUtf8 => a.as_string::<i64>().value_length(row) as usize,
        DataType::Utf8View => a.as_string_view().value(row).len(),
        DataType::Binary => a.as_binary::<i32>().value_length(row) as usize,
        DataType::LargeBinary => a.as_binary::<i64>().value_length(row) as usize,
        DataType::BinaryView => a.as_binary_view().value(row).len(),
        // The average: exact for the batch's total, which is what can exhaust memory.
        other => other.primitive_width().unwrap_or_else(|| a.get_array_memory_size() / a.len()),
    };
    len as u128
}

fn scalar_int(s: &ScalarValue) -> Option<i64> {
    match s {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        _ => None,
    }
}
