//! Running the jobs of a [`Config`]: concurrently under one limit, with schedules,
//! checkpoints, retries and a graceful stop.
//!
//! Each job is a tokio task. A run (one window of a scheduled job, or the single run of a
//! one-shot job) waits for a permit of the global semaphore, builds fresh processors and
//! streams the query through them with the [`QueryExecutor`](flightline_core::exec::QueryExecutor). A slow or failing job only
//! holds its own permit, so the others keep going.
//!
//! Stopping: when `shutdown` resolves, no new run starts; runs in flight get
//! `[runner].shutdown_grace` to finish, then they are cancelled, their processors aborted and
//! their checkpoints left where they were. A cancelled window is processed again next time.
//! A run that still has not ended a few seconds later (a processor blocked in a call that
//! ignores cancellation) is abandoned: `run` returns without it, and the summary says the
//! work was cut.

mod join;
mod leased;
mod pool;
mod retry;
mod scheduled;
mod window;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use flightline_core::error::Chain;
use flightline_core::exec::CancellationToken;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::RunnerError;
use crate::checkpoint::{OnMismatch, StateDir};
use crate::config::{Config, JobConfig};
use crate::error::ConfigIssue;
use crate::live::LiveStatus;
use crate::metrics::{self as m, RunStatus};
use crate::processors;
use crate::progress::ProgressDisplay;
use crate::schedule;
use crate::shared_state::StateDb;
use crate::summary::{JobSummary, RunSummary};
use crate::validators::JobValidators;

use join::{abandon, join_jobs};
use leased::{run_leased, run_leased_once};
use pool::Clients;
pub use retry::backoff;
use scheduled::run_scheduled;
use window::{Scope, run_window};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Process what is due now and exit, instead of running scheduled jobs forever.
    pub once: bool,
    /// Jobs whose checkpoint from another configuration is forgotten (`all` for every job).
    pub reset_checkpoint: Vec<String>,
    /// Jobs whose checkpoint from another configuration is kept (`all` for every job).
    pub continue_checkpoint: Vec<String>,
    /// Where the jobs' status is kept for the status page; a private one when `None`.
    pub live: Option<Arc<LiveStatus>>,
}

impl RunOptions {
    fn on_mismatch(&self, job: &str) -> OnMismatch {
        let named = |list: &[String]| list.iter().any(|n| n == job || n == "all");
        if named(&self.reset_checkpoint) {
            OnMismatch::Reset
        } else if named(&self.continue_checkpoint) {
            OnMismatch::Continue
        } else {
            OnMismatch::Refuse
        }
    }
}

/// Checks what can be checked before anything runs: every processor builds from its options.
pub fn check_processors(config: &Config) -> Result<(), RunnerError> {
    let mut issues = Vec::new();
    for (index, job) in config.jobs.iter().enumerate() {
        for (p, spec) in job.processors.iter().enumerate() {
            if let Err(err) = processors::build(job, spec) {
                issues.push(ConfigIssue {
                    file: config.path.clone(),
                    line: spec.line,
                    key: format!("job[{index}].processors[{p}]"),
                    value: None,
                    message: err.to_string(),
                });
            }
        }
    }
    if issues.is_empty() { Ok(()) } else { Err(RunnerError::Config(issues)) }
}

/// Runs every job of `config` until they are done (one-shot jobs, scheduled jobs with an
/// `end`, everything with `--once`) or `shutdown` resolves.
pub async fn run(
    config: &Config,
    options: RunOptions,
    display: ProgressDisplay,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunSummary, RunnerError> {
    check_processors(config)?;
    let validators = crate::validators::build_all(config)?;
    let scheduled = config.jobs.iter().any(|j| j.schedule.is_some());
    let live = options.live.clone().unwrap_or_else(|| LiveStatus::of(config));
    let db = match &config.runner.state_db {
        Some(connection) => {
            let settings = &config.runner;
            let db =
                StateDb::open(connection.clone(), &settings.worker, settings.lease_ttl).await?;
            tracing::info!(state = %db.store(), worker = %db.owner(), lease_ttl = ?settings.lease_ttl, "sharing jobs through the state database");
            live.state_writable(true);
            Some(Arc::new(db))
        }
        None => None,
    };
    let state = if scheduled && db.is_none() {
        let state = StateDir::open(&config.runner.state_dir)?;
        live.state_writable(true);
        Some(Arc::new(state))
    } else {
        None
    };
    let mut starts = BTreeMap::new();
    if let Some(state) = &state {
        let mut errors = Vec::new();
        for job in config.jobs.iter().filter(|j| j.schedule.is_some()) {
            match state.load(job, options.on_mismatch(&job.name)) {
                Ok(at) => {
                    starts.insert(job.name.clone(), at);
                }
                Err(err) => errors.push(err),
            }
        }
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
    }

    let stop = CancellationToken::new();
    let cancel = CancellationToken::new();
    let shared = Arc::new(Shared {
        clients: Clients::new(config.servers.clone(), Arc::clone(&live)),
        permits: Arc::new(Semaphore::new(config.runner.max_concurrent_queries)),
        stop: stop.clone(),
        cancel: cancel.clone(),
        state,
        db,
        lease_slots: Arc::new(Semaphore::new(config.runner.max_concurrent_queries)),
        display,
        options,
        live,
    });
    probe_servers(&shared, config);
    let grace = config.runner.shutdown_grace;
    let watcher = tokio::spawn({
        let (stop, cancel) = (stop.clone(), cancel.clone());
        async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.cancelled() => return false,
            }
            tracing::info!(grace = ?grace, "stopping: no new runs; in-flight runs get the grace period");
            stop.cancel();
            tokio::time::sleep(grace).await;
            cancel.cancel();
            true
        }
    });

    let mut tasks = JoinSet::new();
    let mut ids = BTreeMap::new();
    for ((index, job), validators) in config.jobs.iter().enumerate().zip(validators) {
        let job = Arc::new(job.clone());
        let shared = Arc::clone(&shared);
        let start = starts.get(&job.name).copied().flatten();
        let task =
            tasks.spawn(async move { (index, run_job(shared, job, validators, start).await) });
        ids.insert(task.id(), index);
    }
    let mut jobs = join_jobs(&mut tasks, &ids, &config.jobs, &shared.live, cancel.clone()).await;
    let interrupted = stop.is_cancelled();
    let cut = cancel.is_cancelled();
    if !tasks.is_empty() {
        abandon(&mut tasks, &mut jobs, config);
    }
    // Everything finished: release the watcher (it may still be counting the grace period).
    stop.cancel();
    watcher.abort();
    Ok(RunSummary { jobs: jobs.into_iter().flatten().collect(), interrupted, cut })
}

