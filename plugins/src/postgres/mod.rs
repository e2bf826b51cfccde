//! PostgreSQL as a destination: connecting ([`connect`]), the column types a schema maps to
//! ([`types`]), rows in binary COPY format ([`copy`]), and committing a window under its lease
//! ([`fence`]) when the runner's shared state lives in the same database, and TLS with libpq's
//! `sslmode` / `sslrootcert` ([`tls`]). The `postgres_sink` processor
//! ([`crate::processors::PostgresSink`]) puts them together.

pub mod connect;
pub mod copy;
pub mod fence;
pub mod tls;
pub mod types;

pub use connect::PgConnection;
pub use copy::CopyEncoder;
pub use types::PgType;
