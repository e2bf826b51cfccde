//! What PostgreSQL costs the runner: `postgres_sink`'s throughput against a plain psycopg COPY of
//! the same rows from Python (`bench/pg_copy.py`), and what leasing and committing one window in
//! the shared state costs. Both measured in the same run, on one local cluster.
//!
//! Run: `cargo bench --workspace --bench postgres_sink --profile dev` (needs PostgreSQL's server
//! binaries, as the tests do, and the venv of `interop/setup_venv.sh` for the baseline). Rows:
//! `FLIGHTLINE_BENCH_ROWS` (default 1,000,000).

#[path = "../../interop/postgres.rs"]
mod postgres;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use flightline_core::process::{BatchProcessor, ProcessContext};
use flightline_core::{FlightSqlClient, TimeRange};
use flightline_plugins::postgres::PgConnection;
use flightline_plugins::processors::{PostgresSink, PostgresSinkOptions};
use flightline_runner::shared_state::{Leases, migrate};
use flightline_server::ServerBuilder;

const REPS: usize = 3;
const LEASES: usize = 500;

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::var("FLIGHTLINE_BENCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let batches = demo_rows(rows).await;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let pg = postgres::Postgres::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let password = dir.path().join("pgpass");
    std::fs::write(&password, postgres::PASSWORD).expect("write the password");
    let connection = PgConnection {
        url: pg.url("postgres"),
        password_env: None,
        password_file: Some(password),
        connect_timeout_secs: Some(10),
    };

    let mut rust = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        rust.push(sink(&connection, &batches).await);
    }
    let parquet = dir.path().join("rows.parquet");
    write_parquet(&parquet, &batches);
    let python: Vec<f64> = (0..REPS).map(|_| psycopg_copy(&pg, &parquet)).collect();
    let copied =
        pg.psql("SELECT (SELECT count(*) FROM rust_copy) || ' ' || (SELECT count(*) FROM py_copy)");
    assert_eq!(copied, format!("{rows} {rows}"), "both sides wrote every row");

    let (rust, python) = (best(&rust), best(&python));
    println!("postgres_sink, {rows} rows (time, level, target, msg), best of {REPS}:");
    println!(
        "  flightline postgres_sink (binary COPY)  {rust:8.3} s  {:>10.0} rows/s",
        rows as f64 / rust
    );
    println!(
        "  psycopg 3 COPY, write_row per row       {python:8.3} s  {:>10.0} rows/s",
        rows as f64 / python
    );
    println!("  ratio                                   {:8.2}x", python / rust);

    let per_window = lease_cost(&connection).await;
    println!(
        "a window's lease in the shared state: lease + commit (checkpoint moved), {LEASES} windows: \
         {:.3} ms per window",
        per_window.as_secs_f64() * 1000.0
    );
}

/// `rows` demo rows from an embedded server, as a runner would receive them.
async fn demo_rows(rows: u64) -> Vec<RecordBatch> {
    let end: DateTime<Utc> = "2024-06-01T00:00:00Z".parse().expect("instant");
    let server = ServerBuilder::new()
        .demo_rows(rows)
        .demo_end(end)
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .expect("start the server");
    let client = FlightSqlClient::builder(format!("grpc://{}", server.local_addr()))
        .connect()
        .await
        .expect("connect");
    let batches = client
        .query("SELECT time, level, target, msg FROM log_entries", None)
        .await
        .expect("query");
    server.shutdown().await.expect("stop the server");
    batches
}

/// One run of the sink over `batches` (the window's earlier rows replaced): seconds.
async fn sink(connection: &PgConnection, batches: &[RecordBatch]) -> f64 {
    let options = PostgresSinkOptions {
        connection: connection.clone(),
        table: "rust_copy".into(),
        create: true,
    };
    let mut sink = PostgresSink::new(options).expect("sink");
    let begin: DateTime<Utc> = "2024-05-25T00:00:00Z".parse().expect("instant");
    let window = TimeRange::new(begin, begin + chrono::Duration::days(7)).expect("window");
    let ctx = ProcessContext::new("bench").with_window(Some(window));
    let started = Instant::now();
    sink.open(&batches[0].schema(), &ctx).await.expect("open");
    for batch in batches {
        sink.process(batch, &ctx).await.expect("process");
    }
    sink.finish(&ctx).await.expect("finish");
    sink.commit().await.expect("commit");
    started.elapsed().as_secs_f64()
}

fn write_parquet(path: &std::path::Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).expect("create the parquet file");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None).expect("writer");
    for batch in batches {
        writer.write(batch).expect("write");
    }
    writer.close().expect("close");
}

/// `bench/pg_copy.py` on the same rows: seconds.
fn psycopg_copy(pg: &postgres::Postgres, parquet: &std::path::Path) -> f64 {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = Command::new(format!("{root}/.venv/bin/python"))
        .arg(format!("{root}/bench/pg_copy.py"))
        .arg(parquet)
        .arg(format!("host=127.0.0.1 port={} user={} dbname=postgres", pg.port(), postgres::USER))
        .args(["py_copy", "rust_copy"])
        .env("PGPASSWORD", postgres::PASSWORD)
        .output()
        .expect("run bench/pg_copy.py (bash interop/setup_venv.sh first)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("seconds")
}

/// Leasing and committing `LEASES` windows of a fresh job, one after the other: per window.
async fn lease_cost(connection: &PgConnection) -> Duration {
    let mut client = connection.connect().await.expect("connect");
    migrate(&mut client).await.expect("migrate");
    let leases = Leases::new(Arc::new(client), "bench", Duration::from_secs(30));
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("instant");
    leases.register("leases", "hash", start).await.expect("register");
    let windows: Vec<TimeRange> = (0..LEASES as i64)
        .map(|i| {
            let begin = start + chrono::Duration::minutes(i);
            TimeRange::new(begin, begin + chrono::Duration::minutes(1)).expect("window")
        })
        .collect();
    let started = Instant::now();
    for window in &windows {
        let lease =
            leases.lease_next("leases", "hash", std::slice::from_ref(window)).await.expect("lease");
        leases.commit(&lease.expect("a free window")).await.expect("commit");
    }
    started.elapsed() / LEASES as u32
}

fn best(seconds: &[f64]) -> f64 {
    seconds.iter().copied().fold(f64::INFINITY, f64::min)
}