/// What every job task shares.
struct Shared {
    clients: Clients,
    permits: Arc<Semaphore>,
    /// Set on shutdown: start nothing new.
    stop: CancellationToken,
    /// Set when the grace period is over: abandon runs in flight.
    cancel: CancellationToken,
    state: Option<Arc<StateDir>>,
    /// The shared state, when `[runner] state` names a database (then `state` is `None`).
    db: Option<Arc<StateDb>>,
    /// Leases this worker may hold at once: as many as it runs queries.
    lease_slots: Arc<Semaphore>,
    display: ProgressDisplay,
    options: RunOptions,
    /// Every job's status, for the status page.
    live: Arc<LiveStatus>,
}

/// Connects to every server a job uses as soon as the run starts, retrying until each answers
/// or the run stops: `/readyz` then says whether the worker can reach its servers before the
/// first window is due, and a wrong address shows in the log at once.
fn probe_servers(shared: &Arc<Shared>, config: &Config) {
    let used: std::collections::BTreeSet<_> =
        config.jobs.iter().map(|j| j.server.clone()).collect();
    for server in used {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let connected = tokio::select! {
                    connected = shared.clients.get(&server) => connected,
                    () = shared.stop.cancelled() => return,
                };
                let Err(err) = connected else { return };
                tracing::warn!(server = %server, error = %Chain(&err), "cannot reach the server yet; retrying");
                let pause = std::time::Duration::from_millis(500)
                    .saturating_mul(1 << failures.min(5))
                    .min(std::time::Duration::from_secs(10));
                failures += 1;
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.stop.cancelled() => return,
                }
            }
        });
    }
}

async fn run_job(
    shared: Arc<Shared>,
    job: Arc<JobConfig>,
    validators: JobValidators,
    start: Option<DateTime<Utc>>,
) -> JobSummary {
    let mut summary =
        JobSummary { name: job.name.clone(), server: job.server.clone(), ..Default::default() };
    let live = shared.live.job(&job.name);
    match (job.schedule, &shared.db) {
        (None, Some(db)) => run_leased_once(&shared, db, &job, &validators, &mut summary).await,
        (None, None) => match schedule::one_shot_range(&job) {
            Ok(window) => {
                let scope = Scope::plain(&shared);
                run_window(&shared, &job, &validators, window, &scope, &mut summary).await;
            }
            Err(err) => refuse(&job, err, &mut summary),
        },
        (Some(schedule), Some(db)) => {
            run_leased(&shared, db, &job, &validators, schedule, &mut summary).await
        }
        (Some(schedule), None) => {
            run_scheduled(&shared, &job, &validators, schedule, start, &mut summary).await
        }
    }
    // A job a signal stopped resumes on the next start: it is waiting, not done.
    if shared.stop.is_cancelled() && summary.last_error.is_none() {
        live.cancelled();
    } else {
        live.ended(summary.last_error.as_deref());
    }
    summary
}

/// Fails `job` before any run: `err` says why.
fn refuse(job: &JobConfig, err: RunnerError, summary: &mut JobSummary) {
    tracing::error!(job = %job.name, error = %Chain(&err), "job cannot start");
    summary.last_error = Some(Chain(&err).to_string());
    m::record_run(&job.name, &job.server, RunStatus::Failed);
    summary.runs_failed += 1;
}
