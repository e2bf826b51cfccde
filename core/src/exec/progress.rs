//! Progress events and the observer trait that renders them.

use std::sync::Arc;
use std::time::Duration;

use super::stats::ExecStats;
use crate::process::RowEstimate;

/// Something that happened during a run, in order: `Started`, then `Estimate` (at most once,
/// whenever the count arrives) and `Batch` events interleaved, then `Finished`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// The run started.
    Started {
        /// The job name.
        job: Arc<str>,
    },
    /// The row estimate arrived.
    Estimate(RowEstimate),
    /// A batch was handed to every processor.
    Batch {
        /// Batches delivered so far.
        batches: u64,
        /// Rows received so far.
        rows: u64,
        /// Bytes received so far.
        bytes: u64,
        /// Time since the start.
        elapsed: Duration,
        /// The estimate known now.
        estimate: RowEstimate,
    },
    /// The run ended (also when cancelled or failed), with its statistics.
    Finished(&'a ExecStats),
}

impl ProgressEvent<'_> {
    /// Percentage done, when a `Batch` event has a known estimate.
    pub fn percent(&self) -> Option<f64> {
        match self {
            ProgressEvent::Batch { rows, estimate, .. } => estimate.percent(*rows),
            _ => None,
        }
    }

    /// Rows per second so far, for a `Batch` event.
    pub fn rows_per_second(&self) -> Option<f64> {
        match self {
            ProgressEvent::Batch { rows, elapsed, .. } if !elapsed.is_zero() => {
                Some(*rows as f64 / elapsed.as_secs_f64())
            }
            _ => None,
        }
    }
}

/// Receives progress events; the runner renders them as a progress bar, tests record them.
/// Called on the executor's task: keep it quick.
pub trait ProgressObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &ProgressEvent<'_>);
}

/// An observer that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressObserver for NoProgress {
    fn on_event(&self, _event: &ProgressEvent<'_>) {}
}

impl<F: Fn(&ProgressEvent<'_>) + Send + Sync> ProgressObserver for F {
    fn on_event(&self, event: &ProgressEvent<'_>) {
        self(event)
    }
}
