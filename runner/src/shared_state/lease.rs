//! Window leases with fencing: how workers sharing one state database split a job's windows.
//!
//! A worker leases a window by inserting its row (`state = 'leased'`, itself as `owner`, epoch 1,
//! `lease_expires` one TTL ahead) or, when the row exists with an expired lease, by taking it
//! over: `owner` becomes the new worker and `epoch` goes up by one. Both are one statement, so
//! of two workers reaching for a window at once exactly one gets it. The holder renews the lease
//! while the run lasts. Its commit is accepted only while the row still holds its owner and
//! epoch in state `leased` (fencing): a worker that was paused or cut off past its TTL, whose
//! window a successor took over, finds zero rows to update and must not publish anything.
//! Committing also moves the job's checkpoint over every window committed without a gap.
//!
//! Every lease taken is also a row of `flightline_runs` (job, window, epoch, owner, start, end,
//! outcome): the history of who ran what, under which epoch, that `flightline status` reads.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_core::process::WindowLease;
use flightline_plugins::postgres::fence::{commit_window, committed_under, cut_off};
use tokio_postgres::Client;

/// A window held by one worker.
pub type Lease = WindowLease;

/// What a lease-holder's commit can run into.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease was taken over (or the window committed) by another worker: this worker's
    /// work on the window must not be published.
    #[error(
        "job {job:?}: window {window} was taken over by another worker (this worker held epoch \
         {epoch}); its results are discarded"
    )]
    Fenced {
        /// The job.
        job: String,
        /// The window.
        window: TimeRange,
        /// The epoch this worker held.
        epoch: i64,
    },
    /// The state database cannot be reached (the message says where, and what to check).
    #[error("shared state: {0}")]
    Unreachable(String),
    /// PostgreSQL refused a statement or is unreachable.
    #[error("shared state: {doing}: {source}")]
    Postgres {
        /// What was being done.
        doing: &'static str,
        /// What PostgreSQL said.
        source: tokio_postgres::Error,
    },
}

impl LeaseError {
    /// The database could not be reached or could not serve the statement now (connection
    /// lost, shutting down, out of resources, a serialization conflict): worth retrying. A
    /// statement it refused (a constraint, a permission) is not.
    pub fn is_unavailable(&self) -> bool {
        match self {
            LeaseError::Fenced { .. } => false,
            LeaseError::Unreachable(_) => true,
            LeaseError::Postgres { source, .. } => match source.as_db_error() {
                Some(db) => {
                    let code = db.code().code();
                    ["08", "57P", "53", "40"].iter().any(|class| code.starts_with(class))
                }
                // Not the server's answer: the connection closed, or I/O failed on it.
                None => {
                    source.is_closed()
                        || std::error::Error::source(source)
                            .is_some_and(|cause| cause.is::<std::io::Error>())
                }
            },
        }
    }
}

fn pg(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> LeaseError {
    move |source| LeaseError::Postgres { doing, source }
}

/// Where a job stands in the shared state when a worker registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Every window before this instant is committed.
    pub checkpoint: DateTime<Utc>,
    /// The configuration hash the job's state was written under.
    pub config_hash: String,
}

/// How a run under a lease ended without committing, as `flightline_runs.outcome` records it
/// (a committed run is recorded by the statement that commits its window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Another worker had taken the window over.
    Fenced,
    /// The run failed; the window is released for the next try.
    Failed,
    /// The worker stopped; the window is released.
    Cancelled,
}

impl RunEnd {
    fn as_str(self) -> &'static str {
        match self {
            RunEnd::Fenced => "fenced",
            RunEnd::Failed => "failed",
            RunEnd::Cancelled => "cancelled",
        }
    }
}

/// One worker's view of the shared state.
#[derive(Clone)]
pub struct Leases {
    client: Arc<Client>,
    owner: String,
    ttl: Duration,
    store: String,
}

impl Leases {
    /// Leases taken as `owner` (unique per worker process) for `ttl` at a time.
    pub fn new(client: Arc<Client>, owner: impl Into<String>, ttl: Duration) -> Self {
        Self { client, owner: owner.into(), ttl, store: String::new() }
    }

    /// The same, naming the database in the leases it gives (`user@host:port/database`), so
    /// that a sink writing there commits the window with its rows.
    pub fn in_store(mut self, store: impl Into<String>) -> Self {
        self.store = store.into();
        self
    }

    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// Records `job` with its configuration's hash and, the first time, `first` as its
    /// checkpoint; returns where the job stands, and the hash it was registered under.
    pub async fn register(
        &self,
        job: &str,
        config_hash: &str,
        first: DateTime<Utc>,
    ) -> Result<Registered, LeaseError> {
        self.client
            .execute(
                "INSERT INTO flightline_jobs (job, config_hash, checkpoint) VALUES ($1, $2, $3)
                 ON CONFLICT (job) DO NOTHING",
                &[&job, &config_hash, &first],
            )
            .await
            .map_err(pg("registering the job"))?;
        let row = self
            .client
            .query_one(
                "SELECT checkpoint, config_hash FROM flightline_jobs WHERE job = $1",
                &[&job],
            )
            .await
            .map_err(pg("reading the job"))?;
        Ok(Registered {
            checkpoint: row.get::<_, Option<DateTime<Utc>>>(0).unwrap_or(first),
            config_hash: row.get(1),
        })
    }

