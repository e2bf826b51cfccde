//! Metric names and label keys (Prometheus conventions: base units, `_total` counters).
//!
//! The executor emits its metrics through the [`metrics`](https://docs.rs/metrics) facade and
//! never installs a recorder: without one, emitting costs next to nothing. The runner installs
//! the Prometheus exporter, sets histogram buckets and describes these names.
//!
//! Emitted by [`crate::exec::QueryExecutor`]:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`BATCH_DURATION_SECONDS`] | histogram, one sample per batch per processor | `job`, `processor` |
//! | [`ROWS_TOTAL`], [`BYTES_TOTAL`], [`BATCHES_TOTAL`] | counters | `job` |
//! | [`QUERY_DURATION_SECONDS`], [`TIME_TO_FIRST_BATCH_SECONDS`] | histograms | `job` |
//! | [`PROCESSOR_ERRORS_TOTAL`] | counter | `job`, `processor` |
//!
//! Emitted by the runner: [`JOB_RUNS_TOTAL`] (`job`, `status`), [`JOBS_IN_FLIGHT`] and
//! [`CHECKPOINT_LAG_SECONDS`] (`job`). Static labels from the configuration (such as
//! [`LABEL_SERVER`]) are added to all of them. Emitted for plugins:
//! [`METRIC_SAMPLES_DROPPED_TOTAL`] (`plugin`, `metric`).
//!
//! Every name here starts with [`HOST_PREFIX`], which is the host's alone. Metrics named by
//! plugins and processors are claimed with [`claim_metric_name`] (or, for names only known at a
//! sample, [`admit_sample`]), so that one name never has two types in a scrape.

mod claims;

pub use claims::{HOST_PREFIX, MetricKind, admit_sample, claim_metric_name, is_valid_metric_name};

/// Time one processor spent on one batch (histogram, seconds).
pub const BATCH_DURATION_SECONDS: &str = "flightline_batch_duration_seconds";
/// Rows received from the server (counter).
pub const ROWS_TOTAL: &str = "flightline_rows_total";
/// Arrow bytes received from the server, as held in memory (counter).
pub const BYTES_TOTAL: &str = "flightline_bytes_total";
/// Batches delivered to the processors, after re-batching (counter).
pub const BATCHES_TOTAL: &str = "flightline_batches_total";
/// Time from the start of a query to the end of its last processor (histogram, seconds).
pub const QUERY_DURATION_SECONDS: &str = "flightline_query_duration_seconds";
/// Time from the start of a query to its first batch (histogram, seconds).
pub const TIME_TO_FIRST_BATCH_SECONDS: &str = "flightline_time_to_first_batch_seconds";
/// Job runs by outcome (counter; `status` is `ok`, `failed` or `cancelled`).
pub const JOB_RUNS_TOTAL: &str = "flightline_job_runs_total";
/// Job runs in progress (gauge).
pub const JOBS_IN_FLIGHT: &str = "flightline_jobs_in_flight";
/// How far a job's checkpoint is behind now (gauge, seconds).
pub const CHECKPOINT_LAG_SECONDS: &str = "flightline_checkpoint_lag_seconds";
/// Processor failures (counter).
pub const PROCESSOR_ERRORS_TOTAL: &str = "flightline_processor_errors_total";

/// Plugin metric samples dropped because their name is the host's, invalid, or taken with
/// another type (counter).
pub const METRIC_SAMPLES_DROPPED_TOTAL: &str = "flightline_metric_samples_dropped_total";

/// Label key: the metric name of a dropped sample.
pub const LABEL_METRIC: &str = "metric";
/// Label key: the job name.
pub const LABEL_JOB: &str = "job";
/// Label key: the processor name.
pub const LABEL_PROCESSOR: &str = "processor";
/// Label key: the server a job queries.
pub const LABEL_SERVER: &str = "server";
/// Label key: the outcome of a job run.
pub const LABEL_STATUS: &str = "status";
