//! State shared by several workers in PostgreSQL: the tables, created and migrated by the
//! runner itself ([`mod@migrate`]), and the window leases through which workers split a job's
//! windows with fencing ([`mod@lease`]). The runner's loop does not use them yet; a job file's
//! `[runner] state = "postgres://..."` is what will select them.

pub mod lease;
pub mod migrate;

pub use lease::{Lease, LeaseError, Leases};

pub use migrate::{CURRENT_VERSION, migrate};
