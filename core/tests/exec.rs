//! The executor against the real embedded Flightline server.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use chrono::{DateTime, Utc};
use flightline_core::exec::{
    CancellationToken, ExecOutcome, ProgressEvent, QueryExecutor, RunRequest,
};
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, ProcessStage, Report, RowEstimate, async_trait,
};
use flightline_core::{Error, FlightSqlClient, TimeRange};
use flightline_server::RunningServer;

const ROWS: u64 = 20_000;
/// A run of the whole test suite must stay well inside this; nothing here should come close.
const PATIENCE: Duration = Duration::from_secs(60);

fn demo_end() -> DateTime<Utc> {
    support::demo_end()
}

async fn start() -> (RunningServer, FlightSqlClient) {
    support::demo_server(ROWS, 7).await
}

async fn server_count(client: &FlightSqlClient, sql: &str, range: Option<TimeRange>) -> u64 {
    let batches = client.query(sql, range).await.unwrap();
    let count = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    count.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0) as u64
}

/// What a [`Probe`] saw, shared with the test.
#[derive(Default)]
struct Seen {
    opened: AtomicBool,
    finished: AtomicBool,
    aborted: AtomicBool,
    batches: AtomicU64,
    rows: AtomicU64,
    /// Batches this probe has finished processing.
    done: AtomicU64,
    /// Largest `delivered elsewhere - done here` observed (see `Probe::lead_of`).
    max_lead: AtomicU64,
    times: Mutex<Vec<i64>>,
    context_errors: Mutex<Vec<String>>,
}

/// An instrumented processor: counts, checks the context, optionally sleeps, fails or cancels.
struct Probe {
    name: String,
    seen: Arc<Seen>,
    delay: Duration,
    fail_at: Option<u64>,
    cancel_at: Option<(u64, CancellationToken)>,
    /// Another probe whose progress this one measures its lead over.
    lead_of: Option<Arc<Seen>>,
    keep_times: bool,
}

impl Probe {
    fn new(name: &str) -> (Self, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let probe = Self {
            name: name.into(),
            seen: seen.clone(),
            delay: Duration::ZERO,
            fail_at: None,
            cancel_at: None,
            lead_of: None,
            keep_times: false,
        };
        (probe, seen)
    }
}

