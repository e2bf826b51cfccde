//! The built-in [`QueryValidator`]s. Each reads the statement sqlparser parsed (never the SQL
//! text) and reports findings under a stable code listed in [`codes`]. Job files name them
//! as rules: [`build_validator`] lists the names and their options.
//!
//! | code | severity | fires when |
//! |---|---|---|
//! | `parse_error` | deny | the SQL does not parse (message and position from sqlparser) |
//! | `empty_query` | deny | the SQL holds no statement (blank, or only comments) |
//! | `multiple_statements` | deny | more than one statement: Flight SQL runs one |
//! | `not_read_only` | deny | any statement, also nested (`EXPLAIN ANALYZE DELETE`, `SELECT INTO`, a data-modifying CTE), other than a query, `EXPLAIN` or `SHOW` |
//! | `order_by_without_limit` | warn | the outermost query sorts without `LIMIT`/`FETCH` |
//! | `no_time_filter` | warn | no time range is given and some `SELECT` (outer, CTE, derived table, subquery, `UNION` branch) reads a table without a `WHERE` restricting a time column |
//! | `select_star_wide` | warn / info | the outermost projection has `*`: warn when the result has more columns than the limit, info when the width is unknown |
//! | `join_without_condition` | warn | a cross product: the relations of a `FROM` are not all connected by join conditions and `WHERE` comparisons (`FROM a, b, c WHERE a.x = b.x` leaves `c` apart) |
//! | `too_many_columns` | warn | the result schema has more columns than the limit |
//! | `row_size_too_large` | warn | the estimated row size exceeds the limit |
//! | `server_rejected` | deny | (callers that prepare the query) the server refused it |
//! | `schema_unavailable` | info | (callers that prepare the query) the server could not be asked |

mod ast;
mod columns;
mod join;
mod order_by;
mod parse;
mod read_only;
mod registry;
mod select_star;
mod time_filter;

use std::sync::Arc;

use flightline_core::validate::{Policy, QueryValidator, ValidationPipeline};
use serde::{Deserialize, Serialize};

pub use columns::{ColumnCountValidator, RowSizeValidator};
pub use join::JoinConditionValidator;
pub use order_by::OrderByLimitValidator;
pub use parse::ParseValidator;
pub use read_only::ReadOnlyValidator;
pub use registry::{build_validator, validator_names};
pub use select_star::SelectStarValidator;
pub use time_filter::{TimeFilterValidator, is_time_column_name};

/// The stable codes of the built-in findings.
pub mod codes {
    /// The SQL does not parse.
    pub const PARSE_ERROR: &str = "parse_error";
    /// The SQL holds no statement.
    pub const EMPTY_QUERY: &str = "empty_query";
    /// The SQL holds more than one statement.
    pub const MULTIPLE_STATEMENTS: &str = "multiple_statements";
    /// A statement would write or change state.
    pub const NOT_READ_ONLY: &str = "not_read_only";
    /// The outermost query sorts without a limit.
    pub const ORDER_BY_WITHOUT_LIMIT: &str = "order_by_without_limit";
    /// Nothing restricts the query in time.
    pub const NO_TIME_FILTER: &str = "no_time_filter";
    /// `SELECT *` over a wide (or unknown) result.
    pub const SELECT_STAR_WIDE: &str = "select_star_wide";
    /// Relations joined without a join condition.
    pub const JOIN_WITHOUT_CONDITION: &str = "join_without_condition";
    /// The result has too many columns.
    pub const TOO_MANY_COLUMNS: &str = "too_many_columns";
    /// The estimated row size is too large.
    pub const ROW_SIZE_TOO_LARGE: &str = "row_size_too_large";
    /// The server refused to prepare the query (reported by callers that asked it, e.g.
    /// `flightline validate`).
    pub const SERVER_REJECTED: &str = flightline_core::validate::SERVER_REJECTED;
    /// The result schema could not be obtained, so the schema rules were skipped (reported by
    /// callers that asked a server).
    pub const SCHEMA_UNAVAILABLE: &str = "schema_unavailable";
}

/// Thresholds of the size-related validators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorLimits {
    /// More result columns than this is `too_many_columns`. Default 50.
    pub max_columns: usize,
    /// An estimated row size above this many bytes is `row_size_too_large`. Default 1024.
    pub max_row_bytes: f64,
    /// `SELECT *` returning more columns than this is `select_star_wide`. Default 10.
    pub wide_select_star_columns: usize,
}

impl Default for ValidatorLimits {
    fn default() -> Self {
        Self { max_columns: 50, max_row_bytes: 1024.0, wide_select_star_columns: 10 }
    }
}

/// Every built-in validator with the default limits, in the order findings are reported:
/// parse, read-only, then the performance rules.
pub fn default_validators() -> Vec<Arc<dyn QueryValidator>> {
    validators_with(&ValidatorLimits::default())
}

/// Every built-in validator with the given limits.
pub fn validators_with(limits: &ValidatorLimits) -> Vec<Arc<dyn QueryValidator>> {
    vec![
        Arc::new(ParseValidator),
        Arc::new(ReadOnlyValidator),
        Arc::new(OrderByLimitValidator),
        Arc::new(TimeFilterValidator::default()),
        Arc::new(SelectStarValidator::new(limits.wide_select_star_columns)),
        Arc::new(JoinConditionValidator),
        Arc::new(ColumnCountValidator::new(limits.max_columns)),
        Arc::new(RowSizeValidator::new(limits.max_row_bytes)),
    ]
}

/// A pipeline of every built-in validator with the default limits under `policy`.
pub fn builtin_pipeline(policy: Policy) -> ValidationPipeline {
    builtin_pipeline_with(&ValidatorLimits::default(), policy)
}

/// A pipeline of every built-in validator with the given limits under `policy`.
pub fn builtin_pipeline_with(limits: &ValidatorLimits, policy: Policy) -> ValidationPipeline {
    ValidationPipeline::new().with_policy(policy).with_validators(validators_with(limits))
}
