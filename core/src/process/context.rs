//! What a processor knows about the current call.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::WindowLease;
use crate::time::TimeRange;

/// How many rows the query will return, as far as anyone knows. Never a fake zero: a count
/// that has not arrived (or failed) is [`RowEstimate::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RowEstimate {
    /// No estimate: not asked for, not arrived yet, failed or timed out.
    #[default]
    Unknown,
    /// The server's `COUNT(*)` of the same query over the same time range.
    Exact(u64),
}

impl RowEstimate {
    /// The row count when known.
    pub fn rows(&self) -> Option<u64> {
        match self {
            RowEstimate::Unknown => None,
            RowEstimate::Exact(rows) => Some(*rows),
        }
    }

    /// Percentage of the estimate that `rows` represents, capped at 100 (rows may arrive
    /// between the count and the stream). `None` when unknown or zero.
    pub fn percent(&self, rows: u64) -> Option<f64> {
        match self.rows() {
            Some(total) if total > 0 => Some((rows as f64 * 100.0 / total as f64).min(100.0)),
            _ => None,
        }
    }
}

impl fmt::Display for RowEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowEstimate::Unknown => f.write_str("unknown"),
            RowEstimate::Exact(rows) => write!(f, "{rows} rows"),
        }
    }
}

/// What a processor knows about the current call. Built by the executor; fields may be added,
/// so construct it with [`ProcessContext::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessContext {
    /// The job name (`""` outside the runner).
    pub job: Arc<str>,
    /// 0-based index of this batch; in `open` 0, in `finish` the number of batches delivered.
    pub batch_index: u64,
    /// Rows delivered before this batch (in `finish`: all rows).
    pub rows_before: u64,
    /// The row estimate known at this moment.
    pub estimate: RowEstimate,
    /// The time range (window) of this run, when the query has one.
    pub window: Option<TimeRange>,
    /// The lease the window runs under, when workers share their state in a database.
    pub lease: Option<Arc<WindowLease>>,
}

impl ProcessContext {
    /// A context for `job` before the first batch, with no estimate and no window.
    pub fn new(job: impl Into<Arc<str>>) -> Self {
        Self {
            job: job.into(),
            batch_index: 0,
            rows_before: 0,
            estimate: RowEstimate::Unknown,
            window: None,
            lease: None,
        }
    }

    /// The same context with the run's time range.
    pub fn with_window(mut self, window: Option<TimeRange>) -> Self {
        self.window = window;
        self
    }

    /// The same context with the lease the run holds.
    pub fn with_lease(mut self, lease: Option<Arc<WindowLease>>) -> Self {
        self.lease = lease;
        self
    }

    /// The same context at batch `batch_index`, after `rows_before` rows.
    pub fn at_batch(mut self, batch_index: u64, rows_before: u64) -> Self {
        self.batch_index = batch_index;
        self.rows_before = rows_before;
        self
    }

    /// The same context with a row estimate.
    pub fn with_estimate(mut self, estimate: RowEstimate) -> Self {
        self.estimate = estimate;
        self
    }
}
