//! The limits an operator puts on queries: how long one may run, how many run at once, how long
//! a query waits for a free slot, how much SQL one statement may hold, and how large a value
//! one function may build.

use std::time::Duration;

/// A query running longer than this is cancelled, unless told otherwise.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Queries planned or run at once, unless told otherwise.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 16;
/// How long a query waits for a free slot before the server answers "busy", unless told otherwise.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of SQL one statement may hold, unless told otherwise. Far above any hand-written
/// query and above generated ones such as an `IN` list of ten thousand UUIDs, yet small enough
/// that planning the deepest expression tree this much SQL can spell stays within the query
/// threads' stacks and takes seconds, not minutes (planning cannot be interrupted midway).
pub const DEFAULT_MAX_SQL_BYTES: usize = 1 << 20;

pub use crate::values::DEFAULT_MAX_VALUE_BYTES;

/// What the server allows one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    /// Past this, a query is cancelled with `ResourceExhausted` naming `--query-timeout`;
    /// `None` lets queries run for ever.
    pub query_timeout: Option<Duration>,
    /// Queries planned or run at once; at least 1.
    pub max_concurrent: usize,
    /// How long a query waits for a slot before `Unavailable` ("server busy, retry").
    pub queue_timeout: Duration,
    /// Longer statements are refused with `InvalidArgument` before parsing.
    pub max_sql_bytes: usize,
    /// A function call that would build a larger value (a string, a list) is refused with
    /// `ResourceExhausted` naming `--max-value-bytes` and the function, before it allocates.
    pub max_value_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            max_concurrent: DEFAULT_MAX_CONCURRENT_QUERIES,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            max_sql_bytes: DEFAULT_MAX_SQL_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}
