//! The limits an operator puts on queries: how long one may run, how many run at once (in all
//! and per caller), how long a query waits for a free slot, how long a result may wait on a
//! client that stopped reading, how much SQL one statement may hold, and how large a value one
//! function may build.

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
/// How long a result stream may wait on a client that stopped reading, unless told otherwise.
pub const DEFAULT_SEND_STALL_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Queries one caller (user, token, or address when auth is off) may plan or run at once;
    /// `None`: a quarter of `max_concurrent`, at least 1. See [`Self::per_caller`].
    pub max_per_caller: Option<usize>,
    /// A result stream whose client read nothing for this long is cancelled and frees its
    /// slot; `None` lets it wait (until `query_timeout`).
    pub send_stall_timeout: Option<Duration>,
}

impl QueryLimits {
    /// Queries one caller may plan or run at once.
    pub fn per_caller(&self) -> usize {
        self.max_per_caller.unwrap_or(self.max_concurrent / 4).max(1)
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            max_concurrent: DEFAULT_MAX_CONCURRENT_QUERIES,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            max_sql_bytes: DEFAULT_MAX_SQL_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_per_caller: None,
            send_stall_timeout: Some(DEFAULT_SEND_STALL_TIMEOUT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_gets_a_quarter_of_the_slots_unless_told_otherwise() {
        let with = |max_concurrent, max_per_caller| {
            QueryLimits { max_concurrent, max_per_caller, ..QueryLimits::default() }.per_caller()
        };
        assert_eq!(with(16, None), 4);
        assert_eq!(with(3, None), 1);
        assert_eq!(with(1, None), 1);
        assert_eq!(with(16, Some(9)), 9);
        assert_eq!(with(16, Some(0)), 1);
    }
}
