//! `flightline demo`: the main job on the embedded default.
//!
//! Starts the demo Flight SQL server in-process, runs the sample jobs against it through the
//! SDK client (streaming, with progress), and prints a summary. Nothing to install or configure.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flightline_core::TimeRange;
use flightline_core::client::FlightSqlClient;
use flightline_server::ServerBuilder;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::schema::print_stdout;
use crate::RunnerError;

/// Arguments of `flightline demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Rows in each demo table (`log_entries`, `measures`).
    #[arg(long, default_value_t = 1_000_000)]
    pub demo_rows: u64,
}

/// A sample job: one streaming query over a time range.
struct Job {
    name: &'static str,
    sql: &'static str,
    last: &'static str,
}

const JOBS: [Job; 4] = [
    Job {
        name: "errors by level",
        sql: "SELECT level, count(*) AS entries FROM log_entries GROUP BY level ORDER BY level",
        last: "7d",
    },
    Job {
        name: "noisiest error targets",
        sql: "SELECT target, count(*) AS errors FROM log_entries WHERE level <= 2 \
              GROUP BY target ORDER BY errors DESC LIMIT 5",
        last: "7d",
    },
    Job {
        name: "latency per hour",
        sql: "SELECT date_trunc('hour', time) AS hour, avg(value) AS avg_ms, max(value) AS max_ms \
              FROM measures WHERE name = 'request_latency' GROUP BY 1 ORDER BY 1",
        last: "1d",
    },
    Job {
        name: "stream all logs of a day",
        sql: "SELECT time, process_id, target, level, msg FROM log_entries",
        last: "1d",
    },
];

/// What one job did.
struct Outcome {
    name: &'static str,
    rows: usize,
    batches: usize,
    bytes: usize,
    elapsed: Duration,
}

/// Runs the demo and prints a summary; exit status 1 if any job failed.
pub async fn run(args: DemoArgs) -> Result<ExitCode, RunnerError> {
    let started = Instant::now();
    let server =
        ServerBuilder::new().demo_rows(args.demo_rows).spawn(([127, 0, 0, 1], 0).into()).await?;
    eprintln!(
        "flightline: demo server on {} with {} rows per table ({:.1}s)",
        server.uri(),
        args.demo_rows,
        started.elapsed().as_secs_f64()
    );
    let client = FlightSqlClient::builder(server.uri()).connect().await?;
    let mut outcomes = Vec::new();
    let mut failed = 0;
    for job in &JOBS {
        match run_job(&client, job).await {
            Ok(o) => outcomes.push(o),
            // `flightline demo | head`: main ends quietly; the server stops when dropped.
            Err(e) if e.is_broken_pipe() => return Err(e),
            Err(e) => {
                failed += 1;
                eprintln!("flightline: job {:?} failed: {e}", job.name);
            }
        }
    }
    print_summary(&outcomes, failed)?;
    server.shutdown().await?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_job(client: &FlightSqlClient, job: &Job) -> Result<Outcome, RunnerError> {
    let range = TimeRange::parse_relative(job.last)?;
    let progress = progress_bar(job.name);
    let started = Instant::now();
    let mut stream = client.query_stream(job.sql, Some(range)).await?;
    let (mut rows, mut batches, mut bytes) = (0, 0, 0);
    let mut preview = None;
    while let Some(batch) = stream.try_next().await? {
        rows += batch.num_rows();
        batches += 1;
        bytes += batch_bytes(&batch);
        progress.set_message(format!("{} rows, {} batches", rows, batches));
        if preview.is_none() && batch.num_rows() > 0 {
            preview = Some(batch.slice(0, batch.num_rows().min(6)));
        }
    }
    progress.finish_and_clear();
    let mut text = format!("\n# {} (last {})", job.name, job.last);
    if let Some(p) = preview {
        match arrow::util::pretty::pretty_format_batches(&[p]) {
            Ok(table) => text.push_str(&format!("\n{table}")),
            Err(e) => text.push_str(&format!("\n(cannot print a preview: {e})")),
        }
    }
    print_stdout(&text)?;
    Ok(Outcome { name: job.name, rows, batches, bytes, elapsed: started.elapsed() })
}

/// Bytes the batch's values take (its slice of shared IPC buffers, not the whole buffers).
fn batch_bytes(batch: &arrow::array::RecordBatch) -> usize {
    batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0)).sum()
}

fn progress_bar(name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_prefix(name.to_string());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn print_summary(outcomes: &[Outcome], failed: usize) -> Result<(), RunnerError> {
    let mut lines = vec![
        "\n# summary".to_string(),
        format!(
            "{:<26} {:>10} {:>8} {:>10} {:>9} {:>12}",
            "job", "rows", "batches", "MiB", "seconds", "rows/s"
        ),
    ];
    for o in outcomes {
        let secs = o.elapsed.as_secs_f64();
        lines.push(format!(
            "{:<26} {:>10} {:>8} {:>10.1} {:>9.3} {:>12.0}",
            o.name,
            o.rows,
            o.batches,
            o.bytes as f64 / 1_048_576.0,
            secs,
            o.rows as f64 / secs.max(1e-9)
        ));
    }
    lines.push(format!("{} jobs succeeded, {failed} failed", outcomes.len()));
    print_stdout(&lines.join("\n"))
}
