//! The guide's `execute_large_query` + `process_error_logs`: stream a large result batch by
//! batch (never holding it whole), re-batched to a target size, with a row estimate running
//! beside the stream, progress while it runs, and statistics at the end. The error logs
//! (`level <= 2`) are counted per level and target by the built-in `count_by` processor.
//!
//! ```text
//! flightline serve --demo-rows 1000000 &
//! cargo run -p flightline-examples --example large_query -- --uri grpc://127.0.0.1:50051 --range 7d
//! ```
//!
//! `--uri` and `--token` default to `FLIGHTLINE_URI` and `FLIGHTLINE_TOKEN`. Ctrl-C cancels
//! the query and prints the partial statistics.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use flightline_core::TimeRange;
use flightline_core::error::Chain;
use flightline_core::exec::{
    CancellationToken, ProgressEvent, ProgressObserver, QueryExecutor, RunRequest,
};
use flightline_examples::ServerArgs;
use flightline_plugins::build_processor;

#[derive(Debug, Parser)]
struct Args {
    /// Server and token.
    #[command(flatten)]
    server: ServerArgs,
    /// The time range: the last `30m`, `2h`, `7d`...
    #[arg(long, default_value = "7d")]
    range: String,
    /// Target batch size in MiB handed to the processors (0: batches as the server sends them).
    #[arg(long, default_value_t = 8.0)]
    batch_mb: f64,
    /// Skip the `COUNT(*)` estimate (progress then shows rows and rows/s, no percentage).
    #[arg(long)]
    no_estimate: bool,
    /// Count rows at or below this level (1 fatal, 2 error, 3 warn, 4 info, 5 debug, 6 trace).
    #[arg(long, default_value_t = 2)]
    max_level: i32,
    /// The query.
    #[arg(default_value = "SELECT time, process_id, level, target, msg FROM log_entries")]
    sql: String,
}

/// Prints a progress line at most every quarter second, on stderr.
struct Progress {
    last: Mutex<Option<Instant>>,
}

impl ProgressObserver for Progress {
    fn on_event(&self, event: &ProgressEvent<'_>) {
        match event {
            ProgressEvent::Started { .. } => eprintln!("query started"),
            ProgressEvent::Estimate(estimate) => eprintln!("estimate: {estimate}"),
            ProgressEvent::Batch { batches, rows, bytes, .. } => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
                    return;
                }
                *last = Some(Instant::now());
                let done = event.percent().map(|p| format!("{p:5.1}% ")).unwrap_or_default();
                eprintln!(
                    "{done}{rows} rows in {batches} batches, {:.1} MiB, {:.0} rows/s",
                    *bytes as f64 / (1024.0 * 1024.0),
                    event.rows_per_second().unwrap_or(0.0)
                );
            }
            ProgressEvent::Finished(_) => eprintln!("query finished"),
            _ => {}
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.server.connect().await?;
    let range = TimeRange::parse_relative(&args.range)?;
    let target = (args.batch_mb > 0.0).then_some((args.batch_mb * 1024.0 * 1024.0) as usize);
    let executor = QueryExecutor::new(client)
        .job("large_query")
        .estimate(!args.no_estimate)
        .target_batch_bytes(target);
    let count_by = build_processor(
        "count_by",
        serde_json::json!({
            "column": "level",
            "threshold": args.max_level,
            "group_by": ["level", "target"],
        }),
    )?;

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling...");
            on_ctrl_c.cancel();
        }
    });

    println!("Running {} over {range}", args.sql);
    let progress = Progress { last: Mutex::new(None) };
    let outcome = executor
        .run(
            RunRequest::new(args.sql.clone())
                .range(Some(range))
                .processors(vec![count_by])
                .progress(&progress)
                .cancel(cancel),
        )
        .await?;

    println!("\n{}", outcome.stats);
    for (name, report) in &outcome.reports {
        println!("{name}:\n{report}");
    }
    if outcome.stats.cancelled {
        println!("cancelled: the figures above cover the part that ran");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A processor's failure carries its cause as the source.
            eprintln!("error: {:#}", Chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
