//! The shared-state tables in a real PostgreSQL: created on a fresh database, left alone on one
//! already current, never applied twice by workers that start together, and refused when the
//! database is newer than the binary.

#[path = "../../interop/postgres.rs"]
mod postgres;

use flightline_plugins::postgres::PgConnection;
use flightline_runner::shared_state::CURRENT_VERSION;
use flightline_runner::shared_state::migrate::{MigrateError, migrate};

struct Database {
    pg: postgres::Postgres,
    password: tempfile::NamedTempFile,
}

impl Database {
    fn start() -> Self {
        let password = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(password.path(), postgres::PASSWORD).unwrap();
        Self { pg: postgres::Postgres::start(), password }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let connection = PgConnection {
            url: self.pg.url("postgres"),
            password_env: None,
            password_file: Some(self.password.path().to_path_buf()),
            connect_timeout_secs: Some(5),
        };
        connection.connect().await.unwrap()
    }
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_a_newer_one_is_refused() {
    let db = Database::start();
    let mut client = db.client().await;
    let all: Vec<i32> = (1..=CURRENT_VERSION).collect();
    assert_eq!(migrate(&mut client).await.unwrap(), all, "a fresh database gets every version");
    let tables = db.pg.psql(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename \
         LIKE 'flightline_%'",
    );
    assert_eq!(tables, "flightline_jobs,flightline_schema_migrations,flightline_windows");
    assert_eq!(migrate(&mut client).await.unwrap(), Vec::<i32>::new(), "already current");
    let versions =
        db.pg.psql("SELECT string_agg(version::text, ',') FROM flightline_schema_migrations");
    assert_eq!(versions, all.iter().map(i32::to_string).collect::<Vec<_>>().join(","));

    db.pg.psql("INSERT INTO flightline_schema_migrations (version, name) VALUES (99, 'future')");
    let err = migrate(&mut client).await.unwrap_err();
    assert!(matches!(err, MigrateError::Newer { found: 99 }), "{err}");
    assert!(err.to_string().contains("upgrade flightline"), "{err}");
}

#[tokio::test]
async fn workers_that_start_together_apply_each_migration_once() {
    let db = Database::start();
    let (mut a, mut b) = (db.client().await, db.client().await);
    let (first, second) = tokio::join!(migrate(&mut a), migrate(&mut b));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.len() + second.len(), CURRENT_VERSION as usize, "{first:?} {second:?}");
    assert!(first.is_empty() || second.is_empty(), "{first:?} {second:?}");
    let count = db.pg.psql("SELECT count(*) FROM flightline_schema_migrations");
    assert_eq!(count, CURRENT_VERSION.to_string());
}
