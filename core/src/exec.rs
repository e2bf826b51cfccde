//! Streaming execution: [`QueryExecutor`] runs one query through any number of
//! [`BatchProcessor`]s.
//!
//! - The row estimate (`SELECT COUNT(*) FROM (sql)`, same time range) runs beside the stream
//!   and never delays the first batch; a failed or slow estimate is a warning and the estimate
//!   stays [`RowEstimate::Unknown`].
//! - Batches can be re-batched to a target size in bytes: big ones are split into zero-copy
//!   slices, small ones coalesced. Every row is kept, in order.
//! - Each processor runs on its own task behind a small bounded queue: processors run
//!   concurrently with the network and with each other, the slowest one sets the pace, and
//!   memory stays bounded (at most `queue_depth + 1` batches per processor are held).
//! - Progress events go to a [`ProgressObserver`]; [`ExecStats`] sum the run up.
//! - A [`CancellationToken`] stops the run promptly: processors are aborted and the partial
//!   statistics come back marked `cancelled`. A processor error stops the run too and comes
//!   back as [`Error::Processor`], naming the processor and the batch.
//!
//! ```no_run
//! use flightline_core::exec::{CancellationToken, QueryExecutor, RunRequest};
//! use flightline_core::{FlightSqlClient, TimeRange};
//!
//! # async fn run(processors: Vec<Box<dyn flightline_core::process::BatchProcessor>>)
//! #     -> flightline_core::Result<()> {
//! let client = FlightSqlClient::builder("grpc://127.0.0.1:50051").connect().await?;
//! let executor = QueryExecutor::new(client)
//!     .job("error_logs")
//!     .estimate(true)
//!     .target_batch_bytes(Some(8 * 1024 * 1024));
//! let request = RunRequest::new("SELECT time, level, target, msg FROM log_entries")
//!     .range(Some(TimeRange::parse_relative("1d")?))
//!     .processors(processors)
//!     .cancel(CancellationToken::new());
//! let outcome = executor.run(request).await?;
//! println!("{}", outcome.stats);
//! # Ok(()) }
//! ```

mod commit;
mod estimate;
mod progress;
mod rebatch;
mod request;
mod stats;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
/// The token that cancels a run, re-exported from `tokio-util`.
pub use tokio_util::sync::CancellationToken;

pub use progress::{NoProgress, ProgressEvent, ProgressObserver};
pub use rebatch::{Rebatcher, batch_bytes};
pub use request::RunRequest;
pub use stats::{ExecStats, ProcessorStats};
pub use worker::ABORT_DEADLINE;

use crate::client::{FlightSqlClient, QueryOptions};
use crate::error::{Error, Result};
use crate::metrics as names;
use crate::process::{BatchProcessor, ProcessContext, Report, RowEstimate, WindowLease};
use crate::time::TimeRange;
use worker::{Message, WorkerMetrics, Workers};
pub(crate) use worker::{in_callers_trace, on_own_thread};

/// Batches each processor's queue holds by default.
pub const DEFAULT_QUEUE_DEPTH: usize = 2;
/// How long the row estimate may take by default before it is given up.
pub const DEFAULT_ESTIMATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs queries through processors. Cheap to clone; one executor can run many queries, one
/// after the other or at once.
#[derive(Debug, Clone)]
pub struct QueryExecutor {
    client: FlightSqlClient,
    job: Arc<str>,
    target_batch_bytes: Option<usize>,
    estimate: bool,
    estimate_timeout: Duration,
    queue_depth: usize,
    options: QueryOptions,
    labels: Vec<(String, String)>,
}

/// What a run returns: its statistics and, unless cancelled, one report per processor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecOutcome {
    /// Totals and timings.
    pub stats: ExecStats,
    /// `(processor name, report)`, in the order the processors were given; empty when
    /// cancelled.
    pub reports: Vec<(String, Report)>,
}

impl QueryExecutor {
    /// An executor over `client`: no estimate, batches as received, queues of
    /// [`DEFAULT_QUEUE_DEPTH`].
    pub fn new(client: FlightSqlClient) -> Self {
        Self {
            client,
            job: Arc::from(""),
            target_batch_bytes: None,
            estimate: false,
            estimate_timeout: DEFAULT_ESTIMATE_TIMEOUT,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            options: QueryOptions::default(),
            labels: Vec::new(),
        }
    }

