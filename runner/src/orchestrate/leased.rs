//! The loop of a scheduled job whose state is shared in PostgreSQL: lease a due window, run it
//! while renewing the lease, commit it under the lease; any number of workers run this loop on
//! the same job and split its windows. A one-shot job is one window ([`one_shot_key`]), run
//! once per configuration by whichever worker leases it.
//!
//! A job whose state was written under another configuration is refused, unless the operator
//! said `--reset-checkpoint` (its windows forgotten) or `--continue-checkpoint` (the position
//! kept), as with a state directory.
//!
//! A worker holds at most `max_concurrent_queries` leases, one per job at a time, so that it
//! never sits on windows it is not running while other workers idle. When the database does
//! not answer, the worker commits nothing, retries with the job's backoff, and says so in its
//! log and in `flightline_state_db_up`; a lease it cannot renew for a whole TTL is given up
//! (its run cancelled), since another worker may take the window over from then on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_core::error::Chain;

use super::retry::backoff;
use super::scheduled::lag_gauge;
use super::window::{Scope, run_window};
use super::{Shared, refuse};
use crate::RunnerError;
use crate::checkpoint::OnMismatch;
use crate::config::{JobConfig, ProcessorKind, Schedule};
use crate::schedule;
use crate::shared_state::metrics::{LeaseMetrics, db_answered};
use crate::shared_state::{Lease, LeaseError, Leases, RunEnd, StateDb};
use crate::summary::JobSummary;
use crate::validators::JobValidators;

pub(super) async fn run_leased(
    shared: &Shared,
    db: &StateDb,
    job: &JobConfig,
    validators: &JobValidators,
    schedule: Schedule,
    summary: &mut JobSummary,
) {
    let stop_at = schedule::stop(job);
    let first = match schedule::first_window_start(job, &schedule, Utc::now()) {
        Ok(at) => at,
        Err(err) => return refuse(job, err, summary),
    };
    let Some(mut checkpoint) = register(shared, db, job, first, summary).await else {
        return;
    };
    let worker = Worker::new(shared, db, job, validators);
    let live = shared.live.job(&job.name);
    loop {
        summary.checkpoint = Some(checkpoint);
        live.checkpoint(checkpoint);
        lag_gauge(job, checkpoint);
        if shared.stop.is_cancelled() || schedule::finished(checkpoint, stop_at) {
            return;
        }
        let once = shared.options.once;
        let cap = if once { u32::MAX } else { schedule.max_windows_per_tick };
        let due = schedule::due_windows(checkpoint, Utc::now(), &schedule, stop_at, cap);
        if due.is_empty() && once {
            return;
        }
        let Some(ran) = worker.run_next(&due, |lease| Some(lease.window), summary).await else {
            return;
        };
        match ran {
            Some(Ran::Committed(at)) => {
                checkpoint = at;
                summary.last_error = None;
            }
            // A window lost to another worker is theirs now, and its failure (a session cut
            // off, a fenced commit) not this job's: go on with the next.
            Some(Ran::Lost) => summary.last_error = None,
            Some(Ran::Failed) if once => return,
            // Nothing free (none due yet, or other workers hold them), or a failed run: wait a
            // tick (under --once, only until a held lease could have expired).
            Some(Ran::Failed) | None => {
                let pause = if once { schedule.every.min(db.ttl() / 3) } else { schedule.every };
                live.waiting(crate::live::after(pause));
                let Some(at) = worker.wait_and_read(pause, summary).await else { return };
                checkpoint = at;
            }
        }
    }
}

/// The window a one-shot job is leased as: one per job, whatever its time range.
pub(super) fn one_shot_key() -> TimeRange {
    let begin = DateTime::UNIX_EPOCH;
    TimeRange { begin, end: begin + chrono::TimeDelta::seconds(1) }
}

