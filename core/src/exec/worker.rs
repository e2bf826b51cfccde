//! One processor on its own task, fed through a bounded queue.
//!
//! The queue is what keeps memory bounded: the executor waits when a processor's queue is
//! full, so the slowest processor sets the pace and at most `depth + 1` batches wait per
//! processor. A failing processor cancels the run's `halt` token so that the stream and the
//! other processors stop promptly.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::error::{Chain, Error};
use crate::metrics as names;
use crate::process::{BatchProcessor, ProcessContext, ProcessError, ProcessStage, Report};

/// How long a processor's `abort` may take before the run stops waiting for it.
pub const ABORT_DEADLINE: Duration = Duration::from_secs(5);

/// What the executor sends a processor.
pub(crate) enum Message {
    Open(SchemaRef, ProcessContext),
    Batch(RecordBatch, ProcessContext),
    Finish(ProcessContext),
}

/// How a processor's run ended.
pub(crate) enum Ending {
    Finished(Report),
    Failed(Error),
    /// Cancelled, or stopped because something else failed; `abort` was called.
    Aborted,
}

/// What a worker hands back when it ends.
pub(crate) struct WorkerResult {
    pub name: String,
    pub times: Vec<Duration>,
    pub ending: Ending,
    /// The processor, kept when it finished: it waits for the run's commit or abort.
    pub prepared: Option<Box<dyn BatchProcessor>>,
}

/// The run's worker tasks. Dropping this (the run's future was dropped) cancels the run and
/// aborts every task still running, so no worker outlives its run.
pub(crate) struct Workers {
    handles: Vec<JoinHandle<WorkerResult>>,
    halt: CancellationToken,
}

impl Workers {
    pub fn new(halt: CancellationToken) -> Self {
        Self { handles: Vec::new(), halt }
    }

    pub fn spawn(&mut self, worker: impl Future<Output = WorkerResult> + Send + 'static) {
        self.handles.push(tokio::spawn(worker));
    }

    /// Waits for every worker; a worker task that died (only a runtime shutdown can do that:
    /// panics are caught inside) counts as a failure of its processor.
    pub async fn join(&mut self) -> Vec<WorkerResult> {
        let mut results = Vec::with_capacity(self.handles.len());
        for (index, handle) in self.handles.iter_mut().enumerate() {
            results.push(handle.await.unwrap_or_else(|err| died(index, &err)));
        }
        self.handles.clear();
        results
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.halt.cancel();
        for handle in &self.handles {
            handle.abort();
        }
    }
}

fn died(index: usize, err: &JoinError) -> WorkerResult {
    let name = format!("processor #{index}");
    WorkerResult {
        name: name.clone(),
        times: Vec::new(),
        ending: Ending::Failed(Error::Processor {
            processor: name,
            stage: ProcessStage::Process,
            batch: None,
            source: ProcessError::new(format!("its task ended: {err}")),
        }),
        prepared: None,
    }
}

/// Metric handles of one processor, registered once.
pub(crate) struct WorkerMetrics {
    pub batch_duration: metrics::Histogram,
    pub errors: metrics::Counter,
}

impl WorkerMetrics {
    pub fn new(labels: &[metrics::Label], processor: &str) -> Self {
        let mut labels = labels.to_vec();
        labels.push(metrics::Label::new(names::LABEL_PROCESSOR, processor.to_string()));
        Self {
            batch_duration: metrics::histogram!(names::BATCH_DURATION_SECONDS, labels.clone()),
            errors: metrics::counter!(names::PROCESSOR_ERRORS_TOTAL, labels),
        }
    }
}

/// Runs `processor` until its queue says finish, fails, or `halt` is cancelled.
pub(crate) async fn run(
    mut processor: Box<dyn BatchProcessor>,
    mut queue: mpsc::Receiver<Message>,
    halt: CancellationToken,
    metrics: WorkerMetrics,
) -> WorkerResult {
    let name = processor.name().to_string();
    let mut times = Vec::new();
    let ending = loop {
        let message = tokio::select! {
            biased;
            _ = halt.cancelled() => None,
            message = queue.recv() => message,
        };
        // A closed queue without `Finish` means the run stopped.
        let Some(message) = message else { break Ending::Aborted };
        let (stage, batch, outcome) = match message {
            Message::Open(schema, ctx) => {
                let outcome = guarded(&halt, processor.open(&schema, &ctx)).await;
                (ProcessStage::Open, None, outcome.map(|r| r.map(|()| None)))
            }
            Message::Batch(batch, ctx) => {
                let started = Instant::now();
                let outcome = guarded(&halt, processor.process(&batch, &ctx)).await;
                let elapsed = started.elapsed();
                if outcome.is_some() {
                    times.push(elapsed);
                    metrics.batch_duration.record(elapsed.as_secs_f64());
                }
                (ProcessStage::Process, Some(ctx.batch_index), outcome.map(|r| r.map(|()| None)))
            }
            Message::Finish(ctx) => {
                let outcome = guarded(&halt, processor.finish(&ctx)).await;
                (ProcessStage::Finish, None, outcome.map(|r| r.map(Some)))
            }
        };
        match outcome {
            None => break Ending::Aborted,
            Some(Ok(None)) => {}
            Some(Ok(Some(report))) => break Ending::Finished(report),
            Some(Err(source)) => {
                metrics.errors.increment(1);
                halt.cancel();
                let error = Error::Processor { processor: name.clone(), stage, batch, source };
                tracing::error!(processor = %name, "{}", Chain(&error));
                break Ending::Failed(error);
            }
        }
    };
    let prepared = if matches!(ending, Ending::Finished(_)) {
        Some(processor)
    } else {
        abort(processor.as_mut(), &name).await;
        None
    };
    WorkerResult { name, times, ending, prepared }
}

/// Calls `commit`; a panic becomes the processor's error. Not cancellable: once a run commits,
/// every processor gets the chance to.
pub(crate) async fn commit(processor: &mut dyn BatchProcessor) -> Result<(), ProcessError> {
    AssertUnwindSafe(processor.commit())
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(ProcessError::new(panic_text(&panic))))
}

/// Calls `abort`, bounded by [`ABORT_DEADLINE`]: an abort that panics or hangs (a plugin whose
/// cancelled call never returns) is given up on, so the run still ends.
pub(crate) async fn abort(processor: &mut dyn BatchProcessor, name: &str) {
    let aborted = AssertUnwindSafe(processor.abort()).catch_unwind();
    match tokio::time::timeout(ABORT_DEADLINE, aborted).await {
        Ok(Ok(())) => {}
        // A panicking abort must not take the executor down with it.
        Ok(Err(_)) => {
            tracing::error!(processor = %name, "abort panicked; partial output may remain")
        }
        Err(_) => tracing::error!(
            processor = %name,
            deadline = ?ABORT_DEADLINE,
            "abort did not return in time: given up on; partial output may remain"
        ),
    }
}

/// Awaits one processor call unless `halt` fires first (`None`); a panic becomes an error.
async fn guarded<T>(
    halt: &CancellationToken,
    call: impl Future<Output = Result<T, ProcessError>>,
) -> Option<Result<T, ProcessError>> {
    tokio::select! {
        biased;
        _ = halt.cancelled() => None,
        outcome = AssertUnwindSafe(call).catch_unwind() => {
            Some(outcome.unwrap_or_else(|panic| Err(ProcessError::new(panic_text(&panic)))))
        }
    }
}

fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text payload".to_string());
    format!("panicked: {text}")
}
