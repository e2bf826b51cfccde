//! Waiting for the job tasks, and the deadline after which runs that ignore cancellation are
//! abandoned.

use std::collections::BTreeMap;
use std::time::Duration;

use flightline_core::exec::{ABORT_DEADLINE, CancellationToken};
use tokio::task::JoinSet;

use crate::config::{Config, JobConfig};
use crate::live::LiveStatus;
use crate::metrics::{self as m, RunStatus};
use crate::summary::JobSummary;

/// Waits for the job tasks (`ids` maps each task to its job's index) until every one ended, or
/// until [`CANCEL_WAIT`] after `cancel`: tasks still running then are left in `tasks`. A task that
/// panicked (a bug, but not one to hide behind exit status 0) becomes a failed job whose error is
/// the panic, so the summary names it and `run` exits non-zero.
pub(super) async fn join_jobs(
    tasks: &mut JoinSet<(usize, JobSummary)>,
    ids: &BTreeMap<tokio::task::Id, usize>,
    configs: &[JobConfig],
    live: &LiveStatus,
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
                let error = format!(
                    "{err} (a bug: please report it with the log above); windows after the \
                     last committed checkpoint run again next time"
                );
                live.job(&job.name).ended(Some(&error));
                jobs[index] = Some(JobSummary {
                    name: job.name.clone(),
                    server: job.server.clone(),
                    runs_failed: 1,
                    last_error: Some(error),
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
pub(super) fn abandon(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scheduled_test_job;
    use crate::progress::summary_table;
    use crate::summary::RunSummary;

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

        let live = LiveStatus::new(configs.iter().map(|j| (j.name.as_str(), "s", true)));
        let jobs = join_jobs(&mut tasks, &ids, &configs, &live, CancellationToken::new()).await;
        let shown = live.snapshot();
        assert_eq!(shown.jobs[1].state, crate::live::JobState::Failed, "the page says so too");
        assert!(shown.jobs[1].last_error.as_deref().unwrap_or_default().contains("a bug"));
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
