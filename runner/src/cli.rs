//! Command-line grammar of `flightline`.

use clap::{Parser, Subcommand};

use crate::commands;

/// Flightline: Flight SQL analytics jobs, an embedded demo server, and an SDK.
#[derive(Debug, Parser)]
#[command(name = "flightline", version, about)]
pub struct Cli {
    /// More log output (-v info, -vv debug). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format: text, or json (one object per line, for log collectors).
    #[arg(long, value_enum, default_value_t = crate::LogFormat::Text, global = true)]
    pub log_format: crate::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on the embedded default: start the demo server, run the sample jobs with
    /// progress, print a summary.
    Demo(commands::demo::DemoArgs),
    /// Run the jobs of a job file: concurrently, on their schedules, with checkpoints,
    /// retries and Prometheus metrics.
    Run(commands::run::RunArgs),
    /// Check a job file: parse it, build every processor, prepare every job's SQL on its
    /// server; run nothing.
    Check(commands::check::CheckArgs),
    /// Show where each scheduled job of a job file stands: checkpoint, lag, and with a shared
    /// state database the windows committed and the leases held now.
    Status(commands::status::StatusArgs),
    /// Run the embedded Flight SQL server with demo telemetry and user tables.
    Serve(commands::serve::ServeArgs),
    /// Run one SQL query and print or write the result.
    Query(commands::query::QueryArgs),
    /// Show a query's result schema and estimated row size, without running it.
    Schema(commands::schema::SchemaArgs),
    /// Check a query against the validation rules, without running it.
    Validate(commands::validate::ValidateArgs),
    /// Inspect plugin libraries (`flightline plugins inspect lib.so`).
    Plugins(commands::plugins::PluginsArgs),
}
