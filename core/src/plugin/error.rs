//! What can go wrong with a plugin library, as the `kind` of [`Error::Plugin`](crate::Error::Plugin).

use super::abi::{ENTRY_SYMBOL, HOST_ABI_VERSIONS};

/// Why a plugin could not be loaded or used. Each case says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginErrorKind {
    /// The file does not exist.
    #[error(
        "file not found (check the `plugin` path; relative paths start at the working directory)"
    )]
    NotFound,
    /// The file could not be read (for its SHA-256).
    #[error("cannot read the file: {message}")]
    Unreadable {
        /// What the OS said.
        message: String,
    },
    /// The file's SHA-256 is not the pinned one: it was rebuilt or replaced. Nothing was loaded.
    #[error(
        "SHA-256 mismatch: the config pins {expected} but the file hashes to {actual}; nothing was \
         loaded (rebuild the pin with `flightline plugins inspect` if the new file is trusted)"
    )]
    HashMismatch {
        /// The pin, as configured.
        expected: String,
        /// The file's hash, lowercase hex.
        actual: String,
    },
    /// The pin is not 64 hex digits.
    #[error("invalid sha256 pin {pin:?}: expected 64 hexadecimal digits")]
    BadPin {
        /// The pin, as configured.
        pin: String,
    },
    /// The dynamic loader refused the file: not a shared library, wrong architecture, a missing
    /// dependency.
    #[error("not a loadable shared library: {message}")]
    NotALibrary {
        /// What the dynamic loader said.
        message: String,
    },
    /// The library does not export the entry symbol: not a Flightline plugin.
    #[error(
        "no entry symbol `{symbol}`: not a Flightline plugin (a Rust plugin needs \
         `flightline_core::export_processor!`, a C plugin must export `{ENTRY_SYMBOL}`)"
    )]
    MissingSymbol {
        /// The symbol looked for.
        symbol: String,
    },
    /// The plugin speaks none of the ABI versions the host speaks.
    #[error(
        "no common ABI version: the host speaks {}, the plugin refused each{} (rebuild the plugin \
         against this version's flightline_plugin.h / flightline-core)",
        versions(HOST_ABI_VERSIONS), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    NoCommonVersion {
        /// What the plugin or the check said about the last version tried.
        detail: Option<String>,
    },
    /// The plugin's table is unusable (a missing required function, an empty name).
    #[error("invalid plugin table for ABI version {version}: {message}")]
    BadTable {
        /// The negotiated version.
        version: u32,
        /// What is missing.
        message: String,
    },
    /// The plugin is not of the kind asked for (a validator-only plugin used as a processor).
    #[error("the plugin is not a {wanted} (it is a {actual})")]
    WrongKind {
        /// What the config asked for.
        wanted: &'static str,
        /// What the plugin declares.
        actual: String,
    },
    /// `create` refused the options.
    #[error("options refused: {message}")]
    OptionsRefused {
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked (a caught Rust panic); the instance refuses further calls.
    #[error("the plugin panicked in {call}: {message}")]
    Panicked {
        /// The ABI function.
        call: &'static str,
        /// The panic message.
        message: String,
    },
    /// Any other failure of an ABI call.
    #[error("{call} failed ({status}): {message}")]
    CallFailed {
        /// The ABI function.
        call: &'static str,
        /// The status name.
        status: &'static str,
        /// The plugin's message.
        message: String,
    },
}

fn versions(list: &[u32]) -> String {
    list.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
