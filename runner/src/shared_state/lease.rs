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

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use tokio_postgres::Client;

/// A window held by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job: String,
    /// The window.
    pub window: TimeRange,
    /// Who holds it.
    pub owner: String,
    /// Raised at every takeover; a commit must carry the current one.
    pub epoch: i64,
}

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
    /// PostgreSQL refused a statement or is unreachable.
    #[error("shared state: {doing}: {source}")]
    Postgres {
        /// What was being done.
        doing: &'static str,
        /// What PostgreSQL said.
        source: tokio_postgres::Error,
    },
}

fn pg(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> LeaseError {
    move |source| LeaseError::Postgres { doing, source }
}

/// One worker's view of the shared state.
pub struct Leases<'a> {
    client: &'a Client,
    owner: String,
    ttl: Duration,
}

impl<'a> Leases<'a> {
    /// Leases taken as `owner` (unique per worker process) for `ttl` at a time.
    pub fn new(client: &'a Client, owner: impl Into<String>, ttl: Duration) -> Self {
        Self { client, owner: owner.into(), ttl }
    }

    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// Records `job` with its configuration's hash and, the first time, `first` as its
    /// checkpoint; returns the checkpoint as it stands.
    pub async fn register(
        &self,
        job: &str,
        config_hash: &str,
        first: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, LeaseError> {
        let row = self
            .client
            .query_one(
                "INSERT INTO flightline_jobs (job, config_hash, checkpoint) VALUES ($1, $2, $3)
                 ON CONFLICT (job) DO UPDATE SET config_hash = excluded.config_hash
                 RETURNING checkpoint",
                &[&job, &config_hash, &first],
            )
            .await
            .map_err(pg("registering the job"))?;
        Ok(row.get::<_, Option<DateTime<Utc>>>(0).unwrap_or(first))
    }

    /// Leases the first of `due` (in order) that is neither committed nor leased by a live
    /// worker; takes over a window whose lease expired.
    pub async fn lease_next(
        &self,
        job: &str,
        due: &[TimeRange],
    ) -> Result<Option<Lease>, LeaseError> {
        for window in due {
            let row = self
                .client
                .query_opt(
                    "INSERT INTO flightline_windows AS w
                         (job, window_begin, window_end, state, owner, epoch, lease_expires)
                     VALUES ($1, $2, $3, 'leased', $4, 1, now() + make_interval(secs => $5))
                     ON CONFLICT (job, window_begin) DO UPDATE
                         SET owner = excluded.owner, epoch = w.epoch + 1,
                             lease_expires = excluded.lease_expires
                         WHERE w.state = 'leased' AND w.lease_expires < now()
                     RETURNING epoch",
                    &[&job, &window.begin, &window.end, &self.owner, &self.ttl_secs()],
                )
                .await
                .map_err(pg("leasing a window"))?;
            if let Some(row) = row {
                let epoch = row.get(0);
                let owner = self.owner.clone();
                return Ok(Some(Lease { job: job.to_string(), window: *window, owner, epoch }));
            }
        }
        Ok(None)
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
        fenced_unless(updated == 1, lease)
    }

    /// Marks `lease`'s window committed, under its epoch, and moves the job's checkpoint over
    /// every window committed without a gap; returns the checkpoint.
    pub async fn commit(&self, lease: &Lease) -> Result<DateTime<Utc>, LeaseError> {
        let committed = self
            .client
            .execute(COMMIT_WINDOW, &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch])
            .await
            .map_err(pg("committing a window"))?;
        fenced_unless(committed == 1, lease)?;
        self.advance(&lease.job).await
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

/// The statement that commits a window under a lease; a sink that writes to the state's
/// database runs it in its own transaction, so that its rows and the window commit together.
pub const COMMIT_WINDOW: &str = "UPDATE flightline_windows
     SET state = 'committed', committed_at = now(), lease_expires = NULL
     WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4 AND state = 'leased'";

const ADVANCE_CHECKPOINT: &str = "WITH RECURSIVE chain AS (
         SELECT w.window_end FROM flightline_windows w JOIN flightline_jobs j USING (job)
         WHERE w.job = $1 AND w.window_begin = j.checkpoint AND w.state = 'committed'
         UNION ALL
         SELECT w.window_end FROM flightline_windows w JOIN chain c
             ON w.window_begin = c.window_end
         WHERE w.job = $1 AND w.state = 'committed')
     UPDATE flightline_jobs
     SET checkpoint = coalesce((SELECT max(window_end) FROM chain), checkpoint),
         updated_at = now()
     WHERE job = $1
     RETURNING checkpoint";

fn fenced_unless(held: bool, lease: &Lease) -> Result<(), LeaseError> {
    if held {
        return Ok(());
    }
    Err(LeaseError::Fenced { job: lease.job.clone(), window: lease.window, epoch: lease.epoch })
}
