//! [`RunRequest`]: everything one run of [`QueryExecutor::run`](super::QueryExecutor::run)
//! needs, in one value.

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::progress::{NoProgress, ProgressObserver};
use crate::process::{BatchProcessor, WindowLease};
use crate::time::TimeRange;

/// One run: the SQL, its time range, the processors it feeds, who watches its progress and
/// what cancels it. Built with [`RunRequest::new`] and the setters; only the SQL is required.
///
/// ```
/// use flightline_core::exec::{CancellationToken, RunRequest};
/// use flightline_core::TimeRange;
///
/// let cancel = CancellationToken::new();
/// let request = RunRequest::new("SELECT level, msg FROM log_entries")
///     .range(Some(TimeRange::parse_relative("1h").unwrap()))
///     .cancel(cancel.clone());
/// assert_eq!(request.sql(), "SELECT level, msg FROM log_entries");
/// ```
pub struct RunRequest<'a> {
    pub(crate) sql: String,
    pub(crate) range: Option<TimeRange>,
    pub(crate) window: Option<TimeRange>,
    pub(crate) processors: Vec<Box<dyn BatchProcessor>>,
    pub(crate) progress: &'a dyn ProgressObserver,
    pub(crate) cancel: CancellationToken,
    pub(crate) lease: Option<Arc<WindowLease>>,
}

impl RunRequest<'static> {
    /// A run of `sql`: no time range, no processors, no progress, never cancelled.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            range: None,
            window: None,
            processors: Vec::new(),
            progress: &NoProgress,
            cancel: CancellationToken::new(),
            lease: None,
        }
    }
}

impl<'a> RunRequest<'a> {
    /// The time range sent with the query (the Micromegas range headers).
    pub fn range(mut self, range: Option<TimeRange>) -> Self {
        self.range = range;
        self
    }

    /// The window processors see in [`ProcessContext::window`](crate::process::ProcessContext)
    /// when it is not the range sent with the query: a server that ignores the range headers
    /// gets the window written into its SQL instead, and sinks still name their files after
    /// it. `None` (the default): the run's range.
    pub fn window(mut self, window: Option<TimeRange>) -> Self {
        self.window = window;
        self
    }

    /// The processors fed by the run, replacing any given before.
    pub fn processors(mut self, processors: Vec<Box<dyn BatchProcessor>>) -> Self {
        self.processors = processors;
        self
    }

    /// Adds one processor after those given before.
    pub fn processor(mut self, processor: impl BatchProcessor + 'static) -> Self {
        self.processors.push(Box::new(processor));
        self
    }

    /// Where progress events go (default: nowhere).
    pub fn progress<'b>(self, progress: &'b dyn ProgressObserver) -> RunRequest<'b> {
        RunRequest {
            sql: self.sql,
            range: self.range,
            window: self.window,
            processors: self.processors,
            progress,
            cancel: self.cancel,
            lease: self.lease,
        }
    }

    /// The token that cancels the run (default: a token nobody else holds).
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The lease the run holds, which processors see in
    /// [`ProcessContext::lease`](crate::process::ProcessContext) (default: none).
    pub fn lease(mut self, lease: Option<Arc<WindowLease>>) -> Self {
        self.lease = lease;
        self
    }

    /// The SQL.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

impl fmt::Debug for RunRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.processors.iter().map(|p| p.name()).collect();
        f.debug_struct("RunRequest")
            .field("sql", &self.sql)
            .field("range", &self.range)
            .field("window", &self.window)
            .field("processors", &names)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}
