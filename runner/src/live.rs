//! What every job is doing now: the model behind the status page and `/status.json`
//! ([`crate::http`]).
//!
//! The orchestrator reports each change (a run started, a batch arrived, a run failed and will
//! be retried, the checkpoint moved) to the job's [`JobStatus`]; the listener takes a
//! [`Snapshot`] of all of them. Each job's view sits behind its own mutex, held only to copy a
//! few fields, so a page load never waits on a run and a run never waits on a page load.
//!
//! The JSON form is versioned ([`SNAPSHOT_VERSION`]): fields are only ever added, and a field's
//! meaning never changes within a version. The README documents every field.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_core::exec::{ExecStats, ProgressEvent, ProgressObserver};
use serde::Serialize;

/// The version of the `/status.json` document.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Not running: its next window is not due yet, or it waits for a query slot or a lease.
    #[default]
    Waiting,
    /// A run is in progress.
    Running,
    /// The last attempt failed with a retryable error; the next starts at `next_run`.
    Retrying,
    /// The last run failed for good (a scheduled job keeps trying its next windows).
    Failed,
    /// Nothing left to do: a one-shot job that finished, a scheduled job past its end.
    Done,
}

/// A time window, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowView {
    /// Start (inclusive).
    pub begin: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

impl From<TimeRange> for WindowView {
    fn from(range: TimeRange) -> Self {
        Self { begin: range.begin, end: range.end }
    }
}

/// The run in progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ProgressView {
    /// Rows received so far.
    pub rows: u64,
    /// Arrow bytes received so far.
    pub bytes: u64,
    /// Batches delivered so far.
    pub batches: u64,
    /// Rows per second so far.
    pub rows_per_second: f64,
    /// Percentage done, when the job asked for an estimate and the server gave one.
    pub percent: Option<f64>,
    /// Seconds left at the current rate, with the percentage.
    pub eta_seconds: Option<f64>,
    /// Seconds since the run started.
    pub seconds: f64,
}

/// The last run that finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    /// Its window, for a scheduled job.
    pub window: Option<WindowView>,
    /// Rows received.
    pub rows: u64,
    /// Arrow bytes received.
    pub bytes: u64,
    /// Batches delivered.
    pub batches: u64,
    /// Rows per second over the run.
    pub rows_per_second: f64,
    /// How long it took.
    pub seconds: f64,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// One job as `/status.json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    /// The job's name.
    pub name: String,
    /// The server it queries.
    pub server: String,
    /// True for a scheduled job.
    pub scheduled: bool,
    /// What it is doing.
    pub state: JobState,
    /// The window being run (or last run), for a scheduled job.
    pub window: Option<WindowView>,
    /// The run in progress.
    pub progress: Option<ProgressView>,
    /// Rows of the run in progress, else of the last finished run.
    pub rows: u64,
    /// Where the checkpoint stands (scheduled jobs).
    pub checkpoint: Option<DateTime<Utc>>,
    /// Seconds from the checkpoint to now.
    pub lag_seconds: Option<f64>,
    /// The last run that finished.
    pub last_run: Option<LastRun>,
    /// When the next run (or retry) starts, when known.
    pub next_run: Option<DateTime<Utc>>,
    /// Runs that finished.
    pub runs_ok: u64,
    /// Runs that failed for good.
    pub runs_failed: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// The last error, in full, with its causes.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// The `x-request-id` of the last query sent (the server logs it, errors carry it).
    pub request_id: Option<String>,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// When this process started running jobs.
    pub started_at: DateTime<Utc>,
    /// When the snapshot was taken.
    pub now: DateTime<Utc>,
    /// The same answer as `/readyz`.
    pub ready: bool,
    /// Each server a job uses, and whether it was reached.
    pub servers: BTreeMap<String, bool>,
    /// Whether the checkpoint state is writable (`null` when no job keeps one).
    pub state_writable: Option<bool>,
    /// Every job, in file order.
    pub jobs: Vec<JobView>,
}

/// Every job's status, shared by the orchestrator (writing) and the listener (reading).
#[derive(Debug)]
pub struct LiveStatus {
    started_at: DateTime<Utc>,
    jobs: Vec<Arc<JobStatus>>,
    servers: BTreeMap<String, AtomicBool>,
    /// `None` until a state is opened; stays `None` when no job keeps one.
    state: Mutex<Option<bool>>,
}

