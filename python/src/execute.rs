//! `Client.execute`: one run of the streaming executor, its statistics and reports as dicts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flightline_core::exec::{ExecStats, ProgressEvent, QueryExecutor, RunRequest};
use flightline_core::process::BatchProcessor;
use flightline_core::{FlightSqlClient, QueryOptions, TimeRange};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

use crate::convert::to_python;
use crate::errors::to_py;
use crate::runtime::wait;

/// How often the progress callback hears of new batches, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What to run.
pub struct Run<'a> {
    pub sql: &'a str,
    pub range: Option<TimeRange>,
    pub processors: Vec<Box<dyn BatchProcessor>>,
    pub progress: Option<Py<PyAny>>,
    pub estimate: bool,
    pub target_batch_bytes: Option<usize>,
    pub options: QueryOptions,
}

/// Runs `run` to the end (or to Ctrl-C, which cancels it and aborts every processor) and
/// returns `{"stats": {...}, "reports": [{"processor": name, "counts": ..., ...}]}`.
pub fn execute<'py>(
    py: Python<'py>,
    client: FlightSqlClient,
    run: Run<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let executor = QueryExecutor::new(client)
        .job("python")
        .estimate(run.estimate)
        .target_batch_bytes(run.target_batch_bytes)
        .query_options(run.options);
    let observer = Progress::new(run.progress);
    let request =
        RunRequest::new(run.sql).range(run.range).processors(run.processors).progress(&observer);
    let outcome = wait(py, executor.run(request))?.map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("stats", to_python(py, &StatsOut::from(&outcome.stats))?)?;
    let reports = outcome
        .reports
        .iter()
        .map(|(name, report)| {
            let dict = to_python(py, report)?.cast_into::<PyDict>()?;
            dict.set_item("processor", name)?;
            Ok(dict)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("reports", reports)?;
    Ok(out.into_any())
}

/// The statistics with times in seconds, the unit Python code expects.
#[derive(Serialize)]
struct StatsOut {
    rows: u64,
    batches: u64,
    bytes: u64,
    seconds: f64,
    rows_per_second: f64,
    time_to_first_batch: Option<f64>,
    estimated_rows: Option<u64>,
    cancelled: bool,
    processors: Vec<ProcessorOut>,
}

#[derive(Serialize)]
struct ProcessorOut {
    name: String,
    batches: u64,
    mean: f64,
    p50: f64,
    p95: f64,
    max: f64,
}

impl From<&ExecStats> for StatsOut {
    fn from(stats: &ExecStats) -> Self {
        Self {
            rows: stats.rows,
            batches: stats.batches,
            bytes: stats.bytes,
            seconds: stats.total.as_secs_f64(),
            rows_per_second: stats.rows_per_second(),
            time_to_first_batch: stats.time_to_first_batch.map(|d| d.as_secs_f64()),
            estimated_rows: stats.estimate.rows(),
            cancelled: stats.cancelled,
            processors: stats
                .processors
                .iter()
                .map(|p| ProcessorOut {
                    name: p.name.clone(),
                    batches: p.batches,
                    mean: p.mean.as_secs_f64(),
                    p50: p.p50.as_secs_f64(),
                    p95: p.p95.as_secs_f64(),
                    max: p.max.as_secs_f64(),
                })
                .collect(),
        }
    }
}

/// Calls the Python progress callback with `{"rows", "batches", "bytes", "seconds",
/// "estimated_rows", "done"}`, at most every [`PROGRESS_EVERY`] and once at the end. A callback
/// that raises is not called again: progress must not fail a run.
struct Progress {
    callback: Option<Py<PyAny>>,
    last: Mutex<Option<Instant>>,
    /// Set when the callback raised: it is not called again, not even for the final update.
    broken: AtomicBool,
}

impl Progress {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        Self { callback, last: Mutex::new(None), broken: AtomicBool::new(false) }
    }

    fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < PROGRESS_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn send(&self, update: Update) {
        let Some(callback) = &self.callback else { return };
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        Python::attach(|py| {
            let sent = to_python(py, &update).and_then(|dict| callback.call1(py, (dict,)));
            if let Err(err) = sent {
                err.print(py);
                self.broken.store(true, Ordering::Relaxed);
            }
        });
    }
}

#[derive(Serialize)]
struct Update {
    rows: u64,
    batches: u64,
    bytes: u64,
    seconds: f64,
    estimated_rows: Option<u64>,
    done: bool,
}

impl flightline_core::exec::ProgressObserver for Progress {
    fn on_event(&self, event: &ProgressEvent<'_>) {
        match event {
            ProgressEvent::Batch { batches, rows, bytes, elapsed, estimate } if self.due() => {
                self.send(Update {
                    rows: *rows,
                    batches: *batches,
                    bytes: *bytes,
                    seconds: elapsed.as_secs_f64(),
                    estimated_rows: estimate.rows(),
                    done: false,
                });
            }
            ProgressEvent::Finished(stats) => self.send(Update {
                rows: stats.rows,
                batches: stats.batches,
                bytes: stats.bytes,
                seconds: stats.total.as_secs_f64(),
                estimated_rows: stats.estimate.rows(),
                done: true,
            }),
            _ => {}
        }
    }
}
