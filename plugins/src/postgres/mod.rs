//! PostgreSQL as a destination: connecting ([`connect`]), the column types a schema maps to
//! ([`types`]), and rows in binary COPY format ([`copy`]). The `postgres_sink` processor
//! ([`crate::processors::PostgresSink`]) puts them together.

pub mod connect;
pub mod copy;
pub mod types;

pub use connect::PgConnection;
pub use copy::CopyEncoder;
pub use types::PgType;
