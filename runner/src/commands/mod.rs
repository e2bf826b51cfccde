//! One module per subcommand.

pub mod demo;
pub mod plugins;
pub mod query;
pub mod schema;
pub mod serve;
pub mod validate;