    /// Moves `job` from configuration `from` to `config_hash`; with `restart_at`, makes every
    /// window due again and puts the checkpoint there (`--reset-checkpoint`), else keeps the
    /// position (`--continue-checkpoint`). `None` when another worker moved it first.
    pub async fn adopt(
        &self,
        job: &str,
        from: &str,
        config_hash: &str,
        restart_at: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, LeaseError> {
        // One statement, only while the old configuration stands, so that of two workers
        // resetting together one does. Windows are put back with their epoch raised and no
        // owner rather than deleted: a worker still running one under the old configuration
        // is fenced, and the history keeps its epochs.
        let row = self
            .client
            .query_opt(
                "WITH moved AS (
                     UPDATE flightline_jobs
                     SET config_hash = $2, checkpoint = coalesce($3, checkpoint),
                         updated_at = now()
                     WHERE job = $1 AND config_hash = $4
                     RETURNING checkpoint),
                 reset AS (
                     UPDATE flightline_windows
                     SET state = 'leased', owner = NULL, epoch = epoch + 1,
                         lease_expires = now() - interval '1 second', committed_at = NULL
                     WHERE job = $1 AND $3::timestamptz IS NOT NULL
                       AND EXISTS (SELECT 1 FROM moved))
                 SELECT checkpoint FROM moved",
                &[&job, &config_hash, &restart_at, &from],
            )
            .await
            .map_err(pg("adopting the job's configuration"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Leases the first of `due` (in order) that is neither committed nor leased by a live
    /// worker; takes over a window whose lease expired (its epoch then goes up). Only while
    /// the job's state is under `config_hash`: a worker on a configuration another worker has
    /// since replaced leases nothing.
    pub async fn lease_next(
        &self,
        job: &str,
        config_hash: &str,
        due: &[TimeRange],
    ) -> Result<Option<Lease>, LeaseError> {
        let Some(first) = due.first() else { return Ok(None) };
        // One read skips the windows that are done or held, instead of one attempt each.
        let busy: HashSet<DateTime<Utc>> = self
            .client
            .query(
                "SELECT window_begin FROM flightline_windows
                 WHERE job = $1 AND window_begin >= $2
                   AND (state = 'committed' OR lease_expires >= now())",
                &[&job, &first.begin],
            )
            .await
            .map_err(pg("reading the windows' leases"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for window in due.iter().filter(|w| !busy.contains(&w.begin)) {
            if let Some(lease) = self.lease(job, config_hash, window).await? {
                return Ok(Some(lease));
            }
        }
        Ok(None)
    }

    /// Leases `window` when it is free, recording the run; after a takeover, ends the sessions
    /// the predecessor's sink may still hold on the window.
    async fn lease(
        &self,
        job: &str,
        config_hash: &str,
        window: &TimeRange,
    ) -> Result<Option<Lease>, LeaseError> {
        let row = self
            .client
            .query_opt(
                "WITH previous AS (
                     SELECT owner, epoch FROM flightline_windows
                     WHERE job = $1 AND window_begin = $2),
                 leased AS (
                     INSERT INTO flightline_windows AS w
                         (job, window_begin, window_end, state, owner, epoch, lease_expires)
                     SELECT $1, $2, $3, 'leased', $4, 1, now() + make_interval(secs => $5)
                     WHERE EXISTS (SELECT 1 FROM flightline_jobs
                                   WHERE job = $1 AND config_hash = $6)
                     ON CONFLICT (job, window_begin) DO UPDATE
                         SET owner = excluded.owner, epoch = w.epoch + 1,
                             window_end = excluded.window_end,
                             lease_expires = excluded.lease_expires
                         WHERE w.state = 'leased' AND w.lease_expires < now()
                     RETURNING epoch),
                 run AS (
                     INSERT INTO flightline_runs (job, window_begin, epoch, owner)
                     SELECT $1, $2, epoch, $4 FROM leased)
                 SELECT leased.epoch, previous.owner, previous.epoch
                 FROM leased LEFT JOIN previous ON true",
                &[&job, &window.begin, &window.end, &self.owner, &self.ttl_secs(), &config_hash],
            )
            .await
            .map_err(pg("leasing a window"))?;
        let Some(row) = row else { return Ok(None) };
        let lease = Lease {
            job: job.to_string(),
            window: *window,
            owner: self.owner.clone(),
            epoch: row.get(0),
            store: self.store.clone(),
        };
        if let (Some(previous), Some(epoch)) = (row.get::<_, Option<String>>(1), row.get(2)) {
            self.cut_off(&lease, &previous, epoch).await;
        }
        Ok(Some(lease))
    }

    /// Ends `previous` holder's sink sessions on `lease`'s window. Best effort: without the
    /// right to end them (another role, no `pg_signal_backend`) the successor's sink waits for
    /// the predecessor's transaction instead.
    async fn cut_off(&self, lease: &Lease, previous: &str, epoch: i64) {
        match cut_off(self.client.as_ref(), lease, previous, epoch).await {
            Ok(0) => {}
            Ok(ended) => {
                tracing::info!(job = %lease.job, window = %lease.window, previous, ended, "ended the previous holder's sessions on the window")
            }
            Err(err) => {
                tracing::warn!(job = %lease.job, window = %lease.window, previous, error = %err, "cannot end the previous holder's sessions; the window waits for them")
            }
        }
    }

    /// Extends `lease` by one TTL; `Fenced` when it is no longer this worker's.
    pub async fn renew(&self, lease: &Lease) -> Result<(), LeaseError> {
        let updated = self
            .client
            .execute(
                "UPDATE flightline_windows SET lease_expires = now() + make_interval(secs => $5)
                 WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4
                   AND state = 'leased'",
                &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch, &self.ttl_secs()],
            )
            .await
            .map_err(pg("renewing a lease"))?;
        // A sink may have committed the window under this lease already: nothing to renew.
        let held = updated == 1
            || committed_under(self.client.as_ref(), lease)
                .await
                .map_err(pg("reading a window's commit"))?;
        fenced_unless(held, lease)
    }

    /// Marks `lease`'s window committed, under its epoch (or finds a sink did, in its own
    /// transaction), and moves the job's checkpoint over every window committed without a gap;
    /// returns the checkpoint.
    pub async fn commit(&self, lease: &Lease) -> Result<DateTime<Utc>, LeaseError> {
        let held =
            commit_window(self.client.as_ref(), lease).await.map_err(pg("committing a window"))?;
        let held = held
            || committed_under(self.client.as_ref(), lease)
                .await
                .map_err(pg("reading a window's commit"))?;
        if !held {
            self.ended(lease, RunEnd::Fenced).await?;
        }
        fenced_unless(held, lease)?;
        self.advance(&lease.job).await
    }

    /// Gives `lease`'s window back after a run that did not commit (`end` says why), so that
    /// any worker may take it at once, under a new epoch. `Fenced` (and the run recorded so)
    /// when it was no longer this worker's to give.
    pub async fn release(&self, lease: &Lease, end: RunEnd) -> Result<(), LeaseError> {
        let released = self
            .client
            .execute(
                "UPDATE flightline_windows SET lease_expires = now() - interval '1 second'
                 WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4
                   AND state = 'leased'",
                &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch],
            )
            .await
            .map_err(pg("releasing a lease"))?;
        let end = if released == 1 { end } else { RunEnd::Fenced };
        self.ended(lease, end).await?;
        fenced_unless(released == 1, lease)
    }

    /// Records how the run under `lease` ended.
    pub async fn ended(&self, lease: &Lease, end: RunEnd) -> Result<(), LeaseError> {
        self.client
            .execute(
                "UPDATE flightline_runs SET ended_at = clock_timestamp(), outcome = $5
                 WHERE job = $1 AND window_begin = $2 AND epoch = $3 AND owner = $4
                   AND ended_at IS NULL",
                &[&lease.job, &lease.window.begin, &lease.epoch, &lease.owner, &end.as_str()],
            )
            .await
            .map_err(pg("recording the end of a run"))?;
        Ok(())
    }

    /// Moves `job`'s checkpoint to the end of the chain of committed windows that starts there.
    pub async fn advance(&self, job: &str) -> Result<DateTime<Utc>, LeaseError> {
        let row = self
            .client
            .query_one(ADVANCE_CHECKPOINT, &[&job])
            .await
            .map_err(pg("advancing the checkpoint"))?;
        Ok(row.get(0))
    }
}

const ADVANCE_CHECKPOINT: &str = "WITH RECURSIVE chain AS (
         SELECT w.window_end FROM flightline_windows w JOIN flightline_jobs j USING (job)
         WHERE w.job = $1 AND w.window_begin = j.checkpoint AND w.state = 'committed'
         UNION ALL
         SELECT w.window_end FROM flightline_windows w JOIN chain c
             ON w.window_begin = c.window_end
         WHERE w.job = $1 AND w.state = 'committed')
     UPDATE flightline_jobs
     SET checkpoint = greatest(coalesce((SELECT max(window_end) FROM chain), checkpoint),
                               checkpoint),
         updated_at = now()
     WHERE job = $1
     RETURNING checkpoint";

fn fenced_unless(held: bool, lease: &Lease) -> Result<(), LeaseError> {
    if held {
        return Ok(());
    }
    Err(LeaseError::Fenced { job: lease.job.clone(), window: lease.window, epoch: lease.epoch })
}
