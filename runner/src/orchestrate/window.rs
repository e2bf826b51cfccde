//! One run of a job: one window of a scheduled job, or the single run of a one-shot job.

use std::sync::Arc;

use flightline_core::error::Chain;
use flightline_core::exec::{
    CancellationToken, ExecOutcome, ProgressEvent, ProgressObserver, QueryExecutor, RunRequest,
};
use flightline_core::process::WindowLease;
use flightline_core::{FlightSqlClient, QueryOptions, TimeRange};

use super::Shared;
use super::retry::{Attempt, attempt};
use crate::RunnerError;
use crate::config::JobConfig;
use crate::metrics::{self as m, RunStatus};
use crate::processors;
use crate::sql_time;
use crate::summary::JobSummary;
use crate::validators::JobValidators;

/// What a run is under besides its window: the token that cancels it, and the lease it holds
/// when the state is shared.
pub(super) struct Scope {
    pub cancel: CancellationToken,
    pub lease: Option<Arc<WindowLease>>,
}

impl Scope {
    /// A run cancelled with every other at the end of the grace period, holding no lease.
    pub fn plain(shared: &Shared) -> Self {
        Self { cancel: shared.cancel.child_token(), lease: None }
    }
}

/// One run with its retries, after its validators; true when it finished (and the caller may
/// commit). A run the validators refuse is a failed run, not retried.
pub(super) async fn run_window(
    shared: &Shared,
    job: &JobConfig,
    validators: &JobValidators,
    window: Option<TimeRange>,
    scope: &Scope,
    summary: &mut JobSummary,
) -> bool {
    if let Err(err) = validators.screen(job, &job_sql(job, window.as_ref()), window).await {
        tracing::error!(job = %job.name, window = ?window.map(|w| w.to_string()), error = %err, "run refused by validation");
        shared.live.job(&job.name).failed(&err.to_string());
        m::record_run(&job.name, &job.server, RunStatus::Failed);
        summary.runs_failed += 1;
        summary.last_error = Some(err.to_string());
        return false;
    }
    match attempt(shared, job, window, scope, summary).await {
        Attempt::Done(outcome) => {
            let stats = &outcome.stats;
            summary.runs_ok += 1;
            summary.rows += stats.rows;
            summary.batches += stats.batches;
            summary.bytes += stats.bytes;
            summary.busy += stats.total;
            summary.windows.extend(window);
            summary.reports = outcome.reports;
            true
        }
        Attempt::Cancelled => {
            summary.runs_cancelled += 1;
            false
        }
        Attempt::Failed(err) => {
            tracing::error!(job = %job.name, window = ?window.map(|w| w.to_string()), request_id = err.request_id(), error = %Chain(&err), "run failed");
            shared.live.job(&job.name).failed(&Chain(&err).to_string());
            summary.runs_failed += 1;
            summary.last_error = Some(Chain(&err).to_string());
            false
        }
    }
}

/// The SQL sent for a run of `job` over `window` (and validated before it).
fn job_sql(job: &JobConfig, window: Option<&TimeRange>) -> String {
    match (window, job.time_range.uses_sql()) {
        (Some(range), true) => sql_time::render(&job.sql, range),
        _ => job.sql.clone(),
    }
}

pub(super) async fn run_once(
    shared: &Shared,
    job: &JobConfig,
    window: Option<TimeRange>,
    scope: &Scope,
    client: FlightSqlClient,
) -> Result<ExecOutcome, RunnerError> {
    let processors = processors::build_all(job)?;
    let sql = job_sql(job, window.as_ref());
    // One id per attempt: each is its own query in the server's audit log.
    let request_id = flightline_core::request_id::new();
    let executor = QueryExecutor::new(client)
        .job(job.name.as_str())
        .target_batch_bytes(job.target_batch_bytes)
        .estimate(job.estimate)
        .query_options(QueryOptions::default().request_id(request_id.clone()))
        .metric_labels(vec![(
            flightline_core::metrics::LABEL_SERVER.to_string(),
            job.server.clone(),
        )]);
    // One-shot jobs are named alone; a scheduled job's bar says which window it is on.
    let shown = if job.schedule.is_some() { window.as_ref() } else { None };
    let progress = shared.display.run(&job.name, shown, &request_id);
    let status = shared.live.job(&job.name);
    status.running(window, Some(&request_id));
    let observe = |event: &ProgressEvent<'_>| {
        progress.on_event(event);
        status.on_event(event);
    };
    let header_range = if job.time_range.uses_headers() { window } else { None };
    let request = RunRequest::new(sql)
        .range(header_range)
        .window(window)
        .processors(processors)
        .progress(&observe)
        .lease(scope.lease.clone())
        .cancel(scope.cancel.child_token());
    let outcome = executor.run(request).await?;
    Ok(outcome)
}