/// The single run of a one-shot job, leased so that one worker runs it once per configuration:
/// a worker that finds it leased waits for the holder to commit (or to die, and takes it over).
pub(super) async fn run_leased_once(
    shared: &Shared,
    db: &StateDb,
    job: &JobConfig,
    validators: &JobValidators,
    summary: &mut JobSummary,
) {
    let window = match schedule::one_shot_range(job) {
        Ok(window) => window,
        Err(err) => return refuse(job, err, summary),
    };
    let key = one_shot_key();
    let Some(mut checkpoint) = register(shared, db, job, key.begin, summary).await else {
        return;
    };
    if checkpoint >= key.end {
        tracing::info!(job = %job.name, "already run under this configuration (see flightline_runs); --reset-checkpoint {} runs it again", job.name);
    }
    let worker = Worker::new(shared, db, job, validators);
    while checkpoint < key.end && !shared.stop.is_cancelled() {
        let Some(ran) = worker.run_next(&[key], |_| window, summary).await else { return };
        match ran {
            Some(Ran::Committed(at)) => checkpoint = at,
            Some(Ran::Lost) => summary.last_error = None,
            Some(Ran::Failed) => return,
            None => {
                let Some(at) = worker.wait_and_read(db.ttl() / 3, summary).await else { return };
                checkpoint = at;
            }
        }
    }
}

/// One job as this worker runs it under leases.
struct Worker<'a> {
    shared: &'a Shared,
    db: &'a StateDb,
    job: &'a JobConfig,
    validators: &'a JobValidators,
    metrics: LeaseMetrics,
}

impl<'a> Worker<'a> {
    fn new(
        shared: &'a Shared,
        db: &'a StateDb,
        job: &'a JobConfig,
        validators: &'a JobValidators,
    ) -> Self {
        let metrics = LeaseMetrics::new(db.worker(), &job.name);
        Self { shared, db, job, validators, metrics }
    }

    /// Under one of the worker's lease slots, leases the first free window of `due` and runs
    /// `window(lease)` under it. `Some(None)`: nothing free; `None`: the worker stopped, or the
    /// database refused (recorded in `summary`).
    async fn run_next(
        &self,
        due: &[TimeRange],
        window: impl FnOnce(&Lease) -> Option<TimeRange>,
        summary: &mut JobSummary,
    ) -> Option<Option<Ran>> {
        let (shared, db, job) = (self.shared, self.db, self.job);
        let _slot = tokio::select! {
            slot = Arc::clone(&shared.lease_slots).acquire_owned() => slot.ok()?,
            () = shared.stop.cancelled() => return None,
        };
        let lease_next =
            |l: Leases| async move { l.lease_next(&job.name, &job.config_hash, due).await };
        let Some(lease) = with_db(shared, db, job, "lease a window", summary, lease_next).await?
        else {
            return Some(None);
        };
        let window = window(&lease);
        Some(Some(self.run_under(window, lease, summary).await))
    }

    /// Waits `pause` (or until the stop), then reads where the job stands.
    async fn wait_and_read(
        &self,
        pause: Duration,
        summary: &mut JobSummary,
    ) -> Option<DateTime<Utc>> {
        let (shared, db, job) = (self.shared, self.db, self.job);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shared.stop.cancelled() => return None,
        }
        let advance = |l: Leases| async move { l.advance(&job.name).await };
        with_db(shared, db, job, "read the checkpoint", summary, advance).await
    }
}

/// Registers `job` under its configuration and returns its checkpoint; a state written under
/// another configuration is refused (recorded in `summary`: `None`) unless the operator said to
/// reset or continue. `None` too when the worker stopped first.
async fn register(
    shared: &Shared,
    db: &StateDb,
    job: &JobConfig,
    first: DateTime<Utc>,
    summary: &mut JobSummary,
) -> Option<DateTime<Utc>> {
    let register = |l: Leases| async move { l.register(&job.name, &job.config_hash, first).await };
    let found = with_db(shared, db, job, "register the job", summary, register).await?;
    if found.config_hash == job.config_hash {
        return Some(found.checkpoint);
    }
    let restart_at = match shared.options.on_mismatch(&job.name) {
        OnMismatch::Refuse => {
            let end = found.checkpoint.to_rfc3339();
            let store = db.store().to_string();
            let err = RunnerError::SharedCheckpointMismatch { job: job.name.clone(), store, end };
            refuse(job, err, summary);
            return None;
        }
        OnMismatch::Reset => {
            tracing::warn!(job = %job.name, "configuration changed: its windows forgotten, starting over");
            Some(first)
        }
        OnMismatch::Continue => {
            tracing::warn!(job = %job.name, checkpoint = %found.checkpoint, "configuration changed: continuing from the checkpoint");
            None
        }
    };
    let from = found.config_hash.as_str();
    let adopt =
        |l: Leases| async move { l.adopt(&job.name, from, &job.config_hash, restart_at).await };
    match with_db(shared, db, job, "adopt the new configuration", summary, adopt).await? {
        Some(at) => Some(at),
        // Another worker moved the job first: go on from where it put it, if it is this
        // configuration.
        None => {
            let again = with_db(shared, db, job, "register the job", summary, register).await?;
            (again.config_hash == job.config_hash).then_some(again.checkpoint)
        }
    }
}

