//! The embedded server driven over loopback by arrow-flight's own Flight SQL client.

mod common;

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimestampNanosecondType};
use arrow_flight::sql::{Any, CommandGetTables, ProstMessageExt, SqlInfo};
use chrono::{DateTime, Duration, Utc};
use common::{client, fetch, run, single_i64, sql_ticket, status};
use flightline_server::{RunningServer, ServerBuilder};
use futures::TryStreamExt;
use prost::Message;

const ROWS: u64 = 50_000;

fn demo_end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

async fn server(builder: ServerBuilder) -> RunningServer {
    builder
        .demo_rows(ROWS)
        .seed(7)
        .demo_end(demo_end())
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn both_ticket_paths_return_the_same_rows() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    let sql = "SELECT level, count(*) AS n FROM log_entries GROUP BY level ORDER BY level";
    let via_info = run(&mut c, sql).await.unwrap();
    let direct: Vec<RecordBatch> =
        c.do_get(sql_ticket(sql)).await.unwrap().try_collect().await.unwrap();
    assert_eq!(via_info, direct);
    let levels = arrow::compute::concat_batches(&via_info[0].schema(), &via_info).unwrap();
    let total: i64 = levels.column(1).as_primitive::<Int64Type>().values().iter().sum();
    assert_eq!(total, ROWS as i64);
    assert!(levels.num_rows() <= 6 && levels.num_rows() >= 4, "levels 1..6 only");
    assert_eq!(
        single_i64(&run(&mut c, "SELECT count(*) FROM measures").await.unwrap()),
        ROWS as i64
    );
    assert_eq!(rows(&run(&mut c, "SELECT * FROM processes").await.unwrap()), 8);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn prepared_schema_equals_executed_schema_without_running() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    for sql in [
        "SELECT * FROM log_entries LIMIT 3",
        "SELECT target, count(*) AS n, max(time) AS last FROM log_entries GROUP BY target",
        "SELECT name, avg(value) FROM measures GROUP BY name",
    ] {
        let prepared = c.prepare(sql.to_string(), None).await.unwrap();
        let planned = prepared.dataset_schema().unwrap().clone();
        let batches = run(&mut c, sql).await.unwrap();
        assert_eq!(&planned, batches[0].schema().as_ref(), "{sql}");
        prepared.close().await.unwrap();
    }
    // By default the dictionary column travels as plain strings.
    let p = c.prepare("SELECT target FROM log_entries".into(), None).await.unwrap();
    assert_eq!(p.dataset_schema().unwrap().field(0).data_type(), &DataType::Utf8);
}

#[tokio::test]
async fn prepared_statement_flow_like_adbc() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    let mut p =
        c.prepare("SELECT count(*) FROM log_entries WHERE level <= 2".into(), None).await.unwrap();
    let info = p.execute().await.unwrap();
    let batches = fetch(&mut c, info).await.unwrap();
    let errors = single_i64(&batches);
    assert!(errors > 0 && errors < ROWS as i64 / 10, "errors are rare: {errors}");
}

#[tokio::test]
async fn time_range_headers_filter_every_time_table() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    let begin = demo_end() - Duration::hours(30);
    let end = demo_end() - Duration::hours(6);
    let by_where = single_i64(
        &run(
            &mut c,
            &format!(
                "SELECT count(*) FROM log_entries WHERE time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}'",
                begin.format("%Y-%m-%dT%H:%M:%S"),
                end.format("%Y-%m-%dT%H:%M:%S")
            ),
        )
        .await
        .unwrap(),
    );
    assert!(by_where > 0 && by_where < ROWS as i64);

    // The same range as headers, with a non-UTC offset on one end and nanoseconds on the other.
    c.set_header(
        "query_range_begin",
        begin.with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap()).to_rfc3339(),
    );
    c.set_header("query_range_end", end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    assert_eq!(
        single_i64(&run(&mut c, "SELECT count(*) FROM log_entries").await.unwrap()),
        by_where
    );

    let batches = run(&mut c, "SELECT time FROM log_entries").await.unwrap();
    assert_eq!(rows(&batches) as i64, by_where);
    for b in &batches {
        for t in b.column(0).as_primitive::<TimestampNanosecondType>().values() {
            assert!(
                *t >= begin.timestamp_nanos_opt().unwrap()
                    && *t < end.timestamp_nanos_opt().unwrap()
            );
        }
    }
    let m = single_i64(&run(&mut c, "SELECT count(*) FROM measures").await.unwrap());
    assert!(m > 0 && m < ROWS as i64, "measures is filtered too: {m}");
    // processes has no time column: untouched.
    assert_eq!(rows(&run(&mut c, "SELECT * FROM processes").await.unwrap()), 8);
    // Only one end given: no filter.
    c.set_header("query_range_end", "");
    assert_eq!(
        single_i64(&run(&mut c, "SELECT count(*) FROM log_entries").await.unwrap()),
        ROWS as i64
    );
}

