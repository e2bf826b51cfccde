//! `postgres_sink` against a real PostgreSQL (a fresh cluster per test binary): every mapped type
//! arrives, a rerun of a window replaces its rows, an aborted run leaves the earlier rows, and
//! bad input (a wrong password, no server, a table of another shape, a type PostgreSQL lacks)
//! is a clear error.

#[path = "../../interop/postgres.rs"]
mod postgres;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int8Array, Int64Array,
    LargeBinaryArray, StringArray, TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{Int32Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError};
use flightline_core::time::TimeRange;
use flightline_plugins::build_processor;
use postgres::Postgres;

/// A cluster of its own for each test (nextest runs each in its own process), stopped when
/// the test ends, and the password file the sink reads.
struct Fixture {
    pg: Postgres,
    password_file: tempfile::NamedTempFile,
}

impl Fixture {
    fn start() -> Self {
        let password_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(password_file.path(), format!("{}\n", postgres::PASSWORD)).unwrap();
        Self { pg: Postgres::start(), password_file }
    }

    fn url(&self) -> String {
        self.pg.url("postgres")
    }

    fn options(&self, table: &str) -> serde_json::Value {
        serde_json::json!({
            "url": self.url(), "table": table, "password_file": self.password_file.path(),
            "connect_timeout_secs": 5,
        })
    }

    fn sink(&self, table: &str) -> Box<dyn BatchProcessor> {
        build_processor("postgres_sink", self.options(table)).unwrap()
    }