/// How a run under a lease ended.
enum Ran {
    /// Committed; the job's checkpoint is now here.
    Committed(DateTime<Utc>),
    /// Another worker took the window over; nothing of this run was published.
    Lost,
    /// Failed or cancelled; the window was given back.
    Failed,
}

impl Worker<'_> {
    /// Runs `window` while renewing `lease`, then commits it under the lease.
    async fn run_under(
        &self,
        window: Option<TimeRange>,
        lease: Lease,
        summary: &mut JobSummary,
    ) -> Ran {
        let (shared, db, job, metrics) = (self.shared, self.db, self.job, &self.metrics);
        let _held = metrics.taken(lease.epoch);
        let taken = if lease.epoch > 1 { "window taken over" } else { "window leased" };
        tracing::info!(job = %job.name, window = %lease.window, epoch = lease.epoch, owner = %lease.owner, "{taken}");
        let lease = Arc::new(lease);
        let scope = Scope {
            cancel: shared.cancel.child_token(),
            lease: commits_last(job).then(|| Arc::clone(&lease)),
        };
        let finished = {
            let run = run_window(shared, job, self.validators, window, &scope, summary);
            tokio::pin!(run);
            tokio::select! {
                biased;
                finished = &mut run => Some(finished),
                () = keep(db, &lease) => {
                    scope.cancel.cancel();
                    run.await;
                    None
                }
            }
        };
        let Some(finished) = finished else { return lost(db, &lease, metrics, true).await };
        if !finished {
            let end = if shared.stop.is_cancelled() { RunEnd::Cancelled } else { RunEnd::Failed };
            let released = match db.leases().await {
                Ok(leases) => leases.release(&lease, end).await,
                Err(err) => Err(err),
            };
            match released {
                Ok(()) => {}
                Err(LeaseError::Fenced { .. }) => return lost(db, &lease, metrics, false).await,
                Err(err) => {
                    tracing::warn!(job = %job.name, window = %lease.window, error = %Chain(&err), "cannot give the window back; it is free again when its lease expires")
                }
            }
            return Ran::Failed;
        }
        let commit = |l: Leases| {
            let lease = &lease;
            async move { l.commit(lease).await }
        };
        match with_db_raw(shared, db, job, "commit the window", commit).await {
            Some(Ok(at)) => {
                tracing::info!(job = %job.name, window = %lease.window, epoch = lease.epoch, checkpoint = %at, "window committed");
                Ran::Committed(at)
            }
            Some(Err(LeaseError::Fenced { .. })) => lost(db, &lease, metrics, false).await,
            Some(Err(err)) => {
                refused(db, job, "commit the window", &err, summary);
                if let Some(error) = &summary.last_error {
                    self.shared.live.job(&job.name).failed(error);
                }
                Ran::Failed
            }
            // Stopped before the database answered: the lease expires and the window runs again.
            None => Ran::Failed,
        }
    }
}

/// Whether the job's last processor is a `postgres_sink`, which may then commit the window in
/// its own transaction: processors commit in order, and one committing after the window could
/// fail with the window already done, its output never written.
fn commits_last(job: &JobConfig) -> bool {
    job.processors
        .last()
        .is_some_and(|p| matches!(&p.kind, ProcessorKind::Builtin(name) if name == "postgres_sink"))
}

