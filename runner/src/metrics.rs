//! The Prometheus endpoint and the metrics the runner itself emits.
//!
//! `flightline-core` emits batch, row and query metrics through the `metrics` facade and never
//! installs a recorder; the runner installs metrics-exporter-prometheus's recorder here, once
//! per process, with real histogram buckets for every `_seconds` histogram (the exporter
//! renders summaries otherwise) and a description and unit for every name. The runner's own
//! HTTP listener ([`crate::http`]) serves the rendered page beside the status page.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightline_core::metrics::{
    BATCH_DURATION_SECONDS, BATCHES_TOTAL, BYTES_TOTAL, CHECKPOINT_LAG_SECONDS, JOB_RUNS_TOTAL,
    JOBS_IN_FLIGHT, LABEL_JOB, LABEL_SERVER, LABEL_STATUS, METRIC_SAMPLES_DROPPED_TOTAL,
    PROCESSOR_ERRORS_TOTAL, QUERY_DURATION_SECONDS, ROWS_TOTAL, TIME_TO_FIRST_BATCH_SECONDS,
};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::RunnerError;
use crate::http::{AccessToken, Served};
use crate::live::LiveStatus;

/// Bucket bounds (seconds) of every `_seconds` histogram: batch work takes from well under a
/// millisecond (a count over a small batch) to tens of seconds (a slow sink or a big query).
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0,
];

/// How often the exporter drains histogram samples.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The installed exporter and the listener serving it.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    handle: PrometheusHandle,
    listen: SocketAddr,
}

/// What the listener serves besides `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    /// The jobs' status, for `/`, `/status.json` and `/readyz`.
    pub live: Option<Arc<LiveStatus>>,
    /// The token every route but the probes wants.
    pub token: Option<AccessToken>,
}

impl MetricsEndpoint {
    /// Installs the global recorder and serves `/metrics` on `listen` (port 0: a free port,
    /// reported by [`MetricsEndpoint::listen`]). Call from within the tokio runtime.
    pub fn install(listen: SocketAddr) -> Result<Self, RunnerError> {
        Self::serve(listen, Serving::default())
    }

    /// [`MetricsEndpoint::install`], also serving the status page of `serving.live`.
    pub fn serve(listen: SocketAddr, serving: Serving) -> Result<Self, RunnerError> {
        let fail = |message: String| RunnerError::Metrics { listen: listen.to_string(), message };
        let handle = recorder().map_err(fail)?;
        let socket = TcpListener::bind(listen).map_err(|e| fail(e.to_string()))?;
        let served = Served { metrics: handle.clone(), serving };
        let listen = crate::http::spawn(socket, served).map_err(|e| fail(e.to_string()))?;
        Ok(Self { handle, listen })
    }

    /// Where the listener is.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The page a scrape would get now.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// The process's one recorder, installed on first use with its upkeep task (which drains
/// histogram samples into buckets every [`UPKEEP_INTERVAL`], so memory stays flat however
/// long the worker runs).
fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS_SECONDS)
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    // A thread, not a task: the recorder outlives whichever runtime installed it.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| e.to_string())?;
    describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Every metric gets its help text and unit before its first sample.
fn describe() {
    describe_histogram!(
        BATCH_DURATION_SECONDS,
        Unit::Seconds,
        "Time one processor spent on one batch."
    );
    describe_histogram!(
        QUERY_DURATION_SECONDS,
        Unit::Seconds,
        "Time from the start of a query to the end of its last processor."
    );
    describe_histogram!(
        TIME_TO_FIRST_BATCH_SECONDS,
        Unit::Seconds,
        "Time from the start of a query to its first batch."
    );
    describe_counter!(ROWS_TOTAL, Unit::Count, "Rows received from the server.");
    describe_counter!(
        BYTES_TOTAL,
        Unit::Bytes,
        "Arrow bytes received from the server, as held in memory."
    );
    describe_counter!(BATCHES_TOTAL, Unit::Count, "Batches delivered to the processors.");
    describe_counter!(PROCESSOR_ERRORS_TOTAL, Unit::Count, "Processor failures.");
    describe_counter!(
        JOB_RUNS_TOTAL,
        Unit::Count,
        "Job runs (one per window for scheduled jobs) by outcome: ok, failed, retried, cancelled."
    );
    describe_gauge!(JOBS_IN_FLIGHT, Unit::Count, "Job runs in progress.");
    describe_counter!(
        METRIC_SAMPLES_DROPPED_TOTAL,
        Unit::Count,
        "Plugin metric samples dropped: the name is the host's, invalid, or taken with another type."
    );
    describe_gauge!(
        CHECKPOINT_LAG_SECONDS,
        Unit::Seconds,
        "How far a scheduled job's checkpoint is behind now."
    );
    crate::shared_state::metrics::describe();
}

/// How a run ended, as the `status` label of [`JOB_RUNS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every processor finished.
    Ok,
    /// Failed with a retryable error; another attempt follows.
    Retried,
    /// Failed for good.
    Failed,
    /// Stopped by a shutdown.
    Cancelled,
}

impl RunStatus {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Retried => "retried",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Counts a finished run of `job`.
pub fn record_run(job: &str, server: &str, status: RunStatus) {
    metrics::counter!(JOB_RUNS_TOTAL, LABEL_JOB => job.to_string(), LABEL_SERVER => server.to_string(), LABEL_STATUS => status.as_str()).increment(1);
}

/// Marks a run of `job` in progress until the guard drops.
pub fn in_flight(job: &str, server: &str) -> InFlight {
    let gauge = metrics::gauge!(JOBS_IN_FLIGHT, LABEL_JOB => job.to_string(), LABEL_SERVER => server.to_string());
    gauge.increment(1.0);
    InFlight(gauge)
}

/// See [`in_flight`].
pub struct InFlight(metrics::Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Sets how far `job`'s checkpoint is behind now.
pub fn checkpoint_lag(job: &str, server: &str, seconds: f64) {
    metrics::gauge!(CHECKPOINT_LAG_SECONDS, LABEL_JOB => job.to_string(), LABEL_SERVER => server.to_string()).set(seconds);
}

/// Fetches `/metrics` from `addr` as a scraper would (HTTP/1.0, so the body is not chunked).
pub async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: flightline\r\n\r\n").await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                Ok(body.to_string())
            }
            _ => Err(std::io::Error::other(format!(
                "unexpected answer: {}",
                text.lines().next().unwrap_or("")
            ))),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s"))?
}
