//! # flightline-runner
//!
//! The library behind the `flightline` command; the binary only parses arguments and calls into
//! here. A job file's data path, in the order a run takes it:
//!
//! 1. [`config`]: the TOML job file, parsed and checked (file, line and key on every error).
//! 2. [`orchestrate`]: the jobs run concurrently under one limit, each a task that asks
//!    [`schedule`] for its next window and [`checkpoint`] for where it stopped.
//! 3. [`connect`]: a client per server, from the same settings the CLI flags give; [`sql_time`]
//!    renders `{begin}` / `{end}` for servers that ignore the time-range headers.
//! 4. [`validators`]: a job's validator entries (built-in rules and validator plugins), checked
//!    before each run's query; [`processors`]: its processor entries become `BatchProcessor`s
//!    (built-ins and dynamic plugins), fed by `flightline_core`'s `QueryExecutor`.
//! 5. [`summary`]: what each job did, counted while it runs; [`metrics`] and [`progress`]
//!    show the run to Prometheus and to a person (bars, then the summary table).
//!
//! [`cli`] and [`commands`] are the command line (one module per subcommand); [`error`] is the
//! crate's one error type.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connect;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod orchestrate;
pub mod processors;
pub mod progress;
pub mod schedule;
pub mod shared_state;
pub mod shutdown;
pub mod sql_time;
pub mod summary;
pub mod terminal;
pub mod validators;

pub use error::{ConfigIssue, RunnerError};

/// How log lines are written: `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the log subscriber: `RUST_LOG` wins, else `-v` raises the default level. `audit`
/// keeps the server's audit lines (`flightline::audit`) at the default level.
pub fn init_tracing(verbose: u8, format: LogFormat, audit: bool) {
    let level = match verbose {
        0 => "warn,flightline=info,flightline_runner=info",
        1 => "info",
        _ => "debug",
    };
    let default = if audit { level.to_string() } else { format!("{level},flightline::audit=warn") };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(terminal::LogWriter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        // Colour codes only for a person at a terminal, never in files or CI logs.
        LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
}
