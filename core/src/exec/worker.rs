//! One processor on its own task (or thread, for processors that block), fed through a bounded
//! queue.
//!
//! The queue is what keeps memory bounded: the executor waits when a processor's queue is
//! full, so the slowest processor sets the pace and at most `depth + 1` batches wait per
//! processor. A failing processor cancels the run's `halt` token so that the stream and the
//! other processors stop promptly.

use std::any::Any;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
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

/// The run's workers: tasks on the runtime, and threads of their own for processors whose
/// calls block (see [`BatchProcessor::blocking`]). Dropping this (the run's future was dropped)
/// cancels the run and aborts every task still running, so no worker task outlives its run; a
/// thread ends by itself once the call it is in returns.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    halt: CancellationToken,
}

enum Handle {
    Task(JoinHandle<WorkerResult>),
    Thread { name: String, done: oneshot::Receiver<WorkerResult> },
}

thread_local! {
    /// Set on a blocking processor's own thread, where its blocking calls may run inline.
    static OWN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs on a blocking processor's own thread (see
/// [`BatchProcessor::blocking`]): there, a blocking call needs no hop to the blocking pool.
pub(crate) fn on_own_thread() -> bool {
    OWN_THREAD.get()
}

/// `call`, to be run on another thread under the caller's tracing subscriber and span, so that
/// its log lines land where the caller's would.
pub(crate) fn in_callers_trace<T>(call: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span = tracing::Span::current();
    move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(call))
}

impl Workers {
    pub fn new(halt: CancellationToken) -> Self {
        Self { handles: Vec::new(), halt }
    }

    /// Starts `processor`'s worker, fed by `queue`. Needs a tokio runtime.
    pub fn spawn(
        &mut self,
        processor: Box<dyn BatchProcessor>,
        queue: mpsc::Receiver<Message>,
        metrics: WorkerMetrics,
    ) {
        let halt = self.halt.clone();
        let handle = if processor.blocking() {
            own_thread(processor, queue, halt, metrics)
        } else {
            Handle::Task(tokio::spawn(run(processor, queue, halt, metrics)))
        };
        self.handles.push(handle);
    }

    /// Waits for every worker, all at once; a worker task that died (only a runtime shutdown
    /// can do that: panics are caught inside) counts as a failure of its processor. A thread
    /// still in a call [`ABORT_DEADLINE`] after the run was halted is given up on, as aborted:
    /// the deadlines of several such threads run side by side, not one after the other.
    pub async fn join(&mut self) -> Vec<WorkerResult> {
        let halt = &self.halt;
        let waits = self.handles.iter_mut().enumerate().map(|(index, handle)| async move {
            match handle {
                Handle::Task(task) => {
                    let ended =
                        |err| died(format!("processor #{index}"), format!("its task ended: {err}"));
                    task.await.unwrap_or_else(ended)
                }
                Handle::Thread { name, done } => {
                    let given_up = async {
                        halt.cancelled().await;
                        tokio::time::sleep(ABORT_DEADLINE).await;
                    };
                    tokio::select! {
                        result = done => result.unwrap_or_else(|_| {
                            died(name.clone(), "its thread ended without a result".into())
                        }),
                        () = given_up => abandoned(name),
                    }
                }
            }
        });
        let results = futures::future::join_all(waits).await;
        self.handles.clear();
        results
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.halt.cancel();
        for handle in &self.handles {
            if let Handle::Task(task) = handle {
                task.abort();
            }
        }
    }
}

/// Runs `processor`'s worker on a new thread, inside the runtime's context and under the
/// caller's tracing subscriber and span, so that its log lines land where a task's would.
fn own_thread(
    processor: Box<dyn BatchProcessor>,
    queue: mpsc::Receiver<Message>,
    halt: CancellationToken,
    metrics: WorkerMetrics,
) -> Handle {
    let name = processor.name().to_string();
    let (finished, done) = oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    let stop = halt.clone();
    let worker = in_callers_trace(move || {
        futures::executor::block_on(work_alone(processor, queue, halt, metrics, finished))
    });
    let work = move || {
        let _runtime = runtime.enter();
        OWN_THREAD.set(true);
        worker();
    };
    // The closure, and the processor in it, is dropped when the thread cannot start: `join`
    // then reports the processor failed, and the halt stops the rest of the run.
    // A thread's name may hold no NUL; a processor's name is anyone's choice.
    let thread = format!("processor {}", name.replace('\0', ""));
    if let Err(err) = std::thread::Builder::new().name(thread).spawn(work) {
        tracing::error!(processor = %name, "could not start the processor's thread: {err}");
        stop.cancel();
    }
    Handle::Thread { name, done }
}

/// The worker loop on a processor's own thread, its result sent to `join`. When `join` gave up
/// on it (a call outlived the halted run's deadline) and the processor finished after all, it
/// is aborted here: nothing will commit it.
async fn work_alone(
    processor: Box<dyn BatchProcessor>,
    queue: mpsc::Receiver<Message>,
    halt: CancellationToken,
    metrics: WorkerMetrics,
    finished: oneshot::Sender<WorkerResult>,
) {
    let result = run(processor, queue, halt, metrics).await;
    if let Err(WorkerResult { name, prepared: Some(mut processor), .. }) = finished.send(result) {
        abort(processor.as_mut(), &name).await;
    }
}

fn died(name: String, message: String) -> WorkerResult {
    WorkerResult {
        name: name.clone(),
        times: Vec::new(),
        ending: Ending::Failed(Error::Processor {
            processor: name,
            stage: ProcessStage::Process,
            batch: None,
            source: ProcessError::new(message),
        }),
        prepared: None,
    }
}

/// The result of a blocking processor whose thread is still in a call after the halted run's
/// deadline: the thread is left to finish it, then aborts and drops the processor itself
/// (see `work_alone`).
fn abandoned(name: &str) -> WorkerResult {
    tracing::error!(
        processor = %name,
        deadline = ?ABORT_DEADLINE,
        "a call of the processor is still running after the run stopped: left to its thread; \
         partial output may remain"
    );
    WorkerResult {
        name: name.to_string(),
        times: Vec::new(),
        ending: Ending::Aborted,
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
/// cancelled call never returns) is given up on, so the run still ends. On a processor's own
/// thread the bound is `join`'s: a blocking call cannot be timed out from the thread it blocks.
pub(crate) async fn abort(processor: &mut dyn BatchProcessor, name: &str) {
    let aborted = AssertUnwindSafe(processor.abort()).catch_unwind();
    let outcome = if on_own_thread() {
        Ok(aborted.await)
    } else {
        tokio::time::timeout(ABORT_DEADLINE, aborted).await
    };
    match outcome {
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
