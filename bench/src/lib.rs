//! The client side of Flightline's side-by-side benchmark (`bench/run.py`).
//!
//! Each [`Line`] is one way of reading the same query from a Flight SQL server: the bare
//! arrow-flight client (the floor every other line is compared with), the SDK's
//! `query_stream`, the [`QueryExecutor`](flightline_core::exec::QueryExecutor) feeding the
//! guide's job to a processor linked statically or loaded as a plugin, and the loopback
//! ceiling of a plain TCP copy. A line runs in a process of its own and prints one
//! [`Measurement`]; the CPU time and peak memory come from the process, measured by the caller.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flightline_bench::BenchError> {
//! use flightline_bench::Line;
//!
//! let line = Line::Sdk(flightline_bench::Target {
//!     uri: "grpc://127.0.0.1:50051".into(),
//!     sql: "SELECT time, level, target, msg FROM log_entries WHERE level <= 3".into(),
//! });
//! let measured = line.run().await?;
//! println!("{} rows in {:.2} s", measured.rows, measured.seconds);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod drain;
mod error;
mod job;
mod line;
mod loopback;

pub use error::BenchError;
pub use job::{Job, Processor};
pub use line::{Line, Measurement, Target};
