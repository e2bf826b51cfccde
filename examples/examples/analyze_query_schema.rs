//! The guide's `analyze_query_schema(client, sql)`: prepare a query (without running it), list
//! its result columns with their types, nullability and estimated sizes, and plan memory from
//! the estimated row size.
//!
//! ```text
//! flightline serve --demo-rows 10000 &
//! cargo run -p flightline-examples --example analyze_query_schema -- --uri grpc://127.0.0.1:50051
//! cargo run -p flightline-examples --example analyze_query_schema -- --token s3cret "SELECT time, msg FROM log_entries"
//! ```
//!
//! `--uri` and `--token` default to `FLIGHTLINE_URI` and `FLIGHTLINE_TOKEN`.
//! `SchemaAnalysis` is `serde::Serialize`; `flightline schema --json` prints it as JSON.

use std::process::ExitCode;

use clap::Parser;
use flightline_core::schema::{SchemaAnalysis, SizeOptions, format_bytes};
use flightline_examples::ServerArgs;

#[derive(Debug, Parser)]
struct Args {
    /// Server and token.
    #[command(flatten)]
    server: ServerArgs,
    /// Average string length to assume, in bytes.
    #[arg(long, default_value_t = SizeOptions::default().string_bytes)]
    string_bytes: usize,
    /// Rows to plan memory for.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// The query to analyse.
    #[arg(default_value = "SELECT * FROM log_entries")]
    sql: String,
}

async fn run(args: Args) -> flightline_core::Result<()> {
    let client = args.server.connect().await?;
    // `prepare` asks the server for the result schema; the query itself never runs.
    let prepared = client.prepare(&args.sql).await?;
    let options = SizeOptions { string_bytes: args.string_bytes, ..SizeOptions::default() };
    let analysis = SchemaAnalysis::from_prepared(&prepared, &options);

    println!("Query result schema of: {}\n", args.sql);
    println!("{analysis}");
    let total = analysis.estimated_bytes_for_rows(args.rows);
    println!(
        "\n{} rows ≈ {} MiB in memory if collected at once",
        args.rows,
        format_bytes((total / (1024.0 * 1024.0)).round())
    );
    if let Some(column) =
        analysis.columns.iter().max_by(|a, b| a.estimated_bytes.total_cmp(&b.estimated_bytes))
    {
        println!(
            "widest column: {} ({} bytes per row, {:.0}% of the row)",
            column.name,
            format_bytes(column.estimated_bytes),
            100.0 * column.estimated_bytes / analysis.estimated_row_bytes.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
