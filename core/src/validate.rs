//! Query validation: the [`QueryValidator`] trait, the [`ValidationContext`] validators read, the
//! [`Finding`]s they return, the [`ValidationPipeline`] that runs them under a [`Policy`], and
//! [`validate_query`], the local-rules → prepare → schema-rules flow.
//!
//! Validators read the statement parsed by sqlparser, never the SQL text: `ORDER BY` inside a
//! string literal, a comment or a window's `OVER (...)` is not the query's `ORDER BY`. The
//! built-in validators live in `flightline-plugins`; any type implementing [`QueryValidator`]
//! can join a pipeline.
//!
//! ```
//! use async_trait::async_trait;
//! use flightline_core::validate::*;
//!
//! struct NoSemicolons;
//!
//! #[async_trait]
//! impl QueryValidator for NoSemicolons {
//!     fn name(&self) -> &str { "no-semicolons" }
//!     async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
//!         match ctx.statements() {
//!             Ok(statements) if statements.len() > 1 => vec![Finding::new(
//!                 Severity::Deny, "several_statements", "more than one statement", "send one")],
//!             _ => Vec::new(),
//!         }
//!     }
//! }
//!
//! # tokio_test_block_on(async {
//! let pipeline = ValidationPipeline::new().with_validator(NoSemicolons);
//! let report = pipeline.run(&ValidationContext::new("SELECT 1; SELECT 2")).await;
//! assert!(report.is_denied());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod check;
mod context;
mod finding;
mod pipeline;

/// The attribute that makes `async fn` usable in a [`QueryValidator`] impl, re-exported so that
/// plugin authors need no direct dependency: `#[flightline_core::validate::async_trait]`.
pub use async_trait::async_trait;
pub use check::{SERVER_REJECTED, SchemaSource, validate_query};
pub use context::{ValidationContext, parse_sql};
pub use finding::{Finding, Position, Severity};
pub use pipeline::{Override, Policy, QueryValidator, ValidationPipeline, ValidationReport};