#[tokio::test]
async fn time_pruning_never_drops_a_matching_row() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    let begin = (demo_end() - Duration::hours(50)).format("%Y-%m-%dT%H:%M:%S%.9f");
    let end = (demo_end() - Duration::minutes(7)).format("%Y-%m-%dT%H:%M:%S%.9f");
    // `time` compared to a literal is pushed into the demo table and prunes chunks; the
    // same predicate on an expression of `time` cannot be pushed and scans every row.
    let pruned =
        format!("SELECT count(*) FROM log_entries WHERE time >= '{begin}' AND time < '{end}'");
    let full = format!(
        "SELECT count(*) FROM log_entries WHERE time + INTERVAL '0 seconds' >= '{begin}' \
         AND time + INTERVAL '0 seconds' < '{end}'"
    );
    let between =
        format!("SELECT count(*) FROM log_entries WHERE time BETWEEN '{begin}' AND '{end}'");
    let n = single_i64(&run(&mut c, &pruned).await.unwrap());
    assert!(n > 0 && n < ROWS as i64);
    assert_eq!(n, single_i64(&run(&mut c, &full).await.unwrap()));
    let b = single_i64(&run(&mut c, &between).await.unwrap());
    assert!(b == n || b == n + 1, "BETWEEN includes the end: {b} vs {n}");
}

#[tokio::test]
async fn out_of_range_instants_clamp_instead_of_matching_nothing() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    c.set_header("query_range_begin", "1000-01-01T00:00:00Z");
    c.set_header("query_range_end", "9999-12-31T23:59:59Z");
    assert_eq!(
        single_i64(&run(&mut c, "SELECT count(*) FROM log_entries").await.unwrap()),
        ROWS as i64
    );
}

#[tokio::test]
async fn over_the_memory_limit_is_resource_exhausted_and_the_server_lives_on() {
    let s = ServerBuilder::new()
        .demo_rows(200_000)
        .memory_limit(1 << 20)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut c = client(&s).await;
    let err = run(&mut c, "SELECT msg FROM log_entries ORDER BY msg").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("memory pool"), "{err}");
    // Streaming needs no pool: the same server still answers a full scan.
    assert_eq!(rows(&run(&mut c, "SELECT msg FROM log_entries").await.unwrap()), 200_000);
}

#[tokio::test]
async fn limit_and_preserve_dictionary_headers() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    c.set_header("limit", "17");
    assert_eq!(rows(&run(&mut c, "SELECT msg FROM log_entries").await.unwrap()), 17);
    c.set_header("preserve_dictionary", "true");
    let b = run(&mut c, "SELECT target FROM log_entries").await.unwrap();
    assert!(matches!(b[0].schema().field(0).data_type(), DataType::Dictionary(_, _)));
    c.set_header("preserve_dictionary", "false");
    let b = run(&mut c, "SELECT target FROM log_entries").await.unwrap();
    assert_eq!(b[0].column(0).data_type(), &DataType::Utf8);
    assert!(b[0].column(0).as_string::<i32>().value(0).contains("::"));
}

