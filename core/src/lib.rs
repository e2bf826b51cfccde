//! # flightline-core
//!
//! The Flightline SDK: a Flight SQL client that speaks both standard Flight SQL and the
//! Micromegas dialect, schema analysis without running a query, a pluggable query-validation
//! pipeline, and (in later modules) the streaming executor and the plugin ABI.
//!
//! This crate never depends on a query engine: it builds without DataFusion.
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod schema;
pub mod time;
pub mod validate;

pub use client::{FlightSqlClient, PreparedStatement, QueryOptions, QueryStream, TokenProvider};
pub use error::{Error, Result};
pub use time::TimeRange;
