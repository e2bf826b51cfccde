//! Running the jobs of a [`Config`]: concurrently under one limit, with schedules,
//! checkpoints, retries and a graceful stop.
//!
//! Each job is a tokio task. A run (one window of a scheduled job, or the single run of a
//! one-shot job) waits for a permit of the global semaphore, builds fresh processors and
//! streams the query through them with the [`QueryExecutor`]. A slow or failing job only
//! holds its own permit, so the others keep going.
//!
//! Stopping: when `shutdown` resolves, no new run starts; runs in flight get
//! `[runner].shutdown_grace` to finish, then they are cancelled, their processors aborted and
//! their checkpoints left where they were. A cancelled window is processed again next time.
//! A run that still has not ended a few seconds later (a processor blocked in a call that
//! ignores cancellation) is abandoned: `run` returns without it, and the summary says the
//! work was cut.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flightline_core::error::Chain;
use flightline_core::exec::{
    ABORT_DEADLINE, CancellationToken, ExecOutcome, QueryExecutor, RunRequest,
};
use flightline_core::{FlightSqlClient, QueryOptions, TimeRange};
use rand::Rng;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;

use crate::RunnerError;
use crate::checkpoint::{OnMismatch, StateDir};
use crate::config::{Config, JobConfig, RetryPolicy, Schedule, ServerConfig};
use crate::error::ConfigIssue;
use crate::metrics::{self as m, RunStatus};
use crate::processors;
use crate::progress::ProgressDisplay;
use crate::schedule;
use crate::sql_time;
use crate::summary::{JobSummary, RunSummary};
use crate::validators::JobValidators;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Process what is due now and exit, instead of running scheduled jobs forever.
    pub once: bool,
    /// Jobs whose checkpoint from another configuration is forgotten (`all` for every job).
    pub reset_checkpoint: Vec<String>,
    /// Jobs whose checkpoint from another configuration is kept (`all` for every job).
    pub continue_checkpoint: Vec<String>,
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
    let state =
        if scheduled { Some(Arc::new(StateDir::open(&config.runner.state_dir)?)) } else { None };
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
        clients: Clients::new(config.servers.clone()),
        permits: Arc::new(Semaphore::new(config.runner.max_concurrent_queries)),
        stop: stop.clone(),
        cancel: cancel.clone(),
        state,
        display,
        once: options.once,
    });
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
    let mut jobs = join_jobs(&mut tasks, &ids, &config.jobs, cancel.clone()).await;
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

/// Waits for the job tasks (`ids` maps each task to its job's index) until every one ended, or
/// until [`CANCEL_WAIT`] after `cancel`: tasks still running then are left in `tasks`. A task that
/// panicked (a bug, but not one to hide behind exit status 0) becomes a failed job whose error is
/// the panic, so the summary names it and `run` exits non-zero.
async fn join_jobs(
    tasks: &mut JoinSet<(usize, JobSummary)>,
    ids: &BTreeMap<tokio::task::Id, usize>,
    configs: &[JobConfig],
    cancel: CancellationToken,
) -> Vec<Option<JobSummary>> {
    let mut jobs: Vec<Option<JobSummary>> = vec![None; configs.len()];
    let give_up = give_up_after_cancel(cancel);
    tokio::pin!(give_up);
    while let Some(done) = tokio::select! {
        done = tasks.join_next() => done,
        () = &mut give_up => None,
    } {
        match done {
            Ok((index, summary)) => jobs[index] = Some(summary),
            Err(err) => {
                let job = ids.get(&err.id()).and_then(|i| Some((*i, configs.get(*i)?)));
                let Some((index, job)) = job else { continue };
                tracing::error!(job = %job.name, error = %err, "the job's task ended abnormally");
                m::record_run(&job.name, &job.server, RunStatus::Failed);
                jobs[index] = Some(JobSummary {
                    name: job.name.clone(),
                    server: job.server.clone(),
                    runs_failed: 1,
                    last_error: Some(format!(
                        "{err} (a bug: please report it with the log above); windows after the \
                         last committed checkpoint run again next time"
                    )),
                    ..Default::default()
                });
            }
        }
    }
    jobs
}

/// How long runs get to end once cancelled: their processors' aborts, plus a margin.
const CANCEL_WAIT: Duration = ABORT_DEADLINE.saturating_add(Duration::from_secs(1));

/// Resolves [`CANCEL_WAIT`] after `cancel`: jobs still running then are stuck in code that
/// does not heed cancellation.
async fn give_up_after_cancel(cancel: CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(CANCEL_WAIT).await;
}

