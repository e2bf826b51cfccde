//! Where each job stands in the shared state: what `flightline status` prints.

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use tokio_postgres::Client;

use super::lease::LeaseError;

/// One job as the state database has it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    /// The job.
    pub job: String,
    /// Every window before this instant is committed; `None`: the job never registered.
    pub checkpoint: Option<DateTime<Utc>>,
    /// Windows committed, the ones past the checkpoint (after a gap) included.
    pub committed: i64,
    /// Leases held now.
    pub leases: Vec<HeldLease>,
}

/// A lease held now.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldLease {
    /// The window.
    pub window: TimeRange,
    /// Who holds it: `worker/pid/suffix`.
    pub owner: String,
    /// Its epoch.
    pub epoch: i64,
    /// Seconds until it expires (negative: expired, free to take over).
    pub expires_in_secs: f64,
}

/// The state of `jobs`, in their order.
pub async fn read(client: &Client, jobs: &[String]) -> Result<Vec<JobState>, LeaseError> {
    let pg = |doing| move |source| LeaseError::Postgres { doing, source };
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let row = client
            .query_opt(
                "SELECT j.checkpoint,
                        (SELECT count(*) FROM flightline_windows w
                         WHERE w.job = j.job AND w.state = 'committed')
                 FROM flightline_jobs j WHERE j.job = $1",
                &[job],
            )
            .await
            .map_err(pg("reading the jobs"))?;
        let (checkpoint, committed) = row.map_or((None, 0), |r| (r.get(0), r.get(1)));
        let leases = client
            .query(
                "SELECT window_begin, window_end, owner, epoch,
                        extract(epoch FROM lease_expires - now())::float8
                 FROM flightline_windows WHERE job = $1 AND state = 'leased'
                 ORDER BY window_begin",
                &[job],
            )
            .await
            .map_err(pg("reading the leases"))?
            .iter()
            .filter_map(|r| {
                Some(HeldLease {
                    window: TimeRange::new(r.get(0), r.get(1)).ok()?,
                    owner: r.get(2),
                    epoch: r.get(3),
                    expires_in_secs: r.get(4),
                })
            })
            .collect();
        out.push(JobState { job: job.clone(), checkpoint, committed, leases });
    }
    Ok(out)
}