#[tokio::test]
async fn errors_carry_grpc_codes() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    for (sql, needle) in [
        ("SELEC nonsense", "SELEC"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT no_such_column FROM log_entries", "no_such_column"),
        ("CREATE TABLE t AS SELECT 1", "DDL"),
        ("INSERT INTO processes SELECT * FROM processes", "DML"),
    ] {
        let err = run(&mut c, sql).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{sql}: {err}");
        assert!(err.message().contains(needle), "{sql}: {}", err.message());
        assert!(!err.message().is_empty());
        // The Micromegas path reports the same.
        let err = match c.do_get(sql_ticket(sql)).await {
            Err(e) => status(e),
            Ok(stream) => status(stream.try_collect::<Vec<_>>().await.unwrap_err()),
        };
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{sql}");
    }
    c.set_header("query_range_begin", "last tuesday");
    c.set_header("query_range_end", "2025-01-01T00:00:00Z");
    let err = run(&mut c, "SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("query_range_begin"));

    let err = c.get_primary_keys(Default::default()).await.map_err(status).unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    // The connection survives every error.
    let mut c = client(&s).await;
    assert_eq!(single_i64(&run(&mut c, "SELECT count(*) FROM processes").await.unwrap()), 8);
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let s = server(ServerBuilder::new().token("s3cret").token("other")).await;
    let mut c = client(&s).await;
    let err = run(&mut c, "SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    c.set_header("authorization", "Bearer wrong");
    assert_eq!(run(&mut c, "SELECT 1").await.unwrap_err().code(), tonic::Code::Unauthenticated);
    c.set_header("authorization", "Bearer s3cret");
    assert_eq!(single_i64(&run(&mut c, "SELECT count(*) FROM processes").await.unwrap()), 8);

    let mut k = client(&s).await;
    k.set_header("x-api-key", "other");
    assert_eq!(single_i64(&run(&mut k, "SELECT count(*) FROM processes").await.unwrap()), 8);
    let prepared = k.prepare("SELECT 1 AS one".into(), None).await.unwrap();
    assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "one");
}

#[tokio::test]
async fn metadata_commands_list_tables_and_info() {
    let s = server(ServerBuilder::new()).await;
    let mut c = client(&s).await;
    let info = c
        .get_tables(CommandGetTables { include_schema: true, ..Default::default() })
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await.unwrap();
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let names: Vec<&str> =
        b.column_by_name("table_name").unwrap().as_string::<i32>().iter().flatten().collect();
    for t in ["log_entries", "measures", "processes"] {
        assert!(names.contains(&t), "{names:?}");
    }
    let info = c
        .get_sql_info(vec![SqlInfo::FlightSqlServerName, SqlInfo::FlightSqlServerReadOnly])
        .await
        .unwrap();
    let b = fetch(&mut c, info).await.unwrap();
    assert_eq!(rows(&b), 2);
    for info in [
        c.get_catalogs().await.unwrap(),
        c.get_db_schemas(Default::default()).await.unwrap(),
        c.get_table_types().await.unwrap(),
    ] {
        assert_eq!(rows(&fetch(&mut c, info).await.unwrap()), 1);
    }
    let any = Any::decode(&*CommandGetTables::default().as_any().encode_to_vec()).unwrap();
    assert!(any.is::<CommandGetTables>());
}

#[tokio::test]
async fn user_tables_from_csv_ndjson_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    std::fs::write(&csv, "region,amount\neu,10\nus,32\neu,5\n").unwrap();
    let json = dir.path().join("events.ndjson");
    std::fs::write(&json, "{\"kind\":\"a\",\"n\":1}\n{\"kind\":\"b\",\"n\":2}\n").unwrap();
    let parquet = dir.path().join("nums.parquet");
    let batch = RecordBatch::try_from_iter([
        ("x", Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3, 4])) as Arc<dyn Array>),
        ("s", Arc::new(arrow::array::StringArray::from(vec!["a", "b", "c", "d"])) as _),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&parquet).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let s = ServerBuilder::new()
        .demo_rows(0)
        .table("sales", &csv)
        .table("events", &json)
        .table("nums", &parquet)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut c = client(&s).await;
    let b = run(&mut c, "SELECT sum(amount) FROM sales WHERE region = 'eu'").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 15);
    assert_eq!(rows(&run(&mut c, "SELECT * FROM events").await.unwrap()), 2);
    assert_eq!(single_i64(&run(&mut c, "SELECT sum(x) FROM nums").await.unwrap()), 10);
    // Strings from Parquet travel as Utf8, which every client reads (pyarrow's compute
    // kernels cannot filter Utf8View), not as the Utf8View DataFusion reads them into.
    let strings = run(&mut c, "SELECT s FROM nums").await.unwrap();
    assert_eq!(strings[0].schema().field(0).data_type(), &arrow::datatypes::DataType::Utf8);
    let err = run(&mut c, "SELECT * FROM log_entries").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "no demo tables with demo_rows(0)");

    // In memory, the table answers the same, and no longer needs its file.
    let in_memory = ServerBuilder::new()
        .demo_rows(0)
        .table("nums", &parquet)
        .tables_in_memory(true)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    std::fs::remove_file(&parquet).unwrap();
    let mut m = client(&in_memory).await;
    assert_eq!(single_i64(&run(&mut m, "SELECT sum(x) FROM nums").await.unwrap()), 10);
    assert_eq!(
        single_i64(&run(&mut m, "SELECT count(*) FROM nums WHERE s > 'b'").await.unwrap()),
        2
    );

    let bad = ServerBuilder::new()
        .table("x", dir.path().join("missing.parquet"))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await;
    assert!(bad.unwrap_err().to_string().contains("missing.parquet"));
}
