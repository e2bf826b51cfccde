//! Dynamic plugins: processors and validators loaded from shared libraries through a versioned C
//! ABI, with batches and schemas crossing as the Arrow C Data Interface (zero-copy).
//!
//! The ABI is written once in C, `plugins/include/flightline_plugin.h`, and mirrored in [`abi`].
//! A plugin exports `flightline_plugin_init(version, table, error)`; the host asks for the newest
//! ABI version it speaks and falls back to older ones, and the table only grows, so old plugins
//! keep loading (ADBC's `AdbcDriverInit` model).
//!
//! | module | concept |
//! |---|---|
//! | [`abi`] | the `#[repr(C)]` mirror of the header: table, host callbacks, context, status codes |
//! | [`load`], [`Plugin`] | open a library once (SHA-256 pin first), check the symbol, negotiate the version |
//! | [`PluginErrorKind`] | the `kind` of [`Error::Plugin`](crate::Error::Plugin) |
//! | [`host`] | for plugin authors: log lines and metric samples through the host |
mod callbacks;
mod error;
mod instance;
mod library;

pub mod abi;
pub mod host;

pub use error::PluginErrorKind;
pub use library::{Plugin, PluginKind, inspect, load, sha256_file};

/// The label every metric sample from a plugin carries: the plugin's name.
pub const LABEL_PLUGIN: &str = "plugin";