    /// The job name: the `job` metric label and [`ProcessContext::job`].
    pub fn job(mut self, name: impl Into<Arc<str>>) -> Self {
        self.job = name.into();
        self
    }

    /// Re-batches to about `bytes` per batch; `None` (the default) passes batches as received.
    pub fn target_batch_bytes(mut self, bytes: Option<usize>) -> Self {
        self.target_batch_bytes = bytes;
        self
    }

    /// Runs `SELECT COUNT(*) FROM (sql)` beside the stream for a percentage in progress.
    pub fn estimate(mut self, on: bool) -> Self {
        self.estimate = on;
        self
    }

    /// How long the estimate may take before it is given up (default 30 s).
    pub fn estimate_timeout(mut self, timeout: Duration) -> Self {
        self.estimate_timeout = timeout;
        self
    }

    /// Batches each processor's queue holds (at least 1; default 2).
    pub fn queue_depth(mut self, batches: usize) -> Self {
        self.queue_depth = batches.max(1);
        self
    }

    /// Per-call query options: row cap, headers, direct ticket, parallel endpoints.
    pub fn query_options(mut self, options: QueryOptions) -> Self {
        self.options = options;
        self
    }

    /// Extra static labels on every metric, e.g. `("server", "prod")`.
    pub fn metric_labels(mut self, labels: Vec<(String, String)>) -> Self {
        self.labels = labels;
        self
    }

    /// Runs the request's SQL over its range through its processors.
    ///
    /// Returns `Err(Error::Processor{..})` when a processor fails, the query's error when the
    /// query fails, and `Ok` with `stats.cancelled` set and no reports when the request's token
    /// was cancelled. On success every processor has been committed; in every other case each
    /// processor's `abort` has been called (see [`BatchProcessor`] for the whole contract), or
    /// will be by its own thread, for a [blocking](BatchProcessor::blocking) processor whose
    /// call outlived [`ABORT_DEADLINE`].
    ///
    /// Dropping the returned future cancels the run: its worker tasks are aborted with it and
    /// the processors dropped, so no task outlives the run; a blocking processor's thread ends,
    /// and drops its processor, once the call it is in returns.
    pub async fn run(&self, request: RunRequest<'_>) -> Result<ExecOutcome> {
        let started = Instant::now();
        let progress = request.progress;
        progress.on_event(&ProgressEvent::Started { job: self.job.clone() });
        let cancel = request.cancel.clone();
        let halt = cancel.child_token();
        let labels = self.base_labels();
        let mut workers = Workers::new(halt.clone());
        let mut queues = Vec::with_capacity(request.processors.len());
        for processor in request.processors {
            let (tx, rx) = mpsc::channel(self.queue_depth);
            let metrics = WorkerMetrics::new(&labels, processor.name());
            workers.spawn(processor, rx, metrics);
            queues.push(tx);
        }

        let mut feed = Feed::new(self, request.range, queues, &halt, progress, started, &labels);
        feed.window = request.window.or(request.range);
        feed.lease = request.lease;
        let streamed = feed.stream(&request.sql).await;
        if streamed.is_err() {
            halt.cancel();
        }
        let (mut stats, queues) = feed.into_stats();
        drop(queues);
        let results = workers.join().await;
        stats.total = started.elapsed();
        stats.cancelled = cancel.is_cancelled();
        stats.processors =
            results.iter().map(|r| ProcessorStats::from_times(&r.name, r.times.clone())).collect();
        metrics::histogram!(names::QUERY_DURATION_SECONDS, labels.clone())
            .record(stats.total.as_secs_f64());
        let finished = stats.clone();
        let outcome = commit::settle(stats, streamed, results).await;
        progress.on_event(&ProgressEvent::Finished(&finished));
        outcome
    }

