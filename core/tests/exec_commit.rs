//! The end of a run against the real embedded server: the two-phase commit (every `finish`
//! before any `commit`, no `commit` unless all finished), `abort` after what does not commit,
//! empty results and zero-row batches, a dropped run leaving no worker behind, and processors
//! that block running on threads of their own.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use flightline_core::exec::{CancellationToken, ExecOutcome, QueryExecutor, RunRequest};
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, ProcessStage, Report, async_trait,
};
use flightline_core::{Error, FlightSqlClient};
use flightline_server::RunningServer;

const SQL: &str = "SELECT time, level, target FROM log_entries";
const PATIENCE: Duration = Duration::from_secs(60);
/// Rows, and the batch size in bytes, at which a processor's queue fills while it works: the
/// blocking-thread tests need the feed to wait on it, as real results make it.
const REAL_ROWS: u64 = 300_000;
const SMALL_BATCH: usize = 64 * 1024;

/// Every call of every ledger, in the order they happened: `"name:call"`.
type Journal = Arc<Mutex<Vec<String>>>;

/// A processor that writes each call into the journal and fails or hangs where told.
struct Ledger {
    name: &'static str,
    journal: Journal,
    fail_finish: bool,
    fail_commit: bool,
    /// `process` never returns (a plugin stuck on the network).
    hang: bool,
    /// Cancelled by the first `process`.
    cancel: Option<CancellationToken>,
    /// Says its calls block: the executor gives it a thread of its own.
    blocking: bool,
    /// The call (`process` or `finish`) that blocks its thread until a message comes (or the
    /// sender is gone), each time.
    gate: Option<(&'static str, Mutex<mpsc::Receiver<()>>)>,
    /// Each `process` also awaits a runtime timer.
    nap: bool,
    /// Where each `process` ran: the thread's name, and whether a runtime was at hand.
    threads: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Ledger {
    fn new(name: &'static str, journal: &Journal) -> Self {
        Self {
            name,
            journal: journal.clone(),
            fail_finish: false,
            fail_commit: false,
            hang: false,
            cancel: None,
            blocking: false,
            gate: None,
            nap: false,
            threads: Arc::default(),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }

    fn note(&self, call: &str) {
        self.journal.lock().unwrap().push(format!("{}:{call}", self.name));
    }

    /// Waits at the gate if `call` is the gated one.
    fn pass(&self, call: &str) {
        if let Some((gated, gate)) = &self.gate
            && *gated == call
        {
            let _ = gate.lock().unwrap().recv();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.note("drop");
    }
}

#[async_trait]
impl BatchProcessor for Ledger {
    fn name(&self) -> &str {
        self.name
    }

    async fn open(&mut self, _: &SchemaRef, _: &ProcessContext) -> Result<(), ProcessError> {
        self.note("open");
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _: &ProcessContext,
    ) -> Result<(), ProcessError> {
        // One entry per run of batches keeps the journal short; an empty batch is always noted.
        if batch.num_rows() == 0 {
            self.note("empty batch");
        }
        let journal = self.journal.lock().unwrap().clone();
        if journal.last().map(String::as_str) != Some(&format!("{}:process", self.name)) {
            self.note("process");
        }
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        self.threads.lock().unwrap().push((thread, runtime));
        self.pass("process");
        if self.nap {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn finish(&mut self, _: &ProcessContext) -> Result<Report, ProcessError> {
        self.note("finish");
        self.pass("finish");
        if self.fail_finish {
            return Err(ProcessError::new("finish refused on purpose"));
        }
        Ok(Report::default())
    }

    async fn commit(&mut self) -> Result<(), ProcessError> {
        self.note("commit");
        if self.fail_commit {
            return Err(ProcessError::new("commit refused on purpose"));
        }
        Ok(())
    }

    async fn abort(&mut self) {
        self.note("abort");
    }

    fn blocking(&self) -> bool {
        self.blocking
    }
}

async fn start() -> (RunningServer, FlightSqlClient) {
    support::demo_server(5_000, 3).await
}

async fn run(
    client: &FlightSqlClient,
    sql: &str,
    processors: Vec<Ledger>,
) -> flightline_core::Result<ExecOutcome> {
    let processors = processors.into_iter().map(|p| Box::new(p) as Box<dyn BatchProcessor>);
    let request = RunRequest::new(sql).processors(processors.collect());
    let executor = QueryExecutor::new(client.clone());
    let run = executor.run(request);
    tokio::time::timeout(PATIENCE, run).await.expect("the run did not end in time")
}

/// The calls `name` got, in order, without the batches in between.
fn calls(journal: &Journal, name: &str) -> Vec<String> {
    let prefix = format!("{name}:");
    journal
        .lock()
        .unwrap()
        .iter()
        .filter_map(|entry| entry.strip_prefix(&prefix))
        .filter(|call| *call != "process")
        .map(str::to_string)
        .collect()
}

fn position(journal: &Journal, entry: &str) -> usize {
    let journal = journal.lock().unwrap();
    journal.iter().position(|e| e == entry).unwrap_or_else(|| panic!("no {entry} in {journal:?}"))
}

#[tokio::test]
async fn every_processor_finishes_before_any_commits() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let processors = vec![Ledger::new("a", &journal), Ledger::new("b", &journal)];
    let outcome = run(&client, SQL, processors).await.unwrap();
    assert_eq!(outcome.reports.len(), 2);
    for name in ["a", "b"] {
        assert_eq!(calls(&journal, name), ["open", "finish", "commit", "drop"], "{journal:?}");
    }
    let last_finish = position(&journal, "a:finish").max(position(&journal, "b:finish"));
    assert!(last_finish < position(&journal, "a:commit"), "{journal:?}");
    assert!(position(&journal, "a:commit") < position(&journal, "b:commit"), "given order");
}

#[tokio::test]
async fn a_failed_finish_commits_nothing_and_aborts_everyone() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let failing = Ledger::new("failing", &journal).with(|l| l.fail_finish = true);
    let processors = vec![Ledger::new("sink", &journal), failing];
    let err = run(&client, SQL, processors).await.unwrap_err();
    assert!(
        matches!(&err, Error::Processor { processor, stage: ProcessStage::Finish, .. }
            if processor == "failing"),
        "{err:?}"
    );
    assert_eq!(calls(&journal, "sink"), ["open", "finish", "abort", "drop"]);
    assert_eq!(calls(&journal, "failing"), ["open", "finish", "abort", "drop"]);
}

#[tokio::test]
async fn a_failed_commit_aborts_those_after_it() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let processors = vec![
        Ledger::new("first", &journal),
        Ledger::new("second", &journal).with(|l| l.fail_commit = true),
        Ledger::new("third", &journal),
    ];
    let err = run(&client, SQL, processors).await.unwrap_err();
    assert!(
        matches!(&err, Error::Processor { processor, stage: ProcessStage::Commit, .. }
            if processor == "second"),
        "{err:?}"
    );
    let text = flightline_core::error::Chain(&err).to_string();
    assert!(text.contains("commit refused on purpose"), "{text}");
    assert_eq!(calls(&journal, "first"), ["open", "finish", "commit", "drop"]);
    assert_eq!(calls(&journal, "second"), ["open", "finish", "commit", "abort", "drop"]);
    assert_eq!(calls(&journal, "third"), ["open", "finish", "abort", "drop"]);
}

#[tokio::test]
async fn a_cancelled_run_commits_nothing() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let cancel = CancellationToken::new();
    let canceller = Ledger::new("canceller", &journal).with(|l| l.cancel = Some(cancel.clone()));
    let processors: Vec<Box<dyn BatchProcessor>> =
        vec![Box::new(canceller), Box::new(Ledger::new("other", &journal))];
    let request = RunRequest::new(SQL).processors(processors).cancel(cancel);
    let outcome = QueryExecutor::new(client.clone())
        .target_batch_bytes(Some(1024))
        .run(request)
        .await
        .unwrap();
    assert!(outcome.stats.cancelled);
    assert!(outcome.reports.is_empty());
    let journal_text = format!("{:?}", journal.lock().unwrap());
    assert!(!journal_text.contains("commit"), "{journal_text}");
    assert_eq!(calls(&journal, "other").last().map(String::as_str), Some("drop"));
    assert!(calls(&journal, "other").contains(&"abort".to_string()), "{journal_text}");
}

#[tokio::test]
async fn an_empty_result_opens_finishes_and_commits_without_any_batch() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let outcome = run(
        &client,
        "SELECT time, level FROM log_entries WHERE level > 1000",
        vec![Ledger::new("empty", &journal)],
    )
    .await
    .unwrap();
    assert_eq!(outcome.stats.rows, 0);
    assert_eq!(outcome.stats.batches, 0);
    // No `process` and no `empty batch`: zero-row batches never reach a processor.
    let all: Vec<String> = journal.lock().unwrap().clone();
    assert_eq!(all, ["empty:open", "empty:finish", "empty:commit", "empty:drop"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_drops_its_workers_and_their_processors() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let stuck = Ledger::new("stuck", &journal).with(|l| l.hang = true);
    let processors: Vec<Box<dyn BatchProcessor>> = vec![Box::new(stuck)];
    let executor = QueryExecutor::new(client.clone());
    let mut run = Box::pin(executor.run(RunRequest::new(SQL).processors(processors)));
    // Poll the run until the processor is inside its never-ending `process`, then drop it.
    let waited = Instant::now();
    while !journal.lock().unwrap().iter().any(|e| e == "stuck:process") {
        assert!(waited.elapsed() < PATIENCE, "the processor never got a batch");
        let _ = tokio::time::timeout(Duration::from_millis(20), &mut run).await;
    }
    drop(run);
    // The processor lived on a worker task: it is dropped only once that task is gone.
    let dropped = Instant::now();
    while !journal.lock().unwrap().iter().any(|e| e == "stuck:drop") {
        assert!(dropped.elapsed() < Duration::from_secs(5), "a worker outlived its run");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Whether `abort` ran depends on which comes first on the worker's thread, the
    // cancellation or the task's abort: best effort, never relied on.
    let stuck = calls(&journal, "stuck");
    assert!(stuck == ["open", "drop"] || stuck == ["open", "abort", "drop"], "{stuck:?}");
}

#[tokio::test]
async fn a_blocking_processor_runs_on_its_own_thread_in_the_runtimes_context() {
    let (_server, client) = support::demo_server(REAL_ROWS, 3).await;
    let journal = Journal::default();
    let blocking = Ledger::new("blocking", &journal).with(|l| {
        l.blocking = true;
        l.nap = true; // a runtime timer, awaited on the thread, on a current-thread runtime
    });
    let threads = blocking.threads.clone();
    let other = Ledger::new("other", &journal);
    let other_threads = other.threads.clone();
    let processors: Vec<Box<dyn BatchProcessor>> = vec![Box::new(blocking), Box::new(other)];
    let request = RunRequest::new(SQL).processors(processors);
    let executor = QueryExecutor::new(client.clone()).target_batch_bytes(Some(SMALL_BATCH));
    let run = executor.run(request);
    let outcome = tokio::time::timeout(PATIENCE, run).await.expect("the run did not end").unwrap();
    assert_eq!(outcome.stats.rows, REAL_ROWS);
    // The contract holds across the thread: both finish before either commits.
    let last_finish = position(&journal, "blocking:finish").max(position(&journal, "other:finish"));
    let first_commit =
        position(&journal, "blocking:commit").min(position(&journal, "other:commit"));
    assert!(last_finish < first_commit, "{:?}", journal.lock().unwrap());
    assert_eq!(calls(&journal, "blocking"), ["open", "finish", "commit", "drop"]);
    let threads = threads.lock().unwrap().clone();
    assert!(threads.len() > 10, "{} batches: too few to show a hand-off", threads.len());
    assert!(threads.iter().all(|t| *t == ("processor blocking".to_string(), true)), "{threads:?}");
    let other_threads = other_threads.lock().unwrap().clone();
    assert_eq!(other_threads.len(), threads.len());
    assert!(other_threads.iter().all(|(name, _)| name != "processor other"), "{other_threads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_leaves_a_blocking_processor_stuck_in_a_call_to_its_thread() {
    let (journal, rows) = cancel_while_stuck_in("process").await;
    // Cancelled while the feed waited on the stuck processor's full queue.
    assert!(rows < REAL_ROWS, "{rows}");
    assert_eq!(calls(&journal, "stuck"), ["open", "abort", "drop"]);
}

/// A `finish` that returns after the run gave up on it must still be aborted: nothing will
/// commit what it prepared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_processor_that_finishes_after_the_run_gave_up_on_it_is_aborted() {
    let (journal, rows) = cancel_while_stuck_in("finish").await;
    assert_eq!(rows, REAL_ROWS);
    assert_eq!(calls(&journal, "stuck"), ["open", "finish", "abort", "drop"]);
}

/// Runs a blocking processor whose `call` blocks its thread, cancels the run once the call is
/// reached, checks that the run ends without it, then lets the call return and waits for the
/// processor's drop. The journal it returns tells what the thread did after; the rows, how far
/// the stream got.
async fn cancel_while_stuck_in(call: &'static str) -> (Journal, u64) {
    let (_server, client) = support::demo_server(REAL_ROWS, 3).await;
    let journal = Journal::default();
    let (release, gate) = mpsc::channel();
    let stuck = Ledger::new("stuck", &journal).with(|l| {
        l.blocking = true;
        l.gate = Some((call, Mutex::new(gate)));
    });
    let cancel = CancellationToken::new();
    let request = RunRequest::new(SQL).processors(vec![Box::new(stuck)]).cancel(cancel.clone());
    let executor = QueryExecutor::new(client.clone()).target_batch_bytes(Some(SMALL_BATCH));
    let reached = format!("stuck:{call}");
    let watcher = {
        let journal = journal.clone();
        tokio::spawn(async move {
            while !journal.lock().unwrap().contains(&reached) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cancel.cancel();
        })
    };
    let outcome = tokio::time::timeout(PATIENCE, executor.run(request))
        .await
        .expect("the cancelled run waited for the blocked call")
        .unwrap();
    watcher.await.unwrap();
    assert!(outcome.stats.cancelled);
    assert!(outcome.reports.is_empty());
    // Still in its call: not aborted, not dropped, until the call returns.
    let before = calls(&journal, "stuck");
    assert!(!before.iter().any(|c| c == "abort" || c == "drop"), "{before:?}");
    drop(release);
    let released = Instant::now();
    while calls(&journal, "stuck").last().map(String::as_str) != Some("drop") {
        assert!(released.elapsed() < PATIENCE, "{:?}", journal.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (journal, outcome.stats.rows)
}

#[tokio::test]
async fn a_blocking_processor_with_a_nul_in_its_name_still_gets_its_thread() {
    let (_server, client) = start().await;
    let journal = Journal::default();
    let odd = Ledger::new("odd\0name", &journal).with(|l| l.blocking = true);
    let threads = odd.threads.clone();
    let outcome = run(&client, SQL, vec![odd]).await.unwrap();
    assert_eq!(outcome.stats.rows, 5_000);
    let threads = threads.lock().unwrap().clone();
    assert!(threads.iter().all(|(name, _)| name == "processor oddname"), "{threads:?}");
}