#[async_trait]
impl BatchProcessor for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn open(
        &mut self,
        _schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        self.seen.opened.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let index = self.seen.batches.load(Ordering::SeqCst);
        let rows = self.seen.rows.load(Ordering::SeqCst);
        if ctx.batch_index != index || ctx.rows_before != rows || &*ctx.job != "probe-job" {
            self.seen.context_errors.lock().unwrap().push(format!("{ctx:?} at {index}/{rows}"));
        }
        if let Some(other) = &self.lead_of {
            // Batches the executor already handed to this probe but the slow one has not
            // finished: what the executor holds because of the slow one.
            let lead = (index + 1).saturating_sub(other.done.load(Ordering::SeqCst));
            self.seen.max_lead.fetch_max(lead, Ordering::SeqCst);
        }
        if self.fail_at == Some(ctx.batch_index) {
            return Err(ProcessError::new("deliberate failure"));
        }
        if let Some((at, token)) = &self.cancel_at
            && *at == ctx.batch_index
        {
            token.cancel();
        }
        if self.keep_times {
            let times =
                batch.column_by_name("time").unwrap().as_primitive::<TimestampNanosecondType>();
            self.seen.times.lock().unwrap().extend(times.values().iter());
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.seen.batches.fetch_add(1, Ordering::SeqCst);
        self.seen.rows.fetch_add(batch.num_rows() as u64, Ordering::SeqCst);
        self.seen.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn finish(&mut self, ctx: &ProcessContext) -> Result<Report, ProcessError> {
        self.seen.finished.store(true, Ordering::SeqCst);
        let mut report = Report::default();
        report.counts.insert("rows".into(), self.seen.rows.load(Ordering::SeqCst));
        report.counts.insert("ctx_rows".into(), ctx.rows_before);
        Ok(report)
    }

    async fn abort(&mut self) {
        self.seen.aborted.store(true, Ordering::SeqCst);
    }
}

fn executor(client: &FlightSqlClient) -> QueryExecutor {
    QueryExecutor::new(client.clone()).job("probe-job")
}

async fn run(
    executor: &QueryExecutor,
    sql: &str,
    range: Option<TimeRange>,
    processors: Vec<Box<dyn BatchProcessor>>,
    cancel: CancellationToken,
) -> flightline_core::Result<ExecOutcome> {
    tokio::time::timeout(
        PATIENCE,
        executor.run(RunRequest::new(sql).range(range).processors(processors).cancel(cancel)),
    )
    .await
    .expect("the run did not end in time")
}

#[tokio::test]
async fn rows_through_the_executor_equal_the_server_count_for_several_ranges() {
    let (_server, client) = start().await;
    let end = demo_end();
    let ranges = [
        None,
        Some(TimeRange::new(end - chrono::Duration::days(1), end).unwrap()),
        Some(
            TimeRange::new(end - chrono::Duration::hours(30), end - chrono::Duration::hours(3))
                .unwrap(),
        ),
        Some(
            TimeRange::new(end - chrono::Duration::days(30), end - chrono::Duration::days(20))
                .unwrap(),
        ),
    ];
    let mut nonzero = 0;
    for range in ranges {
        let expected = server_count(&client, "SELECT COUNT(*) FROM log_entries", range).await;
        let (probe, seen) = Probe::new("counter");
        let outcome = run(
            &executor(&client),
            "SELECT time, level, target, msg FROM log_entries",
            range,
            vec![Box::new(probe)],
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(outcome.stats.rows, expected, "{range:?}");
        assert_eq!(seen.rows.load(Ordering::SeqCst), expected, "{range:?}");
        assert_eq!(seen.batches.load(Ordering::SeqCst), outcome.stats.batches);
        assert!(seen.opened.load(Ordering::SeqCst) && seen.finished.load(Ordering::SeqCst));
        assert!(!seen.aborted.load(Ordering::SeqCst));
        assert!(seen.context_errors.lock().unwrap().is_empty(), "{:?}", seen.context_errors);
        assert_eq!(outcome.reports.len(), 1);
        assert_eq!(outcome.reports[0].0, "counter");
        assert_eq!(outcome.reports[0].1.counts["ctx_rows"], expected);
        assert_eq!(outcome.stats.processors[0].batches, outcome.stats.batches);
        assert!(!outcome.stats.cancelled);
        if expected > 0 {
            nonzero += 1;
            assert!(outcome.stats.bytes > 0 && outcome.stats.time_to_first_batch.is_some());
        }
    }
    assert!(nonzero >= 3, "the ranges should mostly select rows");
}

#[tokio::test]
async fn rebatching_to_tiny_and_huge_targets_keeps_every_row_in_order() {
    let (_server, client) = start().await;
    let sql = "SELECT time, level FROM log_entries ORDER BY time";
    let reference: Vec<i64> = client
        .query(sql, None)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<TimestampNanosecondType>().values().to_vec())
        .collect();
    assert_eq!(reference.len() as u64, ROWS);
    // time (8 bytes) + level (4 bytes): 120 bytes is 10 rows.
    for (target, expect_batches) in [(120, Some(ROWS / 10)), (1 << 30, Some(1)), (70_000, None)] {
        let (mut probe, seen) = Probe::new("order");
        probe.keep_times = true;
        let outcome = run(
            &executor(&client).target_batch_bytes(Some(target)),
            sql,
            None,
            vec![Box::new(probe)],
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(*seen.times.lock().unwrap(), reference, "target {target}");
        if let Some(batches) = expect_batches {
            assert_eq!(outcome.stats.batches, batches, "target {target}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_processor_sets_the_pace_and_memory_stays_bounded() {
    let (_server, client) = start().await;
    let depth = 2;
    let (mut slow, slow_seen) = Probe::new("slow");
    slow.delay = Duration::from_millis(3);
    let (mut fast, fast_seen) = Probe::new("fast");
    fast.lead_of = Some(slow_seen.clone());
    let outcome = run(
        // About 400 batches of 50 rows, each a few milliseconds for the slow one.
        &executor(&client).queue_depth(depth).target_batch_bytes(Some(50 * 12)),
        "SELECT time, level FROM log_entries",
        None,
        vec![Box::new(slow), Box::new(fast)],
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.stats.rows, ROWS);
    for seen in [&slow_seen, &fast_seen] {
        assert_eq!(seen.rows.load(Ordering::SeqCst), ROWS);
        assert_eq!(seen.batches.load(Ordering::SeqCst), outcome.stats.batches);
    }
    assert!(outcome.stats.batches >= 300, "{}", outcome.stats.batches);
    // The fast processor can run ahead of the slow one only by what the slow one's queue holds,
    // the batch it works on and the one the executor is sending: the stream is never buffered.
    let lead = fast_seen.max_lead.load(Ordering::SeqCst);
    assert!(lead <= depth as u64 + 2, "the fast processor ran {lead} batches ahead");
    let slow_stats = &outcome.stats.processors[0];
    assert!(slow_stats.p50 >= Duration::from_millis(3), "{slow_stats}");
    assert!(slow_stats.max >= slow_stats.p95 && slow_stats.p95 >= slow_stats.p50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_stream_returns_promptly_with_partial_statistics() {
    let (_server, client) = start().await;
    let cancel = CancellationToken::new();
    let (mut slow, seen) = Probe::new("slow");
    // Uncancelled, this run would take about 2000 * 50 ms = 100 s.
    slow.delay = Duration::from_millis(50);
    slow.cancel_at = Some((3, cancel.clone()));
    let (other, other_seen) = Probe::new("other");
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        executor(&client).target_batch_bytes(Some(120)).run(
            RunRequest::new("SELECT time, level FROM log_entries")
                .processor(slow)
                .processor(other)
                .cancel(cancel),
        ),
    )
    .await
    .expect("cancellation was not prompt")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(outcome.stats.cancelled);
    assert!(outcome.reports.is_empty());
    assert!(outcome.stats.batches >= 4 && outcome.stats.batches < ROWS / 10, "{}", outcome.stats);
    assert!(outcome.stats.rows < ROWS);
    for seen in [&seen, &other_seen] {
        assert!(seen.aborted.load(Ordering::SeqCst));
        assert!(!seen.finished.load(Ordering::SeqCst));
    }
}

#[tokio::test]
async fn a_failing_processor_names_itself_and_the_batch_and_the_others_are_aborted() {
    let (_server, client) = start().await;
    let (mut failing, failing_seen) = Probe::new("fragile");
    failing.fail_at = Some(3);
    let (other, other_seen) = Probe::new("bystander");
    let err = run(
        &executor(&client).target_batch_bytes(Some(1200)),
        "SELECT time, level FROM log_entries",
        None,
        vec![Box::new(other), Box::new(failing)],
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    match &err {
        Error::Processor { processor, stage, batch, source } => {
            assert_eq!(processor, "fragile");
            assert_eq!(*stage, ProcessStage::Process);
            assert_eq!(*batch, Some(3));
            assert_eq!(source.message(), "deliberate failure");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("fragile") && text.contains("batch 3"), "{text}");
    assert!(!err.is_retryable());
    for seen in [&failing_seen, &other_seen] {
        assert!(seen.aborted.load(Ordering::SeqCst));
        assert!(!seen.finished.load(Ordering::SeqCst));
    }
}

#[tokio::test]
async fn a_query_error_aborts_the_processors() {
    let (_server, client) = start().await;
    let (probe, seen) = Probe::new("p");
    let err = run(
        &executor(&client),
        "SELECT nope FROM log_entries",
        None,
        vec![Box::new(probe)],
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidQuery { .. }), "{err:?}");
    assert!(seen.aborted.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estimate_arrives_beside_the_stream_and_progress_reaches_100_percent() {
    let (_server, client) = start().await;
    let range = Some(TimeRange::new(demo_end() - chrono::Duration::days(2), demo_end()).unwrap());
    let expected = server_count(&client, "SELECT COUNT(*) FROM log_entries", range).await;
    let events = Mutex::new(Vec::new());
    let record = |event: &ProgressEvent<'_>| {
        let text = match event {
            ProgressEvent::Started { .. } => "started".to_string(),
            ProgressEvent::Estimate(e) => format!("estimate {e}"),
            ProgressEvent::Batch { .. } => format!("batch {:?}", event.percent()),
            ProgressEvent::Finished(stats) => format!("finished {}", stats.rows),
            _ => "other".to_string(),
        };
        events.lock().unwrap().push(text);
    };
    let (mut slow, _) = Probe::new("slow");
    // Long enough (about 1 s) for the count to arrive before the end.
    slow.delay = Duration::from_millis(10);
    let outcome = executor(&client)
        .estimate(true)
        .target_batch_bytes(Some(expected as usize * 12 / 100 + 12))
        .run(
            RunRequest::new("SELECT time, level FROM log_entries;")
                .range(range)
                .processor(slow)
                .progress(&record),
        )
        .await
        .unwrap();
    assert_eq!(outcome.stats.estimate, RowEstimate::Exact(expected));
    let events = events.into_inner().unwrap();
    assert_eq!(events.first().map(String::as_str), Some("started"));
    assert_eq!(events.last().unwrap(), &format!("finished {expected}"));
    assert!(events.contains(&format!("estimate {expected} rows")), "{events:?}");
    assert_eq!(events[events.len() - 2], "batch Some(100.0)", "{events:?}");

    // An estimate that cannot arrive in time is a warning, never a failure.
    let outcome = executor(&client)
        .estimate(true)
        .estimate_timeout(Duration::ZERO)
        .run(RunRequest::new("SELECT level FROM log_entries").range(range))
        .await
        .unwrap();
    assert_eq!(outcome.stats.estimate, RowEstimate::Unknown);
    assert_eq!(outcome.stats.rows, expected);
}

#[tokio::test]
async fn the_executor_emits_its_metrics_through_the_facade() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // A current-thread runtime runs the worker tasks on this thread, under this recorder.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (_server, client) = start().await;
    let (probe, _) = Probe::new("probe");
    let outcome = run(
        &executor(&client).metric_labels(vec![("server".into(), "embedded".into())]),
        "SELECT level FROM log_entries",
        None,
        vec![Box::new(probe)],
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let text = handle.render();
    let rows_line =
        format!("flightline_rows_total{{server=\"embedded\",job=\"probe-job\"}} {ROWS}");
    assert!(text.contains(&rows_line), "{text}");
    let batches = format!(
        "flightline_batches_total{{server=\"embedded\",job=\"probe-job\"}} {}",
        outcome.stats.batches
    );
    assert!(text.contains(&batches), "{text}");
    assert!(
        text.contains(&format!(
            "flightline_batch_duration_seconds_count{{server=\"embedded\",job=\"probe-job\",processor=\"probe\"}} {}",
            outcome.stats.batches
        )),
        "{text}"
    );
    assert!(text.contains("flightline_query_duration_seconds"), "{text}");
    assert!(text.contains("flightline_time_to_first_batch_seconds"), "{text}");
}

#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (_server, client) = start().await;
        let executor = executor(&client);
        let future = executor.run(RunRequest::new("SELECT 1"));
        assert_send(&future);
        future.await.unwrap();
    });
}