    fn base_labels(&self) -> Vec<metrics::Label> {
        let mut labels: Vec<metrics::Label> =
            self.labels.iter().map(|(k, v)| metrics::Label::new(k.clone(), v.clone())).collect();
        labels.push(metrics::Label::new(names::LABEL_JOB, self.job.to_string()));
        labels
    }
}

/// Aborts the estimate task when the run ends, whatever way it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counter handles of one run, registered once.
struct RunMetrics {
    rows: metrics::Counter,
    bytes: metrics::Counter,
    batches: metrics::Counter,
    first_batch: metrics::Histogram,
}

/// The stream side of a run: reads batches, re-batches them, hands them to every queue.
struct Feed<'a> {
    executor: &'a QueryExecutor,
    range: Option<TimeRange>,
    /// What processors see as the window.
    window: Option<TimeRange>,
    /// What processors see as the lease.
    lease: Option<Arc<WindowLease>>,
    queues: Vec<mpsc::Sender<Message>>,
    halt: &'a CancellationToken,
    progress: &'a dyn ProgressObserver,
    started: Instant,
    metrics: RunMetrics,
    rebatcher: Option<Rebatcher>,
    opened: bool,
    delivered_rows: u64,
    stats: ExecStats,
}

/// Whether the feed may go on.
enum Flow {
    Continue,
    /// Cancelled, or a processor failed.
    Halted,
}

impl<'a> Feed<'a> {
    fn new(
        executor: &'a QueryExecutor,
        range: Option<TimeRange>,
        queues: Vec<mpsc::Sender<Message>>,
        halt: &'a CancellationToken,
        progress: &'a dyn ProgressObserver,
        started: Instant,
        labels: &[metrics::Label],
    ) -> Self {
        let metrics = RunMetrics {
            rows: metrics::counter!(names::ROWS_TOTAL, labels.to_vec()),
            bytes: metrics::counter!(names::BYTES_TOTAL, labels.to_vec()),
            batches: metrics::counter!(names::BATCHES_TOTAL, labels.to_vec()),
            first_batch: metrics::histogram!(names::TIME_TO_FIRST_BATCH_SECONDS, labels.to_vec()),
        };
        Self {
            executor,
            range,
            window: range,
            lease: None,
            queues,
            halt,
            progress,
            started,
            metrics,
            rebatcher: executor.target_batch_bytes.map(Rebatcher::new),
            opened: false,
            delivered_rows: 0,
            stats: ExecStats::default(),
        }
    }

    fn into_stats(self) -> (ExecStats, Vec<mpsc::Sender<Message>>) {
        (self.stats, self.queues)
    }

