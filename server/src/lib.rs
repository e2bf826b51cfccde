//! # flightline-server
//!
//! An embedded Flight SQL server over DataFusion, with Micromegas-shaped demo telemetry
//! (`log_entries`, `measures`, `processes`), so that Flightline runs on one machine with no setup.
//! It speaks standard Flight SQL (GetFlightInfo → DoGet, prepared statements, GetSqlInfo,
//! GetTables) and the Micromegas dialect (a DoGet ticket holding raw SQL, time-range headers).
//!
//! ```no_run
//! # async fn demo() -> Result<(), flightline_server::ServerError> {
//! let server = flightline_server::ServerBuilder::new()
//!     .demo_rows(10_000)
//!     .token("s3cret")
//!     .spawn("127.0.0.1:0".parse().expect("literal address"))
//!     .await?;
//! println!("serving on {}", server.uri());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod budget;
pub mod catalog;
pub mod demo;
pub mod encode;
pub mod engine;
pub mod error;
pub mod identity;
pub mod launch;
pub mod limits;
pub mod oidc;
pub mod options;
mod preempt;
pub mod request_id;
mod secret;
pub mod service;
pub mod session;
pub mod slots;
pub mod throttle;
pub mod values;

pub use catalog::UserTable;
pub use demo::DemoConfig;
pub use error::ServerError;
pub use launch::{RunningServer, ServerBuilder};
pub use limits::QueryLimits;
pub use session::{SessionInfo, SessionStore};
