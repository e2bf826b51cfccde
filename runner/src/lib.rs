//! # flightline-runner
//!
//! The library behind the `flightline` command: argument types, the commands, and (later) the
//! job runner. The binary only parses arguments and calls into here.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connect;
pub mod error;
pub mod metrics;
pub mod orchestrate;
pub mod processors;
pub mod progress;
pub mod schedule;
pub mod shutdown;
pub mod sql_time;

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

/// Installs the log subscriber: `RUST_LOG` wins, else `-v` raises the default level.
pub fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn,flightline=info,flightline_runner=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        // Colour codes only for a person at a terminal, never in files or CI logs.
        LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
}
