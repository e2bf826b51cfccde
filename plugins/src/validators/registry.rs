//! The built-in rules by name, with their options: how a job file names them.
//!
//! | rule | options |
//! |---|---|
//! | `parse` | none |
//! | `read_only` | none |
//! | `order_by_limit` | none |
//! | `time_filter` | `time_columns`: more column names counted as time columns |
//! | `select_star` | `wide_columns`: flag `SELECT *` above this many columns (default 10) |
//! | `join_condition` | none |
//! | `column_count` | `max_columns` (default 50) |
//! | `row_size` | `max_row_bytes` (default 1024) |

use std::sync::Arc;

use flightline_core::validate::QueryValidator;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    ColumnCountValidator, JoinConditionValidator, OrderByLimitValidator, ParseValidator,
    ReadOnlyValidator, RowSizeValidator, SelectStarValidator, TimeFilterValidator, ValidatorLimits,
};
use crate::error::PluginsError;

const NAMES: &[&str] = &[
    "parse",
    "read_only",
    "order_by_limit",
    "time_filter",
    "select_star",
    "join_condition",
    "column_count",
    "row_size",
];

/// The rule names [`build_validator`] accepts, in the order of [`super::default_validators`].
pub fn validator_names() -> &'static [&'static str] {
    NAMES
}

/// Options of a rule that takes none: any key is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeFilterOptions {
    #[serde(default)]
    time_columns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectStarOptions {
    wide_columns: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnCountOptions {
    max_columns: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowSizeOptions {
    max_row_bytes: f64,
}

/// Builds the built-in rule `name` from its options (a JSON object; `null` means all defaults).
/// Errors name the rule and say what to write instead.
///
/// ```
/// use flightline_plugins::validators::build_validator;
///
/// let rule = build_validator("time_filter", serde_json::json!({ "time_columns": ["ev"] })).unwrap();
/// assert_eq!(rule.name(), "time-filter");
/// let err = build_validator("time_filtre", serde_json::Value::Null).err().unwrap();
/// assert!(err.to_string().contains("time_filter"), "{err}");
/// ```
pub fn build_validator(
    name: &str,
    options: serde_json::Value,
) -> Result<Arc<dyn QueryValidator>, PluginsError> {
    let defaults = ValidatorLimits::default();
    let options = match options {
        serde_json::Value::Null => serde_json::json!({}),
        other => other,
    };
    Ok(match name {
        "parse" => none(name, options).map(|()| Arc::new(ParseValidator) as _)?,
        "read_only" => none(name, options).map(|()| Arc::new(ReadOnlyValidator) as _)?,
        "order_by_limit" => none(name, options).map(|()| Arc::new(OrderByLimitValidator) as _)?,
        "join_condition" => none(name, options).map(|()| Arc::new(JoinConditionValidator) as _)?,
        "time_filter" => {
            let o: TimeFilterOptions = parse(name, options)?;
            Arc::new(TimeFilterValidator::with_time_columns(o.time_columns))
        }
        "select_star" => {
            let options = with_default(options, "wide_columns", defaults.wide_select_star_columns);
            let o: SelectStarOptions = parse(name, options)?;
            Arc::new(SelectStarValidator::new(o.wide_columns))
        }
        "column_count" => {
            let o: ColumnCountOptions =
                parse(name, with_default(options, "max_columns", defaults.max_columns))?;
            Arc::new(ColumnCountValidator::new(o.max_columns))
        }
        "row_size" => {
            let o: RowSizeOptions =
                parse(name, with_default(options, "max_row_bytes", defaults.max_row_bytes))?;
            Arc::new(RowSizeValidator::new(o.max_row_bytes))
        }
        _ => {
            return Err(PluginsError::UnknownValidator {
                name: name.to_string(),
                known: NAMES.iter().map(|n| n.to_string()).collect(),
            });
        }
    })
}

fn none(rule: &str, options: serde_json::Value) -> Result<(), PluginsError> {
    parse::<NoOptions>(rule, options).map(|_| ())
}

/// `options` with `key` set to `value` unless the file gives it.
fn with_default(
    mut options: serde_json::Value,
    key: &str,
    value: impl serde::Serialize,
) -> serde_json::Value {
    if let (Some(object), Ok(value)) = (options.as_object_mut(), serde_json::to_value(value)) {
        object.entry(key).or_insert(value);
    }
    options
}

fn parse<T: DeserializeOwned>(rule: &str, options: serde_json::Value) -> Result<T, PluginsError> {
    serde_json::from_value(options).map_err(|err| PluginsError::ValidatorOptions {
        validator: rule.to_string(),
        message: format!("invalid options: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use flightline_core::validate::ValidationContext;

    use super::*;

    #[test]
    fn every_name_builds_with_no_options_and_unknown_names_list_the_known_ones() {
        for name in validator_names() {
            assert!(build_validator(name, serde_json::Value::Null).is_ok(), "{name}");
        }
        let err = build_validator("read_onyl", serde_json::Value::Null).err().unwrap().to_string();
        assert!(err.contains("read_onyl") && err.contains("read_only"), "{err}");
    }

    #[test]
    fn a_rule_without_options_refuses_any_and_names_the_rule_and_the_key() {
        let err = build_validator("parse", serde_json::json!({ "strict": true }))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`parse`") && err.contains("strict"), "{err}");
        let err = build_validator("column_count", serde_json::json!({ "max_columns": "many" }))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("column_count") && err.contains("invalid type"), "{err}");
    }

    #[test]
    fn time_columns_make_a_filter_on_that_column_a_time_restriction() {
        let ctx = ValidationContext::new("SELECT level FROM log_entries WHERE moment > 5");
        let default = build_validator("time_filter", serde_json::Value::Null).unwrap();
        assert_eq!(futures::executor::block_on(default.validate(&ctx)).len(), 1);
        let options = serde_json::json!({ "time_columns": ["Moment"] });
        let configured = build_validator("time_filter", options).unwrap();
        assert!(futures::executor::block_on(configured.validate(&ctx)).is_empty());
    }
}