/// Stops waiting for the jobs still running (their tasks are aborted; a blocked call goes on
/// in its thread until the process exits) and counts their run as cancelled.
fn abandon(
    tasks: &mut JoinSet<(usize, JobSummary)>,
    jobs: &mut [Option<JobSummary>],
    config: &Config,
) {
    tracing::error!(
        jobs = tasks.len(),
        waited = ?CANCEL_WAIT,
        "runs still not stopped after they were cancelled: abandoning them"
    );
    tasks.abort_all();
    for (slot, job) in jobs.iter_mut().zip(&config.jobs).filter(|(slot, _)| slot.is_none()) {
        *slot = Some(JobSummary {
            name: job.name.clone(),
            server: job.server.clone(),
            runs_cancelled: 1,
            ..Default::default()
        });
    }
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
    display: ProgressDisplay,
    once: bool,
}

/// One client per server, connected on first use and kept (tonic reconnects by itself).
///
/// Each server has its own cell and no lock spans a connect: jobs on one server share a single
/// connect attempt (the others wait for it), while a server that does not answer delays only
/// its own jobs.
struct Clients {
    servers: BTreeMap<String, (ServerConfig, OnceCell<FlightSqlClient>)>,
}

impl Clients {
    fn new(servers: BTreeMap<String, ServerConfig>) -> Self {
        let servers =
            servers.into_iter().map(|(name, config)| (name, (config, OnceCell::new()))).collect();
        Self { servers }
    }

    async fn get(&self, name: &str) -> Result<FlightSqlClient, RunnerError> {
        let Some((server, cell)) = self.servers.get(name) else {
            return Err(flightline_core::Error::Config(format!("no server named {name:?}")).into());
        };
        // A failed connect leaves the cell empty: the next caller tries again.
        cell.get_or_try_init(|| server.settings.connect()).await.cloned()
    }
}

/// How one window (or one-shot run) ended after its retries.
enum Attempt {
    Done(Box<ExecOutcome>),
    Cancelled,
    Failed(RunnerError),
}

