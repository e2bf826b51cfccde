//! What a run did, job by job: counted while the jobs run ([`crate::orchestrate`]), shown at
//! the end ([`crate::progress::summary_table`]) and read by `flightline demo` and the tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_core::process::Report;

/// What one job did during this process's life.
#[derive(Debug, Clone, Default)]
pub struct JobSummary {
    /// The job.
    pub name: String,
    /// Its server.
    pub server: String,
    /// Runs (windows) that finished.
    pub runs_ok: u64,
    /// Runs that failed for good (after their retries).
    pub runs_failed: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Runs cancelled by a shutdown.
    pub runs_cancelled: u64,
    /// Rows received over all finished runs.
    pub rows: u64,
    /// Batches delivered over all finished runs.
    pub batches: u64,
    /// Bytes received over all finished runs.
    pub bytes: u64,
    /// Time spent in finished runs.
    pub busy: Duration,
    /// The windows that finished, in order.
    pub windows: Vec<TimeRange>,
    /// The last error, if the job failed.
    pub last_error: Option<String>,
    /// The reports of the last finished run, by processor.
    pub reports: Vec<(String, Report)>,
    /// Where the checkpoint stands at the end.
    pub checkpoint: Option<DateTime<Utc>>,
}

impl JobSummary {
    /// True when the job's last attempt failed for good.
    pub fn failed(&self) -> bool {
        self.last_error.is_some()
    }
}

/// What the whole run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// One entry per job, in file order.
    pub jobs: Vec<JobSummary>,
    /// True when a signal stopped the run.
    pub interrupted: bool,
    /// True when work was cut: runs still in flight after the grace were cancelled (their
    /// windows run again next time) or abandoned.
    pub cut: bool,
}

impl RunSummary {
    /// Names of the jobs that failed.
    pub fn failed_jobs(&self) -> Vec<String> {
        self.jobs.iter().filter(|j| j.failed()).map(|j| j.name.clone()).collect()
    }
}