    fn psql(&self, sql: &str) -> String {
        self.pg.psql(sql)
    }
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn window(begin: &str, end: &str) -> ProcessContext {
    let range = TimeRange::new(instant(begin), instant(end)).unwrap();
    ProcessContext::new("job-a").with_window(Some(range))
}

fn batch(first: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(ids.clone()))),
        ("small", Arc::new(Int8Array::from_iter(ids.iter().map(|i| Some((i % 100) as i8))))),
        ("ok", Arc::new(BooleanArray::from_iter(ids.iter().map(|i| Some(i % 2 == 0))))),
        ("ratio", Arc::new(Float64Array::from_iter(ids.iter().map(|i| Some(*i as f64 / 4.0))))),
        (
            "msg",
            Arc::new(StringArray::from_iter(
                ids.iter().map(|i| if i % 5 == 0 { None } else { Some(format!("m'é\"{i}")) }),
            )),
        ),
        (
            "target",
            Arc::new(
                ids.iter()
                    .map(|i| if i % 2 == 0 { "even" } else { "odd" })
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ),
        ("raw", Arc::new(LargeBinaryArray::from_iter_values(ids.iter().map(|i| i.to_be_bytes())))),
        ("day", Arc::new(Date32Array::from_iter_values(ids.iter().map(|i| *i as i32)))),
        (
            "time",
            Arc::new(
                TimestampNanosecondArray::from_iter_values(
                    ids.iter().map(|i| 1_700_000_000_000_000_000 + i * 1_000_000_000),
                )
                .with_timezone("+00:00"),
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Runs `processor` over `batches` in `ctx` to the end: commits, or aborts when `commit` is
/// false; returns the rows `finish` reported.
async fn run(
    processor: &mut dyn BatchProcessor,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    ctx: &ProcessContext,
    commit: bool,
) -> Result<u64, ProcessError> {
    processor.open(schema, ctx).await?;
    for batch in batches {
        processor.process(batch, ctx).await?;
    }
    let report = processor.finish(ctx).await?;
    if commit {
        processor.commit().await?;
    } else {
        processor.abort().await;
    }
    Ok(report.counts["rows_written"])
}

#[tokio::test]
async fn every_mapped_type_arrives_with_the_window_columns() {
    let f = Fixture::start();
    let rows = batch(0, 10);
    let mut sink = f.sink("events");
    let ctx = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    let written =
        run(sink.as_mut(), &rows.schema(), std::slice::from_ref(&rows), &ctx, true).await.unwrap();
    assert_eq!(written, 10);
    let got = f.psql(
        "SELECT flightline_job, flightline_begin AT TIME ZONE 'UTC', flightline_end AT TIME ZONE \
         'UTC', id, small, ok, ratio, coalesce(msg, '<null>'), target, encode(raw, 'hex'), day, \
         time AT TIME ZONE 'UTC' FROM events WHERE id IN (3, 5) ORDER BY id",
    );
    assert_eq!(
        got,
        "job-a|2024-01-01 00:00:00|2024-01-01 01:00:00|3|3|f|0.75|m'é\"3|odd|0000000000000003|\
         1970-01-04|2023-11-14 22:13:23\n\
         job-a|2024-01-01 00:00:00|2024-01-01 01:00:00|5|5|f|1.25|<null>|odd|0000000000000005|\
         1970-01-06|2023-11-14 22:13:25"
    );
    let types = f.psql(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM \
         information_schema.columns WHERE table_name = 'events'",
    );
    assert_eq!(
        types,
        "flightline_job text, flightline_begin timestamp with time zone, flightline_end \
         timestamp with time zone, id bigint, small smallint, ok boolean, ratio double \
         precision, msg text, target text, raw bytea, day date, time timestamp with time zone"
    );
}

#[tokio::test]
async fn a_rerun_of_a_window_replaces_its_rows_and_other_windows_stay() {
    let f = Fixture::start();
    let first = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    let second = window("2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z");
    let schema = batch(0, 1).schema();
    let count = |sql: &str| f.psql(sql);
    run(f.sink("t").as_mut(), &schema, &[batch(0, 100), batch(100, 50)], &first, true)
        .await
        .unwrap();
    run(f.sink("t").as_mut(), &schema, &[batch(1000, 30)], &second, true).await.unwrap();
    // The first window again, with other rows: its 150 are replaced by these 70.
    run(f.sink("t").as_mut(), &schema, &[batch(500, 70)], &first, true).await.unwrap();
    let per_window = "SELECT string_agg(n::text, ',' ORDER BY b) FROM (SELECT flightline_begin \
                      b, count(*) n FROM t GROUP BY 1) w";
    assert_eq!(count(per_window), "70,30");
    assert_eq!(count("SELECT min(id) || '-' || max(id) FROM t WHERE id < 1000"), "500-569");
    // A run without a time range is its own key: rerun, it replaces only itself.
    let whole = ProcessContext::new("job-a");
    for _ in 0..2 {
        run(f.sink("t").as_mut(), &schema, &[batch(2000, 5)], &whole, true).await.unwrap();
    }
    assert_eq!(count("SELECT count(*) FROM t WHERE flightline_begin IS NULL"), "5");
    assert_eq!(count("SELECT count(*) FROM t"), "105");
}

#[tokio::test]
async fn a_run_of_hundreds_of_thousands_of_rows_arrives_whole() {
    let f = Fixture::start();
    let ctx = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    // 50 batches of 8192 rows, as the executor hands them over.
    let batches: Vec<RecordBatch> = (0..50).map(|b| batch(b * 8192, 8192)).collect();
    let written = run(f.sink("big").as_mut(), &batches[0].schema(), &batches, &ctx, true).await;
    assert_eq!(written.unwrap(), 409_600);
    let got = f.psql(
        "SELECT count(*) || ' ' || sum(id) || ' ' || count(msg) || ' ' || count(DISTINCT \
         target) || ' ' || max(length(raw)) FROM big",
    );
    // Ids 0..409600; every fifth message NULL; two targets; 8-byte raw values.
    assert_eq!(got, format!("409600 {} 327680 2 8", 409_599u64 * 409_600 / 2));
}

#[tokio::test]
async fn an_aborted_or_dropped_run_leaves_the_earlier_rows_untouched() {
    let f = Fixture::start();
    let ctx = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    let schema = batch(0, 1).schema();
    run(f.sink("t").as_mut(), &schema, &[batch(0, 40)], &ctx, true).await.unwrap();
    run(f.sink("t").as_mut(), &schema, &[batch(100, 10)], &ctx, false).await.unwrap();
    let mut dropped = f.sink("t");
    dropped.open(&schema, &ctx).await.unwrap();
    dropped.process(&batch(200, 10), &ctx).await.unwrap();
    drop(dropped);
    // The dropped connection's rollback is the server's: wait until its backend is gone.
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
               AND pid <> pg_backend_pid()";
    for _ in 0..100 {
        if f.psql(sql) == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = f.psql("SELECT count(*) || ' ' || max(id) FROM t");
    assert_eq!(got, "40 39");
}

async fn open_error(options: serde_json::Value, rows: &RecordBatch) -> String {
    let mut sink = build_processor("postgres_sink", options).unwrap();
    let ctx = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    sink.open(&rows.schema(), &ctx).await.expect_err("open must fail").to_string()
}

#[tokio::test]
async fn bad_input_is_a_clear_error_that_never_shows_the_password() {
    let f = Fixture::start();
    let url = f.url();
    let rows = batch(0, 3);
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "not-the-password").unwrap();
    let message = open_error(
        serde_json::json!({ "url": url, "table": "t", "password_file": wrong.path() }),
        &rows,
    )
    .await;
    assert!(message.contains("password authentication failed"), "{message}");
    assert!(message.contains("flightline@127.0.0.1") && message.contains("password_file"));
    assert!(!message.contains("not-the-password"), "{message}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("postgres://flightline@127.0.0.1:{closed}/bad");
    let message = open_error(
        serde_json::json!({ "url": nowhere, "table": "t", "password_file": f.password_file.path() }),
        &rows,
    )
    .await;
    assert!(
        message.contains(&format!(
            "cannot connect to PostgreSQL at flightline@127.0.0.1:{closed}/bad"
        )),
        "{message}"
    );

    f.psql("CREATE TABLE shaped (flightline_job text, flightline_begin timestamptz, flightline_end timestamptz, id integer)");
    let message = open_error(
        f.options("shaped"),
        &RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap(),
    )
    .await;
    assert!(message.contains("\"id\" as int4") && message.contains("bigint"), "{message}");

    let unsigned =
        RecordBatch::try_from_iter([("n", Arc::new(UInt64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    let message = open_error(f.options("u"), &unsigned).await;
    assert!(message.contains("column \"n\"") && message.contains("CAST"), "{message}");

    let with_password = "postgres://flightline:hunter2@127.0.0.1:5432/bad";
    let err =
        build_processor("postgres_sink", serde_json::json!({ "url": with_password, "table": "t" }))
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("holds a password") && !err.contains("hunter2"), "{err}");
}
