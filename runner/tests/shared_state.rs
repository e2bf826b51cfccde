//! The shared-state tables in a real PostgreSQL: created on a fresh database, left alone on one
//! already current, never applied twice by workers that start together, and refused when the
//! database is newer than the binary.

#[path = "../../interop/postgres.rs"]
mod postgres;

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_plugins::postgres::PgConnection;
use flightline_runner::shared_state::CURRENT_VERSION;
use flightline_runner::shared_state::migrate::{MigrateError, migrate};
use flightline_runner::shared_state::{LeaseError, Leases};

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
    assert_eq!(
        tables,
        "flightline_jobs,flightline_runs,flightline_schema_migrations,flightline_windows"
    );
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

fn hours(from: i64, to: i64) -> Vec<TimeRange> {
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
    (from..to)
        .map(|h| {
            let begin = start + chrono::Duration::hours(h);
            TimeRange::new(begin, begin + chrono::Duration::hours(1)).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_worker_whose_lease_expired_is_fenced_and_its_successor_commits() {
    let db = Database::start();
    migrate(&mut db.client().await).await.unwrap();
    let (client_a, client_b) = (db.client().await, db.client().await);
    // Long enough that a loaded machine cannot expire it before `b` first reaches for a window.
    let ttl = Duration::from_secs(3);
    let (a, b) = (Leases::new(client_a.into(), "a", ttl), Leases::new(client_b.into(), "b", ttl));
    let due = hours(0, 4);
    assert_eq!(a.register("job", "hash", due[0].begin).await.unwrap().checkpoint, due[0].begin);
    let kept = b.register("job", "other", due[3].begin).await.unwrap();
    assert_eq!((kept.checkpoint, kept.config_hash.as_str()), (due[0].begin, "hash"), "kept");

    let held_by_a = a.lease_next("job", "hash", &due).await.unwrap().unwrap();
    assert_eq!((held_by_a.window, held_by_a.epoch), (due[0], 1));
    let held_by_b = b.lease_next("job", "hash", &due).await.unwrap().unwrap();
    assert_eq!(held_by_b.window, due[1], "a live lease is skipped");
    assert_eq!(b.commit(&held_by_b).await.unwrap(), due[0].begin, "a gap holds the checkpoint");

    // `a` stalls past its TTL: `b` takes the window over under a new epoch.
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let taken = b.lease_next("job", "hash", &due).await.unwrap().unwrap();
    assert_eq!((taken.window, taken.epoch, taken.owner.as_str()), (due[0], 2, "b"));
    assert!(matches!(a.renew(&held_by_a).await, Err(LeaseError::Fenced { epoch: 1, .. })));
    let fenced = a.commit(&held_by_a).await.unwrap_err();
    assert!(matches!(fenced, LeaseError::Fenced { .. }), "{fenced}");
    assert!(fenced.to_string().contains("taken over"), "{fenced}");
    b.renew(&taken).await.unwrap();
    assert_eq!(b.commit(&taken).await.unwrap(), due[1].end, "the checkpoint closes the gap");
    assert_eq!(a.lease_next("job", "hash", &due).await.unwrap().unwrap().window, due[2]);
    let rows = db.pg.psql(
        "SELECT string_agg(owner || ':' || epoch || ':' || state, ',' ORDER BY window_begin) \
         FROM flightline_windows",
    );
    assert_eq!(rows, "b:2:committed,b:1:committed,a:1:leased");
}

#[tokio::test]
async fn workers_leasing_side_by_side_run_every_window_exactly_once() {
    let db = Database::start();
    migrate(&mut db.client().await).await.unwrap();
    let due = hours(0, 60);
    // Every worker connected and registered before any leases, so that none can take every
    // window while another is still logging in.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    let mut workers = Vec::new();
    for name in ["a", "b", "c"] {
        let client = db.client().await;
        let (due, start) = (due.clone(), start.clone());
        workers.push(tokio::spawn(async move {
            let leases = Leases::new(client.into(), name, Duration::from_secs(60));
            leases.register("job", "hash", due[0].begin).await.unwrap();
            start.wait().await;
            let mut mine = Vec::new();
            while let Some(lease) = leases.lease_next("job", "hash", &due).await.unwrap() {
                leases.commit(&lease).await.unwrap();
                mine.push(lease.window);
            }
            mine
        }));
    }
    let mut seen = Vec::new();
    let mut busy = 0;
    for worker in workers {
        let mine = worker.await.unwrap();
        busy += usize::from(!mine.is_empty());
        seen.extend(mine);
    }
    seen.sort_by_key(|w| w.begin);
    assert_eq!(seen, due, "each window run once, by one worker");
    assert!(busy >= 2, "the work was shared");
    let checkpoint = db.pg.psql("SELECT checkpoint AT TIME ZONE 'UTC' FROM flightline_jobs");
    assert_eq!(checkpoint, "2024-01-03 12:00:00");
}

#[tokio::test]
async fn a_reset_to_a_new_configuration_fences_the_workers_still_on_the_old_one() {
    let db = Database::start();
    migrate(&mut db.client().await).await.unwrap();
    let ttl = Duration::from_secs(30);
    let old = Leases::new(db.client().await.into(), "old", ttl);
    let new = Leases::new(db.client().await.into(), "new", ttl);
    let due = hours(0, 2);
    old.register("job", "v1", due[0].begin).await.unwrap();
    let done = old.lease_next("job", "v1", &due).await.unwrap().unwrap();
    assert_eq!(old.commit(&done).await.unwrap(), due[0].end);
    let running = old.lease_next("job", "v1", &due).await.unwrap().unwrap();
    assert_eq!(running.window, due[1]);

    // Another worker, on v2, resets; a second reset from v1 finds it already moved.
    let found = new.register("job", "v2", due[0].begin).await.unwrap();
    assert_eq!(found.config_hash, "v1");
    let reset = new.adopt("job", "v1", "v2", Some(due[0].begin)).await.unwrap();
    assert_eq!(reset, Some(due[0].begin));
    assert_eq!(new.adopt("job", "v1", "v2", Some(due[0].begin)).await.unwrap(), None);

    assert!(matches!(old.renew(&running).await, Err(LeaseError::Fenced { .. })));
    assert!(matches!(old.commit(&running).await, Err(LeaseError::Fenced { .. })));
    assert_eq!(old.lease_next("job", "v1", &due).await.unwrap(), None, "v1 leases nothing");
    let again = new.lease_next("job", "v2", &due).await.unwrap().unwrap();
    assert_eq!((again.window, again.epoch), (due[0], 3), "taken over past the reset's epoch");
    let next = new.lease_next("job", "v2", &due).await.unwrap().unwrap();
    assert_eq!((next.window, next.epoch), (due[1], 3));
    new.commit(&again).await.unwrap();
    assert_eq!(new.commit(&next).await.unwrap(), due[1].end, "the chain rebuilt under v2");
}
