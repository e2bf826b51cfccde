//! The one error type of `flightline-runner`.

/// Everything a `flightline` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// An SDK error (client, validation, schema).
    #[error(transparent)]
    Core(#[from] flightline_core::Error),
    /// An embedded-server error.
    #[error(transparent)]
    Server(#[from] flightline_server::ServerError),
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}
