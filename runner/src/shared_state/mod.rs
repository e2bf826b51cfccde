//! State shared by several workers in PostgreSQL (`[runner] state = "postgres://..."`): the
//! tables, created and migrated by the runner itself ([`migrate`]), and the window leases
//! through which workers split a job's windows with fencing ([`lease`]).

pub mod lease;
pub mod migrate;

pub use lease::{Lease, LeaseError, Leases};

pub use migrate::{CURRENT_VERSION, migrate};
