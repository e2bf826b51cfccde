//! One module per subcommand.

pub mod check;
pub mod demo;
pub mod query;
pub mod run;
pub mod schema;
pub mod serve;
pub mod validate;
