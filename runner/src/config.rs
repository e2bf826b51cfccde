//! The job file: `[server]` / `[servers.NAME]`, `[http]` (formerly `[metrics]`), `[runner]`
//! and `[[job]]`s.
//!
//! [`Config::load`] reads the whole file and reports every problem it finds, each with the
//! file, line, key and the value written (see [`ConfigIssue`](crate::error::ConfigIssue)), before any job starts.
//! Relative paths (state directory, CA file, plugin, sink paths) are relative to the working
//! directory, as they are on the command line.
//! [`ServerConfig`] lists the keys of `[server]`, the same settings as the connection flags.
//!
//! ```toml
//! [server]
//! uri = "grpc://127.0.0.1:50051"
//! headers = { authorization = "Bearer ${FLIGHTLINE_TOKEN}" }
//!
//! [[job]]
//! name = "errors"
//! sql = "SELECT target, count(*) AS n FROM log_entries WHERE level <= 2 GROUP BY target"
//! last = "7d"
//! processors = [{ name = "print" }]
//! ```

pub mod bounds;
mod check;
mod env;
mod http;
mod locate;
mod model;
mod raw;
mod server;

use std::path::Path;

pub use check::parse_duration;
pub use model::{
    Config, DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_MAX_WINDOWS_PER_TICK, DEFAULT_SHUTDOWN_GRACE,
    HttpSettings, JobConfig, ProcessorKind, ProcessorSpec, RangeSpec, RetryPolicy, RunnerSettings,
    Schedule, ValidatorSpec,
};
pub use raw::TimeRangeMode;
pub use server::ServerConfig;

use crate::error::RunnerError;

impl Config {
    /// Reads and checks `path`; every problem found is in the error.
    pub fn load(path: &Path) -> Result<Config, RunnerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RunnerError::Io { path: path.display().to_string(), source })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Checks `text` as if read from `path`, with `env` for `${NAME}`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, RunnerError> {
        check::check_text(path, text, env)
    }

    /// The job called `name`.
    pub fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// A scheduled job named `j` (every minute, no range), as parsed from a file, for unit tests.
#[cfg(test)]
pub(crate) fn scheduled_test_job() -> JobConfig {
    let text = "[server]\nuri = \"grpc://127.0.0.1:1\"\n[[job]]\nname = \"j\"\n\
                sql = \"SELECT 1\"\nevery = \"1m\"\n";
    match Config::parse(Path::new("jobs.toml"), text, &|_| None) {
        Ok(mut config) => config.jobs.remove(0),
        Err(err) => panic!("the test job file is refused: {err}"),
    }
}
