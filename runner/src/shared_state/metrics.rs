//! The metrics of workers sharing a state database, each with a `worker` label: leases held,
//! taken, taken over and lost, and whether the database answers.

use flightline_core::metrics::LABEL_JOB;
use metrics::{Unit, describe_counter, describe_gauge};

/// Leases this worker holds now (gauge; `worker`, `job`).
pub const LEASES_HELD: &str = "flightline_leases_held";
/// Windows leased (counter; `worker`, `job`), takeovers included.
pub const LEASES_TAKEN_TOTAL: &str = "flightline_leases_taken_total";
/// Windows taken over from a worker whose lease expired (counter; `worker`, `job`).
pub const LEASES_TAKEN_OVER_TOTAL: &str = "flightline_leases_taken_over_total";
/// Leases lost: another worker took the window over before this one committed (counter;
/// `worker`, `job`).
pub const LEASES_LOST_TOTAL: &str = "flightline_leases_lost_total";
/// 1 while the state database answers, 0 while it does not (gauge; `worker`).
pub const STATE_DB_UP: &str = "flightline_state_db_up";
/// Statements on the state database that failed (counter; `worker`).
pub const STATE_DB_ERRORS_TOTAL: &str = "flightline_state_db_errors_total";
/// The worker's name.
pub const LABEL_WORKER: &str = "worker";

/// Help text and units, once the recorder is installed.
pub fn describe() {
    describe_gauge!(LEASES_HELD, Unit::Count, "Window leases this worker holds.");
    describe_counter!(LEASES_TAKEN_TOTAL, Unit::Count, "Windows this worker leased.");
    describe_counter!(
        LEASES_TAKEN_OVER_TOTAL,
        Unit::Count,
        "Windows this worker took over from a worker whose lease expired."
    );
    describe_counter!(
        LEASES_LOST_TOTAL,
        Unit::Count,
        "Leases this worker lost to another before it committed (its results discarded)."
    );
    describe_gauge!(STATE_DB_UP, Unit::Count, "1 while the state database answers, else 0.");
    describe_counter!(
        STATE_DB_ERRORS_TOTAL,
        Unit::Count,
        "Statements on the state database that failed (each retried)."
    );
}

/// One worker's lease metrics for one job.
pub struct LeaseMetrics {
    worker: String,
    job: String,
}

impl LeaseMetrics {
    /// The metrics of `worker` for `job`.
    pub fn new(worker: &str, job: &str) -> Self {
        Self { worker: worker.to_string(), job: job.to_string() }
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [(LABEL_WORKER, self.worker.clone()), (LABEL_JOB, self.job.clone())]
    }

    /// A lease taken under `epoch` (above 1: a takeover); held until the guard drops.
    pub fn taken(&self, epoch: i64) -> Held {
        metrics::counter!(LEASES_TAKEN_TOTAL, &self.labels()).increment(1);
        if epoch > 1 {
            metrics::counter!(LEASES_TAKEN_OVER_TOTAL, &self.labels()).increment(1);
        }
        let gauge = metrics::gauge!(LEASES_HELD, &self.labels());
        gauge.increment(1.0);
        Held(gauge)
    }

    /// A lease lost to another worker.
    pub fn lost(&self) {
        metrics::counter!(LEASES_LOST_TOTAL, &self.labels()).increment(1);
    }
}

/// See [`LeaseMetrics::taken`].
pub struct Held(metrics::Gauge);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Whether the state database answered `worker`'s last statement.
pub fn db_answered(worker: &str, answered: bool) {
    metrics::gauge!(STATE_DB_UP, LABEL_WORKER => worker.to_string()).set(if answered {
        1.0
    } else {
        0.0
    });
    if !answered {
        metrics::counter!(STATE_DB_ERRORS_TOTAL, LABEL_WORKER => worker.to_string()).increment(1);
    }
}
