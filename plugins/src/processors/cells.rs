//! Arrow values as JSON report cells.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use arrow::util::display::ArrayFormatter;

/// The value at `row` of `array` as JSON: numbers and booleans as such, NULL as null,
/// everything else as its display text.
pub(crate) fn cell(array: &ArrayRef, row: usize) -> serde_json::Value {
    if array.is_null(row) {
        return serde_json::Value::Null;
    }
    let data_type = array.data_type();
    if data_type.is_signed_integer()
        && let Ok(cast) = arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
    {
        return cast.as_primitive::<Int64Type>().value(0).into();
    }
    if data_type.is_unsigned_integer()
        && let Ok(cast) = arrow::compute::cast(&array.slice(row, 1), &DataType::UInt64)
    {
        return cast.as_primitive::<UInt64Type>().value(0).into();
    }
    if data_type.is_floating()
        && let Ok(cast) = arrow::compute::cast(&array.slice(row, 1), &DataType::Float64)
    {
        return float(cast.as_primitive::<Float64Type>().value(0));
    }
    if let DataType::Boolean = data_type {
        return array.as_boolean().value(row).into();
    }
    text(array, row).into()
}

/// A float as JSON; NaN and infinities, which JSON cannot hold, as text.
pub(crate) fn float(value: f64) -> serde_json::Value {
    serde_json::Number::from_f64(value)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| value.to_string().into())
}

/// The display text of the value at `row` (empty for NULL).
pub(crate) fn text(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return String::new();
    }
    ArrayFormatter::try_new(array.as_ref(), &Default::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}
