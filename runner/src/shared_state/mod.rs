//! State shared by several workers in PostgreSQL: the tables, created and migrated by the
//! runner itself ([`mod@migrate`]), the window leases through which workers split a job's
//! windows with fencing ([`mod@lease`]), and one worker's connection to them ([`mod@db`]).
//! A job file's `[runner] state = "postgres://..."` selects them instead of a state directory.

pub mod db;
pub mod lease;
pub mod metrics;
pub mod migrate;
pub mod status;

pub use db::StateDb;
pub use lease::{Lease, LeaseError, Leases, Registered, RunEnd};

pub use migrate::{CURRENT_VERSION, migrate};
