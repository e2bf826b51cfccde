//! State shared by several workers in PostgreSQL (`[runner] state = "postgres://..."`): the
//! tables, created and migrated by the runner itself ([`migrate`]).

pub mod migrate;

pub use migrate::{CURRENT_VERSION, migrate};
