//! Values across the boundary: reports, statistics and findings go to Python as plain dicts and
//! lists (through JSON, their serde form); `begin` / `end` arguments come in as strings.

use chrono::Utc;
use flightline_core::TimeRange;
use flightline_core::time::parse_instant;
use pyo3::prelude::*;
use serde::Serialize;

use crate::errors::{ConfigError, to_py};

/// `value` as the Python object `json.loads` makes of its JSON form.
pub fn to_python<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|err| ConfigError::new_err(format!("cannot convert a result to Python: {err}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// A Python value (dict, list, str, number, bool, None) as JSON, through `json.dumps`.
pub fn from_python(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let text: String = value.py().import("json")?.call_method1("dumps", (value,))?.extract()?;
    serde_json::from_str(&text)
        .map_err(|err| ConfigError::new_err(format!("cannot read {text}: {err}")))
}

/// The time range of `begin` and `end`, each `None`, an RFC 3339 instant or, for `begin`, a
/// span back from now (`"7d"`). The Python layer turns `datetime` values into RFC 3339 first.
/// An `end` alone is refused: "everything before" is not a range a server can prune on.
pub fn time_range(begin: Option<&str>, end: Option<&str>) -> PyResult<Option<TimeRange>> {
    let end_instant = match end {
        Some(end) => parse_instant(end).map_err(to_py)?,
        None => Utc::now(),
    };
    let Some(begin) = begin else {
        return match end {
            None => Ok(None),
            Some(end) => Err(to_py(flightline_core::Error::TimeRange {
                input: end.to_string(),
                reason: "an end needs a begin: pass begin too (an instant or a span like \"7d\")"
                    .into(),
            })),
        };
    };
    let is_span = begin.trim_start().starts_with(|c: char| c.is_ascii_digit())
        && parse_instant(begin).is_err();
    let range = if is_span {
        TimeRange::span_ending_at(begin, end_instant)
    } else {
        parse_instant(begin).and_then(|begin| TimeRange::new(begin, end_instant))
    };
    range.map(Some).map_err(to_py)
}