async fn run_job(
    shared: Arc<Shared>,
    job: Arc<JobConfig>,
    validators: JobValidators,
    start: Option<DateTime<Utc>>,
) -> JobSummary {
    let mut summary =
        JobSummary { name: job.name.clone(), server: job.server.clone(), ..Default::default() };
    match job.schedule {
        None => match schedule::one_shot_range(&job) {
            Ok(window) => {
                run_window(&shared, &job, &validators, window, &mut summary).await;
            }
            Err(err) => refuse(&job, err, &mut summary),
        },
        Some(schedule) => {
            run_scheduled(&shared, &job, &validators, schedule, start, &mut summary).await
        }
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

async fn run_scheduled(
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
    loop {
        let cap = if shared.once { u32::MAX } else { schedule.max_windows_per_tick };
        let due = schedule::due_windows(checkpoint, Utc::now(), &schedule, stop_at, cap);
        let mut failed = false;
        for window in &due {
            if shared.stop.is_cancelled() {
                break;
            }
            if !run_window(shared, job, validators, Some(*window), summary).await {
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
            summary.last_error = None;
            lag_gauge(job, checkpoint);
        }
        lag_gauge(job, checkpoint);
        if shared.stop.is_cancelled() || schedule::finished(checkpoint, stop_at) {
            return;
        }
        if shared.once && (due.is_empty() || failed) {
            return;
        }
        if shared.once {
            continue;
        }
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
        lag_gauge(job, at);
    };
    state.commit_retrying(job, end, wait, on_failure, &shared.cancel).await
}

fn lag_gauge(job: &JobConfig, checkpoint: DateTime<Utc>) {
    let lag =
        Utc::now().signed_duration_since(checkpoint).num_milliseconds().max(0) as f64 / 1000.0;
    m::checkpoint_lag(&job.name, &job.server, lag);
}

/// One run with its retries, after its validators; true when it finished (and the caller may
/// commit). A run the validators refuse is a failed run, not retried.
async fn run_window(
    shared: &Shared,
    job: &JobConfig,
    validators: &JobValidators,
    window: Option<TimeRange>,
    summary: &mut JobSummary,
) -> bool {
    if let Err(err) = validators.screen(job, &job_sql(job, window.as_ref()), window).await {
        tracing::error!(job = %job.name, window = ?window.map(|w| w.to_string()), error = %err, "run refused by validation");
        m::record_run(&job.name, &job.server, RunStatus::Failed);
        summary.runs_failed += 1;
        summary.last_error = Some(err.to_string());
        return false;
    }
    match attempt(shared, job, window, summary).await {
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
            tracing::error!(job = %job.name, window = ?window.map(|w| w.to_string()), error = %Chain(&err), "run failed");
            summary.runs_failed += 1;
            summary.last_error = Some(Chain(&err).to_string());
            false
        }
    }
}

async fn attempt(
    shared: &Shared,
    job: &JobConfig,
    window: Option<TimeRange>,
    summary: &mut JobSummary,
) -> Attempt {
    let mut tries = 0;
    loop {
        let started = Instant::now();
        let Some(outcome) = try_once(shared, job, window).await else {
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
            (RunStatus::Ok, Ok(o)) => return Attempt::Done(Box::new(o)),
            (RunStatus::Cancelled, _) => return Attempt::Cancelled,
            (RunStatus::Retried, Err(err)) => {
                summary.retries += 1;
                let wait = backoff(&job.retries, tries);
                tracing::warn!(job = %job.name, attempt = tries + 1, error = %Chain(&err), retry_in = ?wait, after = ?started.elapsed(), "run failed; retrying");
                tries += 1;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shared.stop.cancelled() => return Attempt::Cancelled,
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
) -> Option<Result<ExecOutcome, RunnerError>> {
    let client = tokio::select! {
        client = shared.clients.get(&job.server) => client,
        () = shared.stop.cancelled() => return None,
    };
    let client = match client {
        Ok(client) => client,
        Err(err) => return Some(Err(err)),
    };
    let permit = tokio::select! {
        permit = Arc::clone(&shared.permits).acquire_owned() => permit,
        () = shared.stop.cancelled() => return None,
    };
    let _permit = permit.ok()?;
    let _in_flight = m::in_flight(&job.name, &job.server);
    Some(run_once(shared, job, window, client).await)
}

/// The SQL sent for a run of `job` over `window` (and validated before it).
fn job_sql(job: &JobConfig, window: Option<&TimeRange>) -> String {
    match (window, job.time_range.uses_sql()) {
        (Some(range), true) => sql_time::render(&job.sql, range),
        _ => job.sql.clone(),
    }
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

async fn run_once(
    shared: &Shared,
    job: &JobConfig,
    window: Option<TimeRange>,
    client: FlightSqlClient,
) -> Result<ExecOutcome, RunnerError> {
    let processors = processors::build_all(job)?;
    let sql = job_sql(job, window.as_ref());
    let executor = QueryExecutor::new(client)
        .job(job.name.as_str())
        .target_batch_bytes(job.target_batch_bytes)
        .estimate(job.estimate)
        .query_options(QueryOptions::default())
        .metric_labels(vec![(
            flightline_core::metrics::LABEL_SERVER.to_string(),
            job.server.clone(),
        )]);
    // One-shot jobs are named alone; a scheduled job's bar says which window it is on.
    let shown = if job.schedule.is_some() { window.as_ref() } else { None };
    let progress = shared.display.run(&job.name, shown);
    let header_range = if job.time_range.uses_headers() { window } else { None };
    let request = RunRequest::new(sql)
        .range(header_range)
        .window(window)
        .processors(processors)
        .progress(&progress)
        .cancel(shared.cancel.child_token());
    let outcome = executor.run(request).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scheduled_test_job;
    use crate::progress::summary_table;

    #[tokio::test]
    async fn a_job_task_that_panics_is_a_failed_job_named_in_the_summary() {
        let calm = JobConfig { name: "calm".into(), ..scheduled_test_job() };
        let boom = JobConfig { name: "boom".into(), ..scheduled_test_job() };
        let configs = vec![calm, boom];
        let mut tasks = JoinSet::new();
        let mut ids = BTreeMap::new();
        let ok = JobSummary { name: "calm".into(), runs_ok: 1, ..Default::default() };
        ids.insert(tasks.spawn(async move { (0, ok) }).id(), 0);
        let panics = async {
            panic!("schedule arithmetic overflowed");
        };
        ids.insert(tasks.spawn(panics).id(), 1);

        let jobs = join_jobs(&mut tasks, &ids, &configs, CancellationToken::new()).await;
        let jobs = jobs.into_iter().flatten().collect();
        let summary = RunSummary { jobs, interrupted: false, cut: false };
        assert_eq!(summary.failed_jobs(), vec!["boom".to_string()]);
        let boom = &summary.jobs[1];
        assert_eq!(boom.runs_failed, 1);
        let error = boom.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("schedule arithmetic overflowed"), "{error}");
        assert!(summary_table(&summary).contains("boom: last error:"));
    }
}
