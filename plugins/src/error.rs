//! The one error type of `flightline-plugins`.

/// What can go wrong when building a built-in extension from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginsError {
    /// No built-in processor has this name.
    #[error("unknown processor `{name}`; the built-in processors are: {}", known.join(", "))]
    UnknownProcessor {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// A processor's options are malformed or inconsistent.
    #[error("processor `{processor}`: {message}")]
    Options {
        /// The processor being built.
        processor: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}
