//! The end of a run: every processor's `finish` has prepared its output; now either all commit
//! or all abort.

use futures::future::join_all;

use super::ExecOutcome;
use super::stats::ExecStats;
use super::worker::{self, Ending, WorkerResult};
use crate::error::{Error, Result};
use crate::process::{BatchProcessor, ProcessStage};

/// Decides what the run returns, a processor failure first, then the query's error, then
/// cancellation, then success; commits the prepared processors on success and aborts them
/// otherwise.
pub(crate) async fn settle(
    stats: ExecStats,
    streamed: Result<()>,
    results: Vec<WorkerResult>,
) -> Result<ExecOutcome> {
    let mut reports = Vec::with_capacity(results.len());
    let mut prepared = Vec::with_capacity(results.len());
    let mut failure = None;
    let mut aborted = false;
    for result in results {
        match result.ending {
            Ending::Failed(error) => failure = failure.or(Some(error)),
            Ending::Finished(report) => reports.push((result.name.clone(), report)),
            Ending::Aborted => aborted = true,
        }
        if let Some(processor) = result.prepared {
            prepared.push((result.name, processor));
        }
    }
    let verdict = match (failure, streamed) {
        (Some(error), _) | (None, Err(error)) => Err(error),
        (None, Ok(())) if stats.cancelled || aborted => {
            reports.clear();
            Ok(ExecOutcome { stats, reports })
        }
        (None, Ok(())) => {
            return commit_all(prepared).await.map(|()| ExecOutcome { stats, reports });
        }
    };
    abort_all(&mut prepared).await;
    verdict
}

/// Commits in the order the processors were given; after a failed commit the rest are aborted.
async fn commit_all(mut prepared: Vec<(String, Box<dyn BatchProcessor>)>) -> Result<()> {
    for index in 0..prepared.len() {
        let (name, processor) = &mut prepared[index];
        if let Err(source) = worker::commit(processor.as_mut()).await {
            let error = Error::Processor {
                processor: name.clone(),
                stage: ProcessStage::Commit,
                batch: None,
                source,
            };
            tracing::error!(processor = %name, "{error}");
            abort_all(&mut prepared[index..]).await;
            return Err(error);
        }
    }
    Ok(())
}

/// Aborts prepared processors, all at once so that slow ones do not add up.
async fn abort_all(prepared: &mut [(String, Box<dyn BatchProcessor>)]) {
    join_all(prepared.iter_mut().map(|(name, p)| worker::abort(p.as_mut(), name))).await;
}
