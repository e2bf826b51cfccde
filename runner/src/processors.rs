//! From a job's processor entries to `BatchProcessor`s: built-ins through the plugins
//! crate's registry, dynamic plugins through the loader. The one place that knows both.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use flightline_core::TimeRange;
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};

use crate::RunnerError;
use crate::config::{JobConfig, ProcessorKind, ProcessorSpec};

/// Builds every processor of `job`, fresh for one run (processors keep per-run state).
pub fn build_all(job: &JobConfig) -> Result<Vec<Box<dyn BatchProcessor>>, RunnerError> {
    job.processors.iter().map(|spec| build(job, spec)).collect()
}

/// Builds one processor.
pub fn build(
    job: &JobConfig,
    spec: &ProcessorSpec,
) -> Result<Box<dyn BatchProcessor>, RunnerError> {
    let fail = |message: String| RunnerError::Processor {
        job: job.name.clone(),
        processor: spec.label(),
        message,
    };
    match &spec.kind {
        ProcessorKind::Builtin(name) => {
            flightline_plugins::processors::build_processor(name, spec.options.clone())
                .map_err(|err| fail(err.to_string()))
        }
        // Loaded once per path and never unloaded; the hash pin is checked before loading.
        ProcessorKind::Plugin { path, sha256 } => {
            flightline_core::plugin::load(path, sha256.as_deref())
                .and_then(|plugin| plugin.processor(&spec.options))
                .map(|p| Box::new(p) as Box<dyn BatchProcessor>)
                .map_err(|err| fail(err.to_string()))
        }
    }
}

/// Gives a processor the run's window even when the query carries no range headers
/// (`time_range = "sql"`): the executor only knows the range it sends, and sinks name their
/// files after the window.
pub struct WithWindow {
    inner: Box<dyn BatchProcessor>,
    window: Option<TimeRange>,
}

impl WithWindow {
    /// Wraps `inner`, whose context will carry `window`.
    pub fn wrap(
        inner: Box<dyn BatchProcessor>,
        window: Option<TimeRange>,
    ) -> Box<dyn BatchProcessor> {
        Box::new(Self { inner, window })
    }

    fn ctx(&self, ctx: &ProcessContext) -> ProcessContext {
        ctx.clone().with_window(self.window)
    }
}

#[async_trait]
impl BatchProcessor for WithWindow {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        let ctx = self.ctx(ctx);
        self.inner.open(schema, &ctx).await
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let ctx = self.ctx(ctx);
        self.inner.process(batch, &ctx).await
    }

    async fn finish(&mut self, ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let ctx = self.ctx(ctx);
        self.inner.finish(&ctx).await
    }

    async fn abort(&mut self) {
        self.inner.abort().await
    }
}
