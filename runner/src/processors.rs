//! From a job's processor entries to `BatchProcessor`s: built-ins through the plugins
//! crate's registry, dynamic plugins through the loader. The one place that knows both.

use flightline_core::process::BatchProcessor;

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