    /// Streams the whole result into the queues, then tells every processor to finish. Returns
    /// early (Ok) when halted; Err only for a query failure.
    async fn stream(&mut self, sql: &str) -> Result<()> {
        let executor = self.executor;
        let open = executor.client.query_stream_with(sql, self.range, &executor.options);
        let mut stream = tokio::select! {
            biased;
            _ = self.halt.cancelled() => return Ok(()),
            stream = open => stream?,
        };
        let announced = stream.schema().cloned();
        // Started once the stream is open, so the count never competes with the first batch's
        // planning.
        let (_estimate_task, mut estimate) = if executor.estimate {
            let (task, rx) = estimate::spawn(
                executor.client.clone(),
                sql,
                self.range,
                executor.options.clone(),
                executor.estimate_timeout,
            );
            (Some(AbortOnDrop(task)), Some(rx))
        } else {
            (None, None)
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = self.halt.cancelled() => return Ok(()),
                arrived = wait_estimate(&mut estimate) => {
                    self.on_estimate(arrived);
                    continue;
                }
                next = stream.next() => next,
            };
            let Some(batch) = next.transpose()? else { break };
            if let Flow::Halted = self.on_batch(batch).await? {
                return Ok(());
            }
        }
        let rest = match self.rebatcher.as_mut() {
            Some(rebatcher) => rebatcher
                .flush()
                .map_err(|err| Error::Protocol(format!("re-batching failed: {err}")))?,
            None => None,
        };
        if let Some(rest) = rest
            && let Flow::Halted = self.deliver(rest).await
        {
            return Ok(());
        }
        if !self.opened {
            let schema = announced.unwrap_or_else(|| Arc::new(Schema::empty()));
            if let Flow::Halted = self.open(&schema).await {
                return Ok(());
            }
        }
        let ctx = self.context(self.stats.batches, self.delivered_rows);
        self.send_all(|| Message::Finish(ctx.clone())).await;
        Ok(())
    }

    fn on_estimate(&mut self, arrived: Option<RowEstimate>) {
        if let Some(estimate) = arrived {
            self.stats.estimate = estimate;
            self.progress.on_event(&ProgressEvent::Estimate(estimate));
        }
    }

    /// Counts a received batch and delivers it, re-batched if asked.
    async fn on_batch(&mut self, batch: RecordBatch) -> Result<Flow> {
        if self.stats.time_to_first_batch.is_none() {
            let first = self.started.elapsed();
            self.stats.time_to_first_batch = Some(first);
            self.metrics.first_batch.record(first.as_secs_f64());
        }
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            // Nothing for `process`; the first one may still be the only sight of the schema.
            if !self.opened {
                return Ok(self.open(&batch.schema()).await);
            }
            return Ok(Flow::Continue);
        }
        let bytes = batch_bytes(&batch) as u64;
        self.stats.rows += rows;
        self.stats.bytes += bytes;
        self.metrics.rows.increment(rows);
        self.metrics.bytes.increment(bytes);
        let batches = match self.rebatcher.as_mut() {
            Some(rebatcher) => rebatcher
                .push(batch)
                .map_err(|err| Error::Protocol(format!("re-batching failed: {err}")))?,
            None => vec![batch],
        };
        for batch in batches {
            if let Flow::Halted = self.deliver(batch).await {
                return Ok(Flow::Halted);
            }
        }
        Ok(Flow::Continue)
    }

    /// Hands one batch to every processor (opening them on the first), waiting for room in
    /// each queue: this wait is the back-pressure.
    async fn deliver(&mut self, batch: RecordBatch) -> Flow {
        if !self.opened
            && let Flow::Halted = self.open(&batch.schema()).await
        {
            return Flow::Halted;
        }
        let ctx = self.context(self.stats.batches, self.delivered_rows);
        let rows = batch.num_rows() as u64;
        if let Flow::Halted = self.send_all(|| Message::Batch(batch.clone(), ctx.clone())).await {
            return Flow::Halted;
        }
        self.stats.batches += 1;
        self.delivered_rows += rows;
        self.metrics.batches.increment(1);
        self.progress.on_event(&ProgressEvent::Batch {
            batches: self.stats.batches,
            rows: self.stats.rows,
            bytes: self.stats.bytes,
            elapsed: self.started.elapsed(),
            estimate: self.stats.estimate,
        });
        Flow::Continue
    }

    async fn open(&mut self, schema: &SchemaRef) -> Flow {
        self.opened = true;
        let ctx = self.context(0, 0);
        self.send_all(|| Message::Open(schema.clone(), ctx.clone())).await
    }

    async fn send_all(&self, message: impl Fn() -> Message) -> Flow {
        for queue in &self.queues {
            let sent = tokio::select! {
                biased;
                _ = self.halt.cancelled() => false,
                sent = queue.send(message()) => sent.is_ok(),
            };
            // A closed queue means its processor stopped, which only a failure does.
            if !sent {
                return Flow::Halted;
            }
        }
        Flow::Continue
    }

    fn context(&self, batch_index: u64, rows_before: u64) -> ProcessContext {
        ProcessContext::new(self.executor.job.clone())
            .with_window(self.window)
            .with_lease(self.lease.clone())
            .with_estimate(self.stats.estimate)
            .at_batch(batch_index, rows_before)
    }
}

/// The estimate when it arrives; pending forever when there is none (or it failed), so the
/// `select!` above simply stops polling it.
async fn wait_estimate(
    estimate: &mut Option<oneshot::Receiver<RowEstimate>>,
) -> Option<RowEstimate> {
    match estimate {
        Some(rx) => {
            let arrived = rx.await.ok();
            *estimate = None;
            arrived
        }
        None => std::future::pending().await,
    }
}
