//! One module per subcommand.

pub mod check;
pub mod demo;
pub mod plugins;
pub mod query;
pub mod run;
pub mod schema;
pub mod serve;
pub mod validate;
