//! The checked job file: what [`Config::load`](super::Config::load) gives the rest of the
//! runner.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::validate::{Override, Policy};
use flightline_plugins::postgres::PgConnection;
use serde::Serialize;

use super::{ServerConfig, TimeRangeMode};
use crate::http::AccessToken;

/// Default number of queries running at once, over all jobs.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 4;
/// Default time in-flight windows get to finish after SIGINT / SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default lease of a window in a shared state database.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Default number of windows a scheduled job catches up per tick.
pub const DEFAULT_MAX_WINDOWS_PER_TICK: u32 = 10;

/// A checked job file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Servers by name (`[server]` is named `default`).
    pub servers: BTreeMap<String, ServerConfig>,
    /// `[http]`: where to serve `/metrics` and the status page, if anywhere.
    pub http: Option<HttpSettings>,
    /// `[runner]`.
    pub runner: RunnerSettings,
    /// The jobs, in file order.
    pub jobs: Vec<JobConfig>,
}

/// `[http]` (formerly `[metrics]`): the runner's HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Its address.
    pub listen: SocketAddr,
    /// The token every route but `/healthz` and `/readyz` wants, read when the file is loaded.
    pub token: Option<AccessToken>,
}

/// `[runner]`.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Queries running at once over all jobs.
    pub max_concurrent_queries: usize,
    /// Checkpoints and the lock live here, unless `state_db` is given.
    pub state_dir: PathBuf,
    /// `state = "postgres://..."`: the state lives in PostgreSQL, shared by every worker that
    /// runs this job file against it.
    pub state_db: Option<PgConnection>,
    /// This worker's name in leases, logs and the `worker` metric label (default: the host
    /// name).
    pub worker: String,
    /// How long a window's lease lasts without renewal: how soon another worker takes over the
    /// windows of one that died.
    pub lease_ttl: Duration,
    /// How long in-flight windows may take to finish after a stop signal.
    pub shutdown_grace: Duration,
}

/// One `[[job]]`.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Unique name: metric label, checkpoint file name.
    pub name: String,
    /// Line of its `name` key, for messages.
    pub line: usize,
    /// Name of the server it queries.
    pub server: String,
    /// The SQL, with `{begin}` / `{end}` placeholders in `sql` time-range mode.
    pub sql: String,
    /// The time range of a one-shot job, or where a scheduled job starts and stops.
    pub range: RangeSpec,
    /// Present for scheduled jobs.
    pub schedule: Option<Schedule>,
    /// How the time range reaches the server.
    pub time_range: TimeRangeMode,
    /// What validation findings do.
    pub validation: Policy,
    /// Ask the server for a row count first.
    pub estimate: bool,
    /// Re-batch to about this many bytes.
    pub target_batch_bytes: Option<usize>,
    /// Retries of retryable failures.
    pub retries: RetryPolicy,
    /// Processors, in order.
    pub processors: Vec<ProcessorSpec>,
    /// Validators checked before each run's query, in order; `None` (no `validators` key): every
    /// built-in rule with its defaults.
    pub validators: Option<Vec<ValidatorSpec>>,
    /// Hash of what decides the job's output; a checkpoint written under another is refused.
    pub config_hash: String,
}

/// The time range of a job as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No range.
    None,
    /// `last = "7d"`: that span up to now (for a scheduled job: where it starts).
    Last(chrono::Duration),
    /// `begin` and, optionally, `end` (a one-shot job needs both).
    Absolute {
        /// First instant.
        begin: DateTime<Utc>,
        /// First instant excluded; a scheduled job stops there.
        end: Option<DateTime<Utc>>,
    },
}

/// `every`, `window`, `lag`, `max_windows_per_tick`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How often the job wakes up.
    pub every: Duration,
    /// Length of each window (default: `every`).
    pub window: chrono::Duration,
    /// How far behind now a window must end (late data).
    pub lag: chrono::Duration,
    /// Most windows processed per tick when catching up.
    pub max_windows_per_tick: u32,
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Ceiling of the wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A processor of a job.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessorSpec {
    /// Built in or a dynamic plugin.
    pub kind: ProcessorKind,
    /// Its options (a JSON object, `{}` when none).
    pub options: serde_json::Value,
    /// Line of the entry, for messages.
    #[serde(skip)]
    pub line: usize,
}

/// Where a processor (or a validator) comes from.
#[derive(Debug, Clone, Serialize)]
pub enum ProcessorKind {
    /// A built-in processor (or validation rule) by name.
    Builtin(String),
    /// A dynamic plugin library, optionally pinned by SHA-256.
    Plugin {
        /// The library.
        path: PathBuf,
        /// Expected SHA-256 of the file, lowercase hex.
        sha256: Option<String>,
    },
}

impl ProcessorKind {
    /// How the processor or validator is named in messages: its name, or its plugin's path.
    pub fn label(&self) -> String {
        match self {
            ProcessorKind::Builtin(name) => name.clone(),
            ProcessorKind::Plugin { path, .. } => path.display().to_string(),
        }
    }
}

impl ProcessorSpec {
    /// How the processor is named in messages.
    pub fn label(&self) -> String {
        self.kind.label()
    }
}

/// A validator of a job: a built-in rule (`"read_only"`, `{ name = "time_filter", options =
/// {...} }`) or a validator plugin (`{ plugin = "lib.so", sha256 = "...", options = {...} }`).
#[derive(Debug, Clone)]
pub struct ValidatorSpec {
    /// A built-in rule by name, or a plugin library (pinned as processor plugins are).
    pub kind: ProcessorKind,
    /// Its options (a JSON object, `{}` when none).
    pub options: serde_json::Value,
    /// `severity = "deny"` (or `info`, `warn`, `mute`): every finding of this validator is
    /// reported at that severity (dropped for `mute`) before the job's `validation` judges it.
    pub severity: Option<Override>,
    /// Line of the entry, for messages.
    pub line: usize,
}
