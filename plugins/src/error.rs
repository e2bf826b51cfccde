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
    /// No built-in validation rule has this name.
    #[error(
        "unknown validation rule `{name}`; the built-in rules are: {}; a validator plugin is \
         written {{ plugin = \"path/lib.so\", sha256 = \"...\" }}",
        known.join(", ")
    )]
    UnknownValidator {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// A validation rule's options are malformed.
    #[error("validation rule `{validator}`: {message}")]
    ValidatorOptions {
        /// The rule being built.
        validator: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}
