//! What a processor returns on failure.

use std::fmt;

/// A processor's failure: a message saying what failed, and the underlying error if any, as the
/// source (the message does not repeat it; print with [`crate::error::Chain`]). The executor
/// wraps it in [`crate::Error::Processor`] with the processor's name, the stage and
/// the batch index.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProcessError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProcessError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self { message: message.into(), source: Some(source.into()) }
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<arrow::error::ArrowError> for ProcessError {
    fn from(err: arrow::error::ArrowError) -> Self {
        Self::with_source("arrow", err)
    }
}

impl From<std::io::Error> for ProcessError {
    fn from(err: std::io::Error) -> Self {
        Self::with_source("i/o", err)
    }
}

/// Which call of a processor failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessStage {
    /// [`crate::process::BatchProcessor::open`].
    Open,
    /// [`crate::process::BatchProcessor::process`].
    Process,
    /// [`crate::process::BatchProcessor::finish`].
    Finish,
    /// [`crate::process::BatchProcessor::commit`].
    Commit,
}

impl fmt::Display for ProcessStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessStage::Open => "open",
            ProcessStage::Process => "process",
            ProcessStage::Finish => "finish",
            ProcessStage::Commit => "commit",
        })
    }
}