/// Renews `lease` every third of its TTL; resolves when it is lost: another worker took it
/// over, or the database did not answer for a whole TTL (from then on one may have).
async fn keep(db: &StateDb, lease: &Lease) {
    let ttl = db.ttl();
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let sent = Instant::now();
        let result = answered(db, |l: Leases| async move { l.renew(lease).await }).await;
        match result {
            Ok(()) => {
                db_answered(db.worker(), true);
                renewed = sent;
            }
            Err(LeaseError::Fenced { .. }) => return,
            Err(err) => {
                db_answered(db.worker(), false);
                tracing::warn!(job = %lease.job, window = %lease.window, error = %Chain(&err), "cannot renew the lease; retrying");
                db.reset().await;
                if renewed.elapsed() >= ttl {
                    return;
                }
            }
        }
    }
}

/// Records a lost lease: the metric, the log line, and (unless `release` did) the run's end.
async fn lost(db: &StateDb, lease: &Lease, metrics: &LeaseMetrics, record: bool) -> Ran {
    metrics.lost();
    tracing::warn!(job = %lease.job, window = %lease.window, epoch = lease.epoch, "lease lost to another worker: this run's results are discarded");
    if record && let Ok(leases) = db.leases().await {
        let _ = leases.ended(lease, RunEnd::Fenced).await;
    }
    Ran::Lost
}

/// `op` on this worker's leases, within a third of the lease TTL (at least a second): a
/// connection that stopped answering (half-open, a server stalled) counts as unreachable, so
/// that a lease is never renewed too late to be trusted.
async fn answered<T, F, Fut>(db: &StateDb, op: F) -> Result<T, LeaseError>
where
    F: Fn(Leases) -> Fut,
    Fut: Future<Output = Result<T, LeaseError>>,
{
    let limit = (db.ttl() / 3).max(Duration::from_secs(1));
    let attempt = async { op(db.leases().await?).await };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => {
            Err(LeaseError::Unreachable(format!("{} did not answer within {limit:?}", db.store())))
        }
    }
}

/// [`with_db_raw`], a refusal recorded as the job's failure: `None` when it failed (or the
/// worker stopped), and the job goes no further.
async fn with_db<T, F, Fut>(
    shared: &Shared,
    db: &StateDb,
    job: &JobConfig,
    doing: &str,
    summary: &mut JobSummary,
    op: F,
) -> Option<T>
where
    F: Fn(Leases) -> Fut,
    Fut: Future<Output = Result<T, LeaseError>>,
{
    match with_db_raw(shared, db, job, doing, op).await? {
        Ok(value) => Some(value),
        Err(err) => {
            refused(db, job, doing, &err, summary);
            None
        }
    }
}

/// Fails `job` on a statement the state database refused.
fn refused(db: &StateDb, job: &JobConfig, doing: &str, err: &LeaseError, summary: &mut JobSummary) {
    let message = format!("cannot {doing}: {}", Chain(err));
    refuse(job, RunnerError::StateDb { store: db.store().to_string(), message }, summary);
}

/// Runs `op` on this worker's leases until the database answers, retrying with the job's
/// backoff while it is unavailable; any other error (`Fenced`, a refused statement) is
/// returned, `None` means the worker stopped first.
async fn with_db_raw<T, F, Fut>(
    shared: &Shared,
    db: &StateDb,
    job: &JobConfig,
    doing: &str,
    op: F,
) -> Option<Result<T, LeaseError>>
where
    F: Fn(Leases) -> Fut,
    Fut: Future<Output = Result<T, LeaseError>>,
{
    let mut failures = 0;
    loop {
        match answered(db, &op).await {
            Err(err) if err.is_unavailable() => {
                db_answered(db.worker(), false);
                shared.live.state_writable(false);
                let pause: Duration = backoff(&job.retries, failures);
                tracing::warn!(job = %job.name, state = %db.store(), error = %Chain(&err), retry_in = ?pause, "the state database does not answer: cannot {doing}; nothing is committed until it does");
                db.reset().await;
                failures += 1;
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.stop.cancelled() => return None,
                }
            }
            other => {
                db_answered(db.worker(), true);
                shared.live.state_writable(true);
                if failures > 0 {
                    tracing::info!(job = %job.name, state = %db.store(), "the state database answers again");
                }
                return Some(other);
            }
        }
    }
}
