//! Batch processing: the [`BatchProcessor`] trait every consumer of a query result implements,
//! the [`ProcessContext`] it reads, the [`Report`] it returns and the [`ProcessError`] it fails
//! with.
//!
//! A processor sees the result schema once ([`BatchProcessor::open`]), every batch in order
//! ([`BatchProcessor::process`]), then either [`BatchProcessor::finish`] and
//! [`BatchProcessor::commit`] when the whole run succeeded, or [`BatchProcessor::abort`]. The executor
//! ([`crate::exec::QueryExecutor`]) runs each processor on its own task (or thread, for one whose
//! calls block: [`BatchProcessor::blocking`]) behind a bounded queue;
//! the built-in processors (`count_by`, `aggregate`, sinks, gauges) live in `flightline-plugins`.
//!
//! A processor counting rows per `level`:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//!
//! use arrow::array::{Array, Int32Array};
//! use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
//! use arrow::record_batch::RecordBatch;
//! use flightline_core::process::*;
//!
//! #[derive(Default)]
//! struct RowsPerLevel {
//!     counts: BTreeMap<i32, u64>,
//! }
//!
//! #[async_trait]
//! impl BatchProcessor for RowsPerLevel {
//!     fn name(&self) -> &str { "rows_per_level" }
//!
//!     async fn process(&mut self, batch: &RecordBatch, ctx: &ProcessContext)
//!         -> Result<(), ProcessError> {
//!         let levels = batch
//!             .column_by_name("level")
//!             .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
//!             .ok_or_else(|| ProcessError::new(format!(
//!                 "batch {}: expected an Int32 column `level`", ctx.batch_index)))?;
//!         for level in levels.iter().flatten() {
//!             *self.counts.entry(level).or_default() += 1;
//!         }
//!         Ok(())
//!     }
//!
//!     async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
//!         let mut report = Report::default();
//!         for (level, rows) in &self.counts {
//!             report.counts.insert(format!("level_{level}"), *rows);
//!         }
//!         Ok(report)
//!     }
//! }
//!
//! # futures::executor::block_on(async {
//! let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("level", DataType::Int32, false)]));
//! let batch = RecordBatch::try_new(
//!     schema.clone(), vec![Arc::new(Int32Array::from(vec![2, 4, 2]))]).unwrap();
//!
//! let mut processor = RowsPerLevel::default();
//! let ctx = ProcessContext::new("demo");
//! processor.open(&schema, &ctx).await.unwrap();
//! processor.process(&batch, &ctx).await.unwrap();
//! let report = processor.finish(&ctx).await.unwrap();
//! assert_eq!(report.counts["level_2"], 2);
//! assert_eq!(report.counts["level_4"], 1);
//! # });
//! ```

mod context;
mod error;
mod lease;
mod report;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// The attribute that makes `async fn` usable in a [`BatchProcessor`] impl, re-exported so that
/// processor authors need no direct dependency: `#[flightline_core::process::async_trait]`.
pub use async_trait::async_trait;
pub use context::{ProcessContext, RowEstimate};
pub use error::{ProcessError, ProcessStage};
pub use lease::WindowLease;
pub use report::{Report, ReportTable};

/// A consumer of a query result, batch by batch. Processors may keep state between batches;
/// the executor calls one processor from one task at a time, in batch order.
///
/// # The calls, and what the executor promises
///
/// A run calls `open` once, `process` once per non-empty batch in order, then either
/// `finish` and `commit`, or `abort`:
///
/// - **Empty results**: `open` is still called (with the schema the server announced, or an
///   empty schema when it announced none), then `finish`: a processor always learns that the
///   run happened, and a sink writes an empty file.
/// - **Zero-row batches** are never passed to `process`; a zero-row batch that arrives first
///   only supplies the schema for `open`.
/// - **Two-phase commit**: `finish` *prepares*: everything that can fail happens there
///   (encoding, flushing, fsync), and the [`Report`] is returned, but nothing is published.
///   `commit` *publishes* (sinks rename their file into place). `commit` is called only once
///   every processor of the run has finished successfully and the run was not cancelled, so a
///   failing processor leaves no output of the others behind.
/// - **`abort`** is called when the run does not commit: after this processor's own failed
///   call (`open`, `process` or `finish`), when the run is cancelled, or when another processor
///   failed (also after this one's successful `finish`). Never after `commit`, never twice.
/// - **Cancel safety**: `open`, `process` and `finish` may be dropped at any `.await` when the
///   run is cancelled or another processor fails; `abort` follows. Keep state consistent
///   across awaits, or put it right in `abort`.
/// - **Dropping the run**: when the future of [`QueryExecutor::run`](crate::exec::QueryExecutor::run)
///   is dropped, its workers are cancelled and aborted and the processors dropped; `abort` may
///   get to run first, but nothing can wait for it in a drop: `Drop` must discard partial
///   output too, as the built-in sinks do.
#[async_trait]
pub trait BatchProcessor: Send {
    /// Stable name, used in errors, metric labels and reports.
    fn name(&self) -> &str;

    /// Called once, before the first batch, with the result schema. A processor that needs
    /// certain columns checks them here, so a wrong configuration fails before any work.
    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        let _ = (schema, ctx);
        Ok(())
    }

    /// Called once per non-empty batch, in order.
    async fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> Result<(), ProcessError>;

    /// Called once after the last batch when every batch succeeded: prepare the output (write,
    /// flush, sync) and return the report, but publish nothing yet; [`commit`](Self::commit)
    /// does that.
    async fn finish(&mut self, ctx: &ProcessContext) -> Result<Report, ProcessError>;

    /// Publishes what [`finish`](Self::finish) prepared (a sink renames its file into place).
    /// Called once, after every processor of the run finished successfully. Keep it to steps
    /// that rarely fail: when it fails, processors that committed before this one stay
    /// committed. The default does nothing, for processors whose output is their report.
    async fn commit(&mut self) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called when the run does not commit (see the trait's documentation): discard partial
    /// or prepared output. Never called after `commit`. The executor waits for it at most
    /// [`ABORT_DEADLINE`](crate::exec::ABORT_DEADLINE), then goes on without it.
    async fn abort(&mut self) {}

    /// Whether this processor's calls block their thread while they work (synchronous I/O, a
    /// C library). The executor then runs it on a thread of its own rather than on a runtime
    /// worker: a slow call holds up no other task, and batches reach it without a hop through
    /// tokio's blocking pool for each call. Its futures still run in the runtime's context
    /// (timers, `spawn`). A run that is cancelled waits for a call in progress at most
    /// [`ABORT_DEADLINE`](crate::exec::ABORT_DEADLINE), then leaves the thread to finish it.
    /// Plugin instances ([`crate::plugin::DynamicProcessor`]) say yes; the default is no.
    fn blocking(&self) -> bool {
        false
    }
}

#[async_trait]
impl<P: BatchProcessor + ?Sized> BatchProcessor for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        (**self).open(schema, ctx).await
    }
    async fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        (**self).process(batch, ctx).await
    }
    async fn finish(&mut self, ctx: &ProcessContext) -> Result<Report, ProcessError> {
        (**self).finish(ctx).await
    }
    async fn commit(&mut self) -> Result<(), ProcessError> {
        (**self).commit().await
    }
    async fn abort(&mut self) {
        (**self).abort().await
    }
    fn blocking(&self) -> bool {
        (**self).blocking()
    }
}