impl LiveStatus {
    /// Every job of `jobs` waiting, no server reached yet.
    pub fn new<'a>(jobs: impl IntoIterator<Item = (&'a str, &'a str, bool)>) -> Arc<Self> {
        let jobs: Vec<_> = jobs
            .into_iter()
            .map(|(name, server, scheduled)| Arc::new(JobStatus::new(name, server, scheduled)))
            .collect();
        let servers = jobs.iter().map(|j| (j.server.clone(), AtomicBool::new(false))).collect();
        Arc::new(Self { started_at: Utc::now(), jobs, servers, state: Mutex::new(None) })
    }

    /// Every job of `config`.
    pub fn of(config: &crate::config::Config) -> Arc<Self> {
        Self::new(
            config.jobs.iter().map(|j| (j.name.as_str(), j.server.as_str(), j.schedule.is_some())),
        )
    }

    /// The status of `name`; a job not known here gets a detached entry no one reads.
    pub fn job(&self, name: &str) -> Arc<JobStatus> {
        self.jobs
            .iter()
            .find(|j| j.name == name)
            .cloned()
            .unwrap_or_else(|| Arc::new(JobStatus::new(name, "", false)))
    }

    /// `server` answered a connect.
    pub fn server_reached(&self, server: &str) {
        if let Some(reached) = self.servers.get(server) {
            reached.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the checkpoint state (a directory or the database) took the last write.
    pub fn state_writable(&self, writable: bool) {
        *lock(&self.state) = Some(writable);
    }

    /// What `/status.json` shows now; `ready` is read from the same loads as the fields that
    /// explain it.
    pub fn snapshot(&self) -> Snapshot {
        let now = Utc::now();
        let servers: BTreeMap<String, bool> = self
            .servers
            .iter()
            .map(|(name, r)| (name.clone(), r.load(Ordering::Relaxed)))
            .collect();
        let state_writable = *lock(&self.state);
        Snapshot {
            version: SNAPSHOT_VERSION,
            started_at: self.started_at,
            now,
            ready: servers.values().all(|r| *r) && state_writable != Some(false),
            servers,
            state_writable,
            jobs: self.jobs.iter().map(|j| j.view(now)).collect(),
        }
    }
}

/// One job's status; the orchestrator calls these as the job moves on.
#[derive(Debug)]
pub struct JobStatus {
    name: String,
    server: String,
    view: Mutex<JobView>,
}

impl JobStatus {
    fn new(name: &str, server: &str, scheduled: bool) -> Self {
        let view = JobView {
            name: name.to_string(),
            server: server.to_string(),
            scheduled,
            state: JobState::Waiting,
            window: None,
            progress: None,
            rows: 0,
            checkpoint: None,
            lag_seconds: None,
            last_run: None,
            next_run: None,
            runs_ok: 0,
            runs_failed: 0,
            retries: 0,
            last_error: None,
            last_error_at: None,
            request_id: None,
        };
        Self { name: name.to_string(), server: server.to_string(), view: Mutex::new(view) }
    }

    fn view(&self, now: DateTime<Utc>) -> JobView {
        let mut view = lock(&self.view).clone();
        view.lag_seconds = view
            .checkpoint
            .map(|c| now.signed_duration_since(c).num_milliseconds().max(0) as f64 / 1000.0);
        view
    }

    fn update(&self, change: impl FnOnce(&mut JobView)) {
        change(&mut lock(&self.view));
    }

    /// A run of `window` started, with `request_id` on its query.
    pub fn running(&self, window: Option<TimeRange>, request_id: Option<&str>) {
        self.update(|v| {
            v.state = JobState::Running;
            v.window = window.map(WindowView::from).or(v.window);
            v.progress = Some(ProgressView::default());
            v.rows = 0;
            v.next_run = None;
            v.request_id = request_id.map(str::to_string);
        });
    }

    /// The run finished.
    pub fn finished(&self, window: Option<TimeRange>, stats: &ExecStats) {
        self.update(|v| {
            v.state = JobState::Waiting;
            v.progress = None;
            v.rows = stats.rows;
            v.runs_ok += 1;
            v.last_run = Some(LastRun {
                window: window.map(WindowView::from),
                rows: stats.rows,
                bytes: stats.bytes,
                batches: stats.batches,
                rows_per_second: stats.rows_per_second(),
                seconds: stats.total.as_secs_f64(),
                finished_at: Utc::now(),
            });
        });
    }

    /// An attempt failed with `error`; the next starts after `wait`.
    pub fn retrying(&self, error: &str, wait: Duration) {
        self.update(|v| {
            v.state = JobState::Retrying;
            v.progress = None;
            v.retries += 1;
            v.next_run = after(wait);
            set_error(v, error);
        });
    }

    /// The run failed for good with `error`.
    pub fn failed(&self, error: &str) {
        self.update(|v| {
            v.state = JobState::Failed;
            v.progress = None;
            v.runs_failed += 1;
            set_error(v, error);
        });
    }

    /// The run was cancelled by a shutdown: it runs again next time.
    pub fn cancelled(&self) {
        self.update(|v| {
            v.state = JobState::Waiting;
            v.progress = None;
            v.next_run = None;
        });
    }

    /// Nothing runs until `next` (unknown: `None`).
    pub fn waiting(&self, next: Option<DateTime<Utc>>) {
        self.update(|v| {
            if v.state != JobState::Failed {
                v.state = JobState::Waiting;
            }
            v.next_run = next;
        });
    }

    /// The checkpoint moved to `at`.
    pub fn checkpoint(&self, at: DateTime<Utc>) {
        self.update(|v| v.checkpoint = Some(at));
    }

    /// The job has nothing more to do: `done`, or `failed` with `error` when its last attempt
    /// failed (a job refused before any run lands here).
    pub fn ended(&self, error: Option<&str>) {
        self.update(|v| {
            match error {
                Some(error) => {
                    if v.last_error.as_deref() != Some(error) {
                        set_error(v, error);
                    }
                    v.state = JobState::Failed;
                }
                None => v.state = JobState::Done,
            }
            v.progress = None;
            v.next_run = None;
        });
    }
}

impl ProgressObserver for JobStatus {
    fn on_event(&self, event: &ProgressEvent<'_>) {
        if let ProgressEvent::Batch { batches, rows, bytes, elapsed, .. } = event {
            let percent = event.percent();
            let rate = event.rows_per_second().unwrap_or(0.0);
            let eta = eta_seconds(percent, *elapsed);
            self.update(|v| {
                v.rows = *rows;
                v.progress = Some(ProgressView {
                    rows: *rows,
                    bytes: *bytes,
                    batches: *batches,
                    rows_per_second: rate,
                    percent,
                    eta_seconds: eta,
                    seconds: elapsed.as_secs_f64(),
                });
            });
        }
    }
}

/// The instant `wait` from now; `None` past the calendar (a backoff of ten million days).
pub fn after(wait: Duration) -> Option<DateTime<Utc>> {
    Utc::now().checked_add_signed(chrono::Duration::from_std(wait).ok()?)
}

/// Seconds left when `percent` of the work took `elapsed`, at the same pace.
pub fn eta_seconds(percent: Option<f64>, elapsed: Duration) -> Option<f64> {
    let done = percent? / 100.0;
    (done > 0.0).then(|| (elapsed.as_secs_f64() * (1.0 - done) / done).max(0.0))
}

fn set_error(view: &mut JobView, error: &str) {
    view.last_error = Some(error.to_string());
    view.last_error_at = Some(Utc::now());
}

/// A poisoned lock only means a panic elsewhere while copying plain fields: the data is
/// still whole, so the page keeps working.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Arc<LiveStatus> {
        LiveStatus::new([("a", "s1", false), ("b", "s2", true)])
    }

    #[test]
    fn ready_needs_every_server_reached_and_a_writable_state() {
        let live = live();
        assert!(!live.snapshot().ready);
        live.server_reached("s1");
        assert!(!live.snapshot().ready, "s2 not reached yet");
        live.server_reached("s2");
        assert!(live.snapshot().ready);
        live.state_writable(false);
        assert!(!live.snapshot().ready);
        live.state_writable(true);
        assert!(live.snapshot().ready);
    }

    #[test]
    fn a_job_moves_through_its_states() {
        let live = live();
        let a = live.job("a");
        a.running(None, Some("id-1"));
        assert_eq!(live.snapshot().jobs[0].state, JobState::Running);
        a.retrying("boom", Duration::from_secs(5));
        let view = &live.snapshot().jobs[0];
        assert_eq!((view.state, view.retries), (JobState::Retrying, 1));
        assert_eq!(view.last_error.as_deref(), Some("boom"));
        assert!(view.next_run.is_some());
        a.failed("for good");
        a.ended(Some("for good"));
        let view = &live.snapshot().jobs[0];
        assert_eq!((view.state, view.runs_failed), (JobState::Failed, 1));
        assert_eq!(view.request_id.as_deref(), Some("id-1"));
        let b = live.job("b");
        b.running(None, None);
        let mut stats = ExecStats::default();
        stats.rows = 7;
        b.finished(None, &stats);
        b.ended(None);
        let view = &live.snapshot().jobs[1];
        assert_eq!((view.state, view.rows, view.runs_ok), (JobState::Done, 7, 1));
    }

    #[test]
    fn the_lag_is_measured_when_the_snapshot_is_taken() {
        let live = live();
        live.job("b").checkpoint(Utc::now() - chrono::Duration::seconds(90));
        let lag = live.snapshot().jobs[1].lag_seconds.unwrap();
        assert!((89.0..100.0).contains(&lag), "{lag}");
    }

    #[test]
    fn a_wait_past_the_calendar_has_no_instant() {
        assert!(after(Duration::from_secs(5)).is_some());
        assert_eq!(after(Duration::from_secs(u64::MAX / 2)), None);
    }

    #[test]
    fn the_eta_follows_the_pace_so_far() {
        assert_eq!(eta_seconds(Some(25.0), Duration::from_secs(10)), Some(30.0));
        assert_eq!(eta_seconds(Some(0.0), Duration::from_secs(10)), None);
        assert_eq!(eta_seconds(None, Duration::from_secs(10)), None);
    }

    #[test]
    fn the_document_keeps_its_field_names() {
        let json = serde_json::to_value(live().snapshot()).unwrap();
        assert_eq!(json["version"], 1);
        let job = &json["jobs"][0];
        for field in [
            "name",
            "server",
            "state",
            "window",
            "progress",
            "rows",
            "checkpoint",
            "lag_seconds",
            "last_run",
            "next_run",
            "last_error",
            "request_id",
        ] {
            assert!(job.get(field).is_some(), "{field} missing from {job}");
        }
        assert_eq!(job["state"], "waiting");
    }
}
