//! The executor's cost and memory, measured in one run against the embedded demo server.
//!
//! 1. Overhead: the executor with no processor against a bare `query_stream` drain of the same
//!    query (best of `--reps`, interleaved); prints both rates and their ratio.
//! 2. Memory: `count_by` (the guide's `process_error_logs`) with a deliberately slow processor
//!    beside it, at each size; prints time, rows/s and the process's peak RSS during the run
//!    (VmHWM, reset before each run through `/proc/self/clear_refs`). The server runs in this
//!    process too and streams lazily generated rows, so a flat peak means nothing buffers the
//!    result anywhere.
//!
//! ```text
//! cargo bench --profile dev -p flightline-plugins --bench executor          # 1M and 4M rows, ~2 min
//! cargo bench --profile dev -p flightline-plugins --bench executor -- --rows 10000000,40000000
//! # also: --overhead-rows N (default 1000000), --reps N (default 3)
//! ```
//!
//! Figures only: nothing here asserts a time.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use flightline_core::exec::{ExecStats, QueryExecutor, RunRequest};
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use flightline_core::{FlightSqlClient, TimeRange};
use flightline_plugins::build_processor;
use flightline_server::ServerBuilder;
use futures::TryStreamExt;

const SQL: &str = "SELECT time, level, target, msg FROM log_entries";

/// Sleeps on every batch: the slowest processor sets the pace.
struct Slow(Duration);

#[async_trait]
impl BatchProcessor for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn open(&mut self, _: &SchemaRef, _: &ProcessContext) -> Result<(), ProcessError> {
        Ok(())
    }
    async fn process(&mut self, _: &RecordBatch, _: &ProcessContext) -> Result<(), ProcessError> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
    async fn finish(&mut self, _: &ProcessContext) -> Result<Report, ProcessError> {
        Ok(Report::default())
    }
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux 4.0+); false where that is not allowed.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The comma-separated numbers after `flag`, or `default`.
fn numbers(flag: &str, default: &[u64]) -> Vec<u64> {
    let args: Vec<String> = std::env::args().collect();
    let given = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    given
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

async fn server(rows: u64) -> (flightline_server::RunningServer, FlightSqlClient) {
    let server = ServerBuilder::new()
        .demo_rows(rows)
        .spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("start the embedded server");
    let client = FlightSqlClient::builder(server.uri()).connect().await.expect("connect");
    (server, client)
}

async fn bare_drain(client: &FlightSqlClient, range: TimeRange) -> (u64, Duration) {
    let started = Instant::now();
    let mut stream = client.query_stream(SQL, Some(range)).await.expect("query");
    let mut rows = 0;
    while let Some(batch) = stream.try_next().await.expect("batch") {
        rows += batch.num_rows() as u64;
    }
    (rows, started.elapsed())
}

async fn executor_drain(executor: &QueryExecutor, range: TimeRange) -> (u64, Duration) {
    let started = Instant::now();
    let outcome = executor.run(RunRequest::new(SQL).range(Some(range))).await.expect("run");
    (outcome.stats.rows, started.elapsed())
}

async fn overhead(rows: u64, reps: u64) {
    let (_server, client) = server(rows).await;
    let range = TimeRange::parse_relative("30d").expect("range");
    let executor = QueryExecutor::new(client.clone());
    let (mut bare, mut exec) = (Duration::MAX, Duration::MAX);
    for _ in 0..reps {
        let (n, t) = bare_drain(&client, range).await;
        assert_eq!(n, rows, "the bare drain lost rows");
        bare = bare.min(t);
        let (n, t) = executor_drain(&executor, range).await;
        assert_eq!(n, rows, "the executor lost rows");
        exec = exec.min(t);
    }
    let rate = |t: Duration| rows as f64 / t.as_secs_f64();
    println!("overhead, {rows} rows of `{SQL}` (best of {reps}, interleaved):");
    println!(
        "  bare query_stream drain : {:>8.3} s  {:>10.0} rows/s",
        bare.as_secs_f64(),
        rate(bare)
    );
    println!(
        "  executor, no processor  : {:>8.3} s  {:>10.0} rows/s",
        exec.as_secs_f64(),
        rate(exec)
    );
    println!("  ratio executor / bare   : {:.3}", exec.as_secs_f64() / bare.as_secs_f64());
}

async fn memory(rows: u64) -> (ExecStats, f64, f64) {
    let (_server, client) = server(rows).await;
    let range = TimeRange::parse_relative("30d").expect("range");
    // No estimate: its COUNT(*) would make the lazy demo server generate every row twice.
    let executor = QueryExecutor::new(client).job("bench").target_batch_bytes(Some(4 << 20));
    let count_by = build_processor("count_by", serde_json::json!({})).expect("count_by");
    let slow: Box<dyn BatchProcessor> = Box::new(Slow(Duration::from_millis(2)));
    let before = status_mib("VmRSS:");
    let reset = reset_peak();
    let outcome = executor
        .run(RunRequest::new(SQL).range(Some(range)).processors(vec![count_by, slow]))
        .await
        .expect("run");
    let peak = if reset { status_mib("VmHWM:") } else { f64::NAN };
    (outcome.stats, before, peak)
}

#[tokio::main]
async fn main() {
    let sizes = numbers("--rows", &[1_000_000, 4_000_000]);
    let overhead_rows = numbers("--overhead-rows", &[1_000_000]);
    let reps = numbers("--reps", &[3])[0].max(1);
    overhead(overhead_rows[0], reps).await;
    println!("\ncount_by + a processor sleeping 2 ms per 4 MiB batch (peak RSS of this process):");
    let mut peaks = Vec::new();
    for rows in &sizes {
        let (stats, before, peak) = memory(*rows).await;
        assert_eq!(stats.rows, *rows, "rows lost");
        println!(
            "  {rows:>10} rows: {:>7.2} s, {:>10.0} rows/s, {:>7.1} MiB received; RSS before {before:.0} MiB, peak {peak:.0} MiB",
            stats.total.as_secs_f64(),
            stats.rows_per_second(),
            stats.bytes as f64 / (1024.0 * 1024.0),
        );
        for p in &stats.processors {
            println!("      {p}");
        }
        peaks.push((*rows, peak));
    }
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last())
        && peaks.len() > 1
    {
        println!(
            "  result grew {:.1}x, peak RSS {:.2}x",
            last.0 as f64 / first.0 as f64,
            last.1 / first.1
        );
    }
}
