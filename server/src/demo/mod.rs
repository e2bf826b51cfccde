//! The demo telemetry: `log_entries`, `measures` and `processes` in Micromegas's shapes.
//!
//! Rows are generated lazily, one chunk at a time, from `(seed, chunk index)`: the server's
//! memory does not grow with `--demo-rows`, and every scan of a table sees exactly the same rows.
//! Row `i` of `n` gets a time in its own slot of `[end - window, end)`, so times increase with `i`
//! and "the last 7 days" always has data.

mod generator;
mod schemas;
mod table;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::error::ServerError;
use generator::{Kind, Shared, processes_batch};
pub use schemas::{log_entries_schema, measures_schema, processes_schema};
use table::DemoTable;

/// How much demo data to make, and where in time to put it.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Rows in `log_entries` and in `measures` each.
    pub rows: u64,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// End of the time window (exclusive).
    pub end: DateTime<Utc>,
    /// Length of the time window.
    pub window: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { rows: 100_000, seed: 42, end: Utc::now(), window: Duration::days(7) }
    }
}

/// A table and the name SQL knows it by.
pub type NamedTable = (String, Arc<dyn TableProvider>);

/// The three demo tables as DataFusion providers, by name.
pub fn demo_tables(config: &DemoConfig) -> Result<Vec<NamedTable>, ServerError> {
    let shared = Arc::new(Shared::new(config));
    let logs = DemoTable::new(shared.clone(), Kind::Logs, log_entries_schema());
    let measures = DemoTable::new(shared.clone(), Kind::Measures, measures_schema());
    let batch = processes_batch(&shared).map_err(ServerError::demo)?;
    let processes =
        MemTable::try_new(processes_schema(), vec![vec![batch]]).map_err(ServerError::demo)?;
    Ok(vec![
        ("log_entries".to_string(), Arc::new(logs)),
        ("measures".to_string(), Arc::new(measures)),
        ("processes".to_string(), Arc::new(processes)),
    ])
}
