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

fn main() -> ExitCode {
    // As the `flightline` binary does, so that every line (the bare one too: it is the floor)
    // runs on the same malloc settings as what users run.
    flightline_core::malloc::keep_freed_memory();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("flightline-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
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
