//! The lines of the benchmark and what each one prints.

use std::time::Instant;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::{BenchError, Job, drain, loopback};

/// The server and the query a line reads.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The Flight SQL server.
    #[arg(long, default_value = "grpc://127.0.0.1:50051")]
    pub uri: String,
    /// The query, read to its end.
    #[arg(
        long,
        default_value = "SELECT time, level, target, msg FROM log_entries WHERE level <= 3"
    )]
    pub sql: String,
}

/// One way of reading the query, or the loopback ceiling.
#[derive(Debug, Clone, Subcommand)]
pub enum Line {
    /// arrow-flight's `FlightSqlServiceClient`: GetFlightInfo, then DoGet of each endpoint's
    /// ticket on the same channel, rows counted. The floor of every client.
    Flight(Target),
    /// The SDK's `FlightSqlClient::query_stream`, drained.
    Sdk(Target),
    /// The `QueryExecutor` feeding the guide's job to a processor, `--copies` runs at once.
    Job(Job),
    /// A plain TCP copy over 127.0.0.1: the bytes/s no client on this machine can exceed.
    Loopback {
        /// Bytes copied.
        #[arg(long, default_value_t = 4 << 30)]
        bytes: u64,
    },
}

/// What one line read, and how long it took from connecting to the last row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurement {
    /// Rows read (for the loopback line, 0).
    pub rows: u64,
    /// Bytes read: the Arrow arrays' memory for query lines, bytes copied for the loopback.
    pub bytes: u64,
    /// Record batches read (for the job line, those the processors saw).
    pub batches: u64,
    /// Wall-clock seconds from connecting to the end of the result.
    pub seconds: f64,
    /// The processors' reports, as JSON, so that the caller can check the answers agree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<serde_json::Value>,
}

impl Measurement {
    /// The measurement as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl Line {
    /// Runs the line once.
    pub async fn run(&self) -> Result<Measurement, BenchError> {
        if let Line::Job(job) = self {
            job.load_plugin()?;
        }
        let started = Instant::now();
        let mut measured = match self {
            Line::Flight(target) => drain::flight(target).await?,
            Line::Sdk(target) => drain::sdk(target).await?,
            Line::Job(job) => job.run().await?,
            Line::Loopback { bytes } => loopback::copy(*bytes).await?,
        };
        measured.seconds = started.elapsed().as_secs_f64();
        Ok(measured)
    }
}
