//! A plugin for the loader's tests: it counts rows, logs and emits metrics through the host,
//! panics or fails where its options say, refuses unknown options, and as a validator denies
//! queries that mention a given table.
//!
//! Options (every one optional, unknown ones refused):
//! `{"panic_in": "open"|"process"|"finish"|"commit"|"validate", "fail_in": "...", "block_in": "...",
//! "deny_table": "name", "delay_ms": N}`. `block_in` makes that call never return, as a call stuck on network
//! I/O without a timeout would.
#![warn(missing_docs)]

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use flightline_core::plugin::export::FromOptions;
use flightline_core::plugin::host;
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use serde::Deserialize;

/// The options both exports read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The call that panics.
    pub panic_in: Option<String>,
    /// The call that returns an error.
    pub fail_in: Option<String>,
    /// The call that never returns.
    pub block_in: Option<String>,
    /// The table the validator denies.
    pub deny_table: Option<String>,
    /// Milliseconds each batch takes, as a slow synchronous sink would (a running job a test
    /// can watch).
    pub delay_ms: Option<u64>,
}

fn parse(options: serde_json::Value) -> Result<Options, ProcessError> {
    serde_json::from_value(options).map_err(|e| ProcessError::new(format!("probe options: {e}")))
}

impl Options {
    fn check(&self, call: &str) -> Result<(), ProcessError> {
        if self.panic_in.as_deref() == Some(call) {
            panic!("probe panics in {call}, as configured");
        }
        if self.fail_in.as_deref() == Some(call) {
            return Err(ProcessError::new(format!("probe fails in {call}, as configured")));
        }
        if self.block_in.as_deref() == Some(call) {
            host::log(tracing::Level::WARN, &format!("probe blocks in {call} for ever"));
            // `park` may return spuriously: only the loop makes it for ever.
            loop {
                std::thread::park();
            }
        }
        Ok(())
    }
}

/// Counts rows and batches; logs and emits metrics through the host.
#[derive(Debug)]
pub struct Probe {
    options: Options,
    rows: u64,
    batches: u64,
}

impl FromOptions for Probe {
    fn from_options(options: serde_json::Value) -> Result<Self, ProcessError> {
        Ok(Self { options: parse(options)?, rows: 0, batches: 0 })
    }
}

#[async_trait]
impl BatchProcessor for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        self.options.check("open")?;
        let message =
            format!("probe opened for job {} with {} columns", ctx.job, schema.fields().len());
        host::log(tracing::Level::WARN, &message);
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        self.options.check("process")?;
        if let Some(ms) = self.options.delay_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        self.rows += batch.num_rows() as u64;
        self.batches += 1;
        host::counter("probe_rows_total", &[("side", "plugin")], batch.num_rows() as u64);
        host::histogram("probe_batch_rows", &[], batch.num_rows() as f64);
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        self.options.check("finish")?;
        host::gauge("probe_last_rows", &[], self.rows as f64);
        let mut report = Report::default();
        report.counts.insert("rows".into(), self.rows);
        report.counts.insert("batches".into(), self.batches);
        Ok(report)
    }

    async fn commit(&mut self) -> Result<(), ProcessError> {
        self.options.check("commit")?;
        host::log(tracing::Level::INFO, "probe committed");
        Ok(())
    }
}

/// Denies queries that mention `deny_table`.
#[derive(Debug)]
pub struct DenyTable {
    options: Options,
}

impl FromOptions for DenyTable {
    fn from_options(options: serde_json::Value) -> Result<Self, ProcessError> {
        Ok(Self { options: parse(options)? })
    }
}

#[async_trait]
impl QueryValidator for DenyTable {
    fn name(&self) -> &str {
        "deny_table"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        if self.options.panic_in.as_deref() == Some("validate") {
            panic!("probe panics in validate, as configured");
        }
        let Some(table) = &self.options.deny_table else { return Vec::new() };
        let mentioned = ctx
            .sql()
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w.eq_ignore_ascii_case(table));
        if !mentioned {
            return Vec::new();
        }
        vec![Finding::new(
            Severity::Deny,
            "table_denied",
            format!("the query reads the table {table}"),
            "query another table",
        )]
    }
}

flightline_core::export_plugin! {
    name: "probe",
    version: "0.1.0",
    processor: Probe,
    validator: DenyTable,
}
