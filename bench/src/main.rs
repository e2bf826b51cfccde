//! `flightline-bench`: one line of the side-by-side benchmark per call, printed as one JSON
//! object. `bench/run.py` starts the servers, calls each line in its own process (so that its
//! CPU time and peak memory are the process's own) and writes the table and the chart.

use std::process::ExitCode;

use clap::Parser;
use flightline_bench::{Line, Measurement};
use flightline_core::error::Chain;

/// Runs one benchmark line and prints its measurement as JSON.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    line: Line,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match args.line.run().await {
        Ok(measurement) => {
            println!("{}", Measurement::to_json(&measurement));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("flightline-bench: {}", Chain(&err));
            ExitCode::FAILURE
        }
    }
}
