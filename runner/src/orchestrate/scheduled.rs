//! The loop of a scheduled job: the windows due each tick, run in order, each committed to the
//! job's checkpoint before the next; the checkpoint lag gauge.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::error::Chain;

use super::retry::backoff;
use super::window::{Scope, run_window};
use super::{Shared, refuse};
use crate::RunnerError;
use crate::checkpoint::StateDir;
use crate::config::{JobConfig, Schedule};
use crate::metrics as m;
use crate::schedule;
use crate::summary::JobSummary;
use crate::validators::JobValidators;

pub(super) async fn run_scheduled(
    shared: &Shared,
    job: &JobConfig,
    validators: &JobValidators,
    schedule: Schedule,
    start: Option<DateTime<Utc>>,
    summary: &mut JobSummary,
) {
    let stop_at = schedule::stop(job);
    let first = start.map_or_else(|| schedule::first_window_start(job, &schedule, Utc::now()), Ok);
    let mut checkpoint = match first {
        Ok(at) => at,
        Err(err) => return refuse(job, err, summary),
    };
    summary.checkpoint = Some(checkpoint);
    let live = shared.live.job(&job.name);
    live.checkpoint(checkpoint);
    loop {
        let cap = if shared.options.once { u32::MAX } else { schedule.max_windows_per_tick };
        let due = schedule::due_windows(checkpoint, Utc::now(), &schedule, stop_at, cap);
        let mut failed = false;
        for window in &due {
            if shared.stop.is_cancelled() {
                break;
            }
            let scope = Scope::plain(shared);
            if !run_window(shared, job, validators, Some(*window), &scope, summary).await {
                failed = true;
                break;
            }
            if let Some(state) = &shared.state
                && let Err(err) = commit(shared, state, job, checkpoint, window.end).await
            {
                tracing::error!(job = %job.name, error = %Chain(&err), "checkpoint not written before the stop; the window runs again next time");
                summary.last_error = Some(Chain(&err).to_string());
                return;
            }
            checkpoint = window.end;
            summary.checkpoint = Some(checkpoint);
            live.checkpoint(checkpoint);
            summary.last_error = None;
            lag_gauge(job, checkpoint);
        }
        lag_gauge(job, checkpoint);
        if shared.stop.is_cancelled() || schedule::finished(checkpoint, stop_at) {
            return;
        }
        if shared.options.once && (due.is_empty() || failed) {
            return;
        }
        if shared.options.once {
            continue;
        }
        live.waiting(crate::live::after(schedule.every));
        tokio::select! {
            () = tokio::time::sleep(schedule.every) => {}
            () = shared.stop.cancelled() => return,
        }
    }
}

/// Moves `job`'s checkpoint from `at` to `end`, retrying failed writes with the job's backoff
/// until they land or the grace period is over; the lag gauge keeps growing meanwhile.
async fn commit(
    shared: &Shared,
    state: &StateDir,
    job: &JobConfig,
    at: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), RunnerError> {
    let wait = |failures| backoff(&job.retries, failures);
    let on_failure = |err: &RunnerError, pause: Duration| {
        tracing::warn!(job = %job.name, error = %Chain(err), retry_in = ?pause, "cannot write the checkpoint; retrying");
        shared.live.state_writable(false);
        lag_gauge(job, at);
    };
    let committed = state.commit_retrying(job, end, wait, on_failure, &shared.cancel).await;
    if committed.is_ok() {
        shared.live.state_writable(true);
    }
    committed
}

pub(super) fn lag_gauge(job: &JobConfig, checkpoint: DateTime<Utc>) {
    let lag =
        Utc::now().signed_duration_since(checkpoint).num_milliseconds().max(0) as f64 / 1000.0;
    m::checkpoint_lag(&job.name, &job.server, lag);
}
