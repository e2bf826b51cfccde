//! Retries of a run: one try at a time under a query slot, retryable failures retried after an
//! exponential backoff with jitter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flightline_core::TimeRange;
use flightline_core::error::Chain;
use flightline_core::exec::ExecOutcome;
use rand::Rng;

use super::Shared;
use super::window::{Scope, run_once};
use crate::RunnerError;
use crate::config::{JobConfig, RetryPolicy};
use crate::metrics::{self as m, RunStatus};
use crate::summary::JobSummary;

/// How one window (or one-shot run) ended after its retries.
pub(super) enum Attempt {
    Done(Box<ExecOutcome>),
    Cancelled,
    Failed(RunnerError),
}

pub(super) async fn attempt(
    shared: &Shared,
    job: &JobConfig,
    window: Option<TimeRange>,
    scope: &Scope,
    summary: &mut JobSummary,
) -> Attempt {
    let mut tries = 0;
    let live = shared.live.job(&job.name);
    loop {
        let started = Instant::now();
        let Some(outcome) = try_once(shared, job, window, scope).await else {
            return Attempt::Cancelled;
        };
        let status = match &outcome {
            Ok(o) if o.stats.cancelled => RunStatus::Cancelled,
            Ok(_) => RunStatus::Ok,
            Err(err)
                if retryable(err) && tries < job.retries.max && !shared.stop.is_cancelled() =>
            {
                RunStatus::Retried
            }
            Err(_) => RunStatus::Failed,
        };
        m::record_run(&job.name, &job.server, status);
        match (status, outcome) {
            (RunStatus::Ok, Ok(o)) => {
                live.finished(window, &o.stats);
                return Attempt::Done(Box::new(o));
            }
            (RunStatus::Cancelled, _) => {
                live.cancelled();
                return Attempt::Cancelled;
            }
            (RunStatus::Retried, Err(err)) => {
                summary.retries += 1;
                let wait = backoff(&job.retries, tries);
                tracing::warn!(job = %job.name, attempt = tries + 1, request_id = err.request_id(), error = %Chain(&err), retry_in = ?wait, after = ?started.elapsed(), "run failed; retrying");
                live.retrying(&Chain(&err).to_string(), wait);
                tries += 1;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shared.stop.cancelled() => return Attempt::Cancelled,
                    () = scope.cancel.cancelled() => return Attempt::Cancelled,
                }
            }
            (_, Err(err)) => return Attempt::Failed(err),
            (_, Ok(_)) => return Attempt::Cancelled,
        }
    }
}

/// One try: connect (outside any slot: a server that does not answer must not hold one),
/// then run under a slot, released as soon as the run ends so that a retry's backoff holds
/// none. `None` when a shutdown came before the run started.
async fn try_once(
    shared: &Shared,
    job: &JobConfig,
    window: Option<TimeRange>,
    scope: &Scope,
) -> Option<Result<ExecOutcome, RunnerError>> {
    let client = tokio::select! {
        client = shared.clients.get(&job.server) => client,
        () = shared.stop.cancelled() => return None,
        () = scope.cancel.cancelled() => return None,
    };
    let client = match client {
        Ok(client) => client,
        Err(err) => return Some(Err(err)),
    };
    let permit = tokio::select! {
        permit = Arc::clone(&shared.permits).acquire_owned() => permit,
        () = shared.stop.cancelled() => return None,
        () = scope.cancel.cancelled() => return None,
    };
    let _permit = permit.ok()?;
    let _in_flight = m::in_flight(&job.name, &job.server);
    Some(run_once(shared, job, window, scope, client).await)
}

fn retryable(err: &RunnerError) -> bool {
    matches!(err, RunnerError::Core(e) if e.is_retryable())
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so retries of
/// many jobs after one outage spread out instead of arriving together.
pub fn backoff(policy: &RetryPolicy, tries: u32) -> Duration {
    let step =
        policy.initial_backoff.saturating_mul(1u32.checked_shl(tries.min(20)).unwrap_or(u32::MAX));
    let step = step.min(policy.max_backoff);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}
