//! The lease a run holds when workers share their state in a database.

use crate::time::TimeRange;

/// The lease under which a window runs when several workers share one state database: which
/// worker holds the window, under which epoch, and where that state lives.
///
/// A processor that writes into the same database (`store`) can commit the window in its own
/// transaction, together with its rows, and only while the lease is still this worker's: its
/// output and the checkpoint then move together, exactly once. Every other processor can
/// ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLease {
    /// The job.
    pub job: String,
    /// The window.
    pub window: TimeRange,
    /// The worker holding it (unique per worker process).
    pub owner: String,
    /// Raised each time another worker takes the window over; a commit must carry the current
    /// one.
    pub epoch: i64,
    /// The state database, as `user@host:port/database` (no password).
    pub store: String,
}
