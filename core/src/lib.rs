//! # flightline-core
//!
//! The Flightline SDK: a Flight SQL client that speaks both standard Flight SQL and the
//! Micromegas dialect, schema analysis without running a query, a pluggable
//! query-validation pipeline, and a streaming executor that feeds query results to batch
//! processors with bounded memory.
//!
//! | module | concept |
//! |---|---|
//! | [`atomic_file`] | [`atomic_file::AtomicFile`]: a file appears whole or not at all (exclusive temp file, fsync, rename or no-replace link, directory fsync) |
//! | [`client`] | [`FlightSqlClient`]: headers, token providers, TLS, `query`, `query_stream`, `prepare` |
//! | [`time`] | [`TimeRange`]: RFC 3339 or relative (`15m`, `2h`, `7d`), sent per call |
//! | [`schema`] | [`schema::SchemaAnalysis`]: column types and estimated row size, from `prepare` |
//! | [`validate`] | [`validate::QueryValidator`], [`validate::ValidationPipeline`], findings and policies |
//! | [`plugin`] | dynamic plugins: the C ABI, the loader, the export macro for Rust authors |
//! | [`process`] | [`process::BatchProcessor`]: `open`, `process` each batch, `finish` with a [`process::Report`] |
//! | [`exec`] | [`exec::QueryExecutor`]: estimate, re-batching, fan-out to processors, progress, statistics, cancellation |
//! | [`metrics`] | metric names and label keys the executor and the runner emit |
//! | [`error`] | [`Error`]: tells "fix your query" from "retry" |
//! | [`wire`] | the Micromegas header names (`query_range_begin`, `limit`, ...) shared with servers |
//!
//! This crate never depends on a query engine: it builds without DataFusion.
//!
//! ```no_run
//! use flightline_core::{FlightSqlClient, TimeRange};
//! use flightline_core::schema::{SchemaAnalysis, SizeOptions};
//! use futures::TryStreamExt;
//!
//! # async fn run() -> flightline_core::Result<()> {
//! let client = FlightSqlClient::builder("grpc://127.0.0.1:50051")
//!     .header("authorization", "Bearer my-token")
//!     .header("x-tenant-id", "production")
//!     .connect()
//!     .await?;
//!
//! // Schema discovery without running the query.
//! let sql = "SELECT time, level, msg FROM log_entries WHERE level <= 2";
//! let prepared = client.prepare(sql).await?;
//! let analysis = SchemaAnalysis::from_prepared(&prepared, &SizeOptions::default());
//! println!("{analysis}");
//!
//! // Stream the last 7 days, batch by batch, with back-pressure.
//! let mut stream = client.query_stream(sql, Some(TimeRange::parse_relative("7d")?)).await?;
//! while let Some(batch) = stream.try_next().await? {
//!     println!("{} rows", batch.num_rows());
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod atomic_file;
pub mod client;
pub mod console;
pub mod error;
pub mod exec;
pub mod malloc;
pub mod metrics;
pub mod plugin;
pub mod process;
pub mod request_id;
pub mod schema;
pub mod time;
pub mod validate;
pub mod wire;

pub use client::{FlightSqlClient, PreparedStatement, QueryOptions, QueryStream, TokenProvider};
pub use error::{Error, Result};
pub use time::TimeRange;
