//! Versioned migrations of the shared-state tables.
//!
//! Each migration is applied once, in order, inside one transaction together with its row in
//! `flightline_schema_migrations`; a transaction-scoped advisory lock makes workers that start
//! together migrate one after the other (the second finds nothing to do). A database at a
//! version newer than this binary knows is refused: an older worker must not write to tables
//! whose meaning it does not know.

use tokio_postgres::Client;

/// A migration: its version, what it does, and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, ...: applied in this order.
    pub version: i32,
    /// What it does, recorded with it.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every migration this binary knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs, windows and leases",
        sql: include_str!("migrations/0001_windows_and_leases.sql"),
    },
    Migration {
        version: 2,
        name: "history of runs under leases",
        sql: include_str!("migrations/0002_runs.sql"),
    },
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock key workers migrate under (any constant that no other user takes).
const MIGRATION_LOCK: i64 = 0x666c_6967_6874_6c6e; // "flightln"

/// Why the state database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database is at a version this binary does not know.
    #[error(
        "the state database is at schema version {found}, newer than this flightline knows \
         ({CURRENT_VERSION}): upgrade flightline on this machine (every worker of a database \
         must run a version that knows its schema)"
    )]
    Newer {
        /// The version found.
        found: i32,
    },
    /// PostgreSQL refused a statement.
    #[error("migrating the state database to version {version}: {source}")]
    Postgres {
        /// The version being applied (0: reading the current one).
        version: i32,
        /// What PostgreSQL said.
        source: tokio_postgres::Error,
    },
}

/// Brings the database to [`CURRENT_VERSION`]; returns the versions it applied (none when it
/// was current).
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    let failed = |version| move |source| MigrateError::Postgres { version, source };
    let tx = client.transaction().await.map_err(failed(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed(0))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS flightline_schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(failed(0))?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM flightline_schema_migrations", &[])
        .await
        .map_err(failed(0))?;
    let found: i32 = row.get(0);
    if found > CURRENT_VERSION {
        return Err(MigrateError::Newer { found });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.batch_execute(migration.sql).await.map_err(failed(migration.version))?;
        tx.execute(
            "INSERT INTO flightline_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(failed(migration.version))?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(failed(CURRENT_VERSION))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_by_one_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1, "{}", migration.name);
        }
        assert_eq!(CURRENT_VERSION, MIGRATIONS.len() as i32);
    }
}
