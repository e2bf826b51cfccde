//! The client against the real embedded Flightline server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, TimestampNanosecondType};
use chrono::{DateTime, Duration, Utc};
use flightline_core::client::{FlightSqlClient, QueryOptions, TokenProvider};
use flightline_core::{Error, TimeRange};
use flightline_server::{RunningServer, ServerBuilder};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};

use crate::support::pki;

const ROWS: u64 = 5_000;

fn demo_end() -> DateTime<Utc> {
    "2024-01-08T00:00:00Z".parse().unwrap()
}

fn demo() -> ServerBuilder {
    ServerBuilder::new()
        .demo_rows(ROWS)
        .seed(42)
        .demo_end(demo_end())
        .demo_window(Duration::days(7))
}

async fn start(builder: ServerBuilder) -> RunningServer {
    builder.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn connect(server: &RunningServer) -> FlightSqlClient {
    FlightSqlClient::builder(server.uri()).connect().await.unwrap()
}

/// The single integer of a one-row, one-column result.
fn scalar(batches: &[RecordBatch]) -> i64 {
    let values: Vec<i64> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0))
        .collect();
    assert_eq!(values.len(), 1, "{batches:?}");
    values[0]
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn query_and_query_stream_read_the_demo_tables() {
    let server = start(demo()).await;
    let client = connect(&server).await;

    let batches = client
        .query("SELECT level, count(*) AS n FROM log_entries GROUP BY level", None)
        .await
        .unwrap();
    let total: i64 = batches
        .iter()
        .flat_map(|b| b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
        .sum();
    assert_eq!(total, ROWS as i64);

    let stream = client.query_stream("SELECT time, name, value FROM measures", None).await.unwrap();
    assert_eq!(stream.schema().unwrap().fields().len(), 3);
    let streamed: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    assert_eq!(rows(&streamed), ROWS as usize);

    let direct = client
        .query_with(
            "SELECT count(*) FROM log_entries",
            None,
            &QueryOptions::new().direct_ticket(true),
        )
        .await
        .unwrap();
    assert_eq!(scalar(&direct), ROWS as i64);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_queries_with_different_ranges_get_their_own_rows() {
    let server = start(demo()).await;
    let client = connect(&server).await;

    let days = (0..7).map(|day| {
        let client = client.clone();
        async move {
            let begin = demo_end() - Duration::days(7 - day);
            let end = begin + Duration::days(1);
            let range = TimeRange::new(begin, end).unwrap();
            let ranged =
                client.query_stream("SELECT time FROM log_entries", Some(range)).await.unwrap();
            let batches: Vec<RecordBatch> = ranged.try_collect().await.unwrap();
            for batch in &batches {
                let times = batch.column(0).as_primitive::<TimestampNanosecondType>();
                for t in times.values().iter() {
                    assert!(*t >= begin.timestamp_nanos_opt().unwrap(), "day {day}");
                    assert!(*t < end.timestamp_nanos_opt().unwrap(), "day {day}");
                }
            }
            let sql = format!(
                "SELECT count(*) FROM log_entries WHERE time >= '{}' AND time < '{}'",
                range.begin_rfc3339(),
                range.end_rfc3339()
            );
            let expected = scalar(&client.query(&sql, None).await.unwrap());
            let counted = scalar(
                &client.query("SELECT count(*) FROM log_entries", Some(range)).await.unwrap(),
            );
            (rows(&batches) as i64, counted, expected)
        }
    });
    let results = futures::future::join_all(days).await;
    let mut sum = 0;
    for (day, (streamed, counted, expected)) in results.into_iter().enumerate() {
        assert!(expected > 0, "day {day} has no rows");
        assert_eq!(streamed, expected, "day {day}");
        assert_eq!(counted, expected, "day {day}");
        sum += expected;
    }
    assert_eq!(sum, ROWS as i64, "the seven days cover the demo window");
    server.shutdown().await.unwrap();
}

struct CountingToken {
    token: String,
    calls: AtomicUsize,
}

impl TokenProvider for CountingToken {
    fn token(&self) -> BoxFuture<'_, flightline_core::Result<String>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.token.clone())
        })
    }
}

#[tokio::test]
async fn authentication_by_header_api_key_and_provider() {
    let server = start(demo().token("s3cret")).await;
    let uri = server.uri();
    let sql = "SELECT count(*) FROM processes";

    let anonymous = FlightSqlClient::builder(&uri).connect().await.unwrap();
    match anonymous.query(sql, None).await {
        Err(err @ Error::Unauthenticated { .. }) => assert!(!err.is_retryable()),
        other => panic!("{other:?}"),
    }
    let wrong = FlightSqlClient::builder(&uri).bearer_token("nope").connect().await.unwrap();
    assert!(matches!(wrong.query(sql, None).await, Err(Error::Unauthenticated { .. })));
    assert!(matches!(wrong.prepare(sql).await, Err(Error::Unauthenticated { .. })));

    let by_header = FlightSqlClient::builder(&uri)
        .header("authorization", "Bearer s3cret")
        .header("x-tenant-id", "production")
        .connect()
        .await
        .unwrap();
    assert_eq!(scalar(&by_header.query(sql, None).await.unwrap()), 8);
    let by_key = FlightSqlClient::builder(&uri).api_key("s3cret").connect().await.unwrap();
    assert_eq!(scalar(&by_key.query(sql, None).await.unwrap()), 8);

    let provider = Arc::new(CountingToken { token: "s3cret".into(), calls: AtomicUsize::new(0) });
    let by_provider =
        FlightSqlClient::builder(&uri).token_provider(provider.clone()).connect().await.unwrap();
    assert_eq!(scalar(&by_provider.query(sql, None).await.unwrap()), 8);
    let after_first = provider.calls.load(Ordering::SeqCst);
    assert_eq!(after_first, 2, "GetFlightInfo and DoGet each ask for a token");
    by_provider.query(sql, None).await.unwrap();
    by_provider.prepare(sql).await.unwrap();
    assert_eq!(provider.calls.load(Ordering::SeqCst), after_first + 2 + 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_errors_are_typed() {
    let server = start(demo()).await;
    let client = connect(&server).await;

    match client.query("SELEC level FROM log_entries", None).await {
        Err(Error::InvalidQuery { message }) => assert!(message.contains("SELEC"), "{message}"),
        other => panic!("{other:?}"),
    }
    match client.query("SELECT * FROM no_such_table", None).await {
        Err(Error::InvalidQuery { message }) => {
            assert!(message.contains("no_such_table"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match client.prepare("SELECT nope FROM log_entries").await {
        Err(Error::InvalidQuery { message }) => assert!(message.contains("nope"), "{message}"),
        other => panic!("{other:?}"),
    }
    let bad_limit = QueryOptions::new().header("limit", "ten");
    assert!(matches!(
        client.query_with("SELECT 1", None, &bad_limit).await,
        Err(Error::InvalidQuery { .. })
    ));
    let bad_range = QueryOptions::new()
        .header("query_range_begin", "yesterday")
        .header("query_range_end", "today");
    assert!(matches!(
        client.query_with("SELECT 1", None, &bad_range).await,
        Err(Error::InvalidQuery { .. })
    ));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_value_larger_than_4_mib_arrives_whole() {
    let server = start(demo()).await;
    let client = connect(&server).await;
    let size = 6 * 1024 * 1024;
    let batches = client.query(&format!("SELECT repeat('x', {size}) AS big"), None).await.unwrap();
    let big = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .unwrap()
        .column(0)
        .as_string::<i32>()
        .value(0)
        .len();
    assert_eq!(big, size);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn prepare_limit_and_preserve_dictionary() {
    let server = start(demo()).await;
    let client = connect(&server).await;
    let sql = "SELECT level, target, msg FROM log_entries";

    let prepared = client.prepare(sql).await.unwrap();
    let types: Vec<DataType> =
        prepared.dataset_schema.fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types, vec![DataType::Int32, DataType::Utf8, DataType::Utf8]);
    assert_eq!(prepared.parameter_schema.fields().len(), 0);
    assert_eq!(prepared.handle.as_ref(), sql.as_bytes());

    let dictionary = QueryOptions::new().preserve_dictionary(true);
    let prepared = client.prepare_with(sql, &dictionary).await.unwrap();
    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    assert_eq!(prepared.dataset_schema.field(1).data_type(), &dict_type);

    let limited = dictionary.clone().limit(7);
    let batches = client.query_with(sql, None, &limited).await.unwrap();
    assert_eq!(rows(&batches), 7);
    let target = batches.iter().find(|b| b.num_rows() > 0).unwrap().column(1);
    assert_eq!(target.data_type(), &dict_type);
    assert!(!target.as_dictionary::<Int32Type>().values().is_empty());

    let flat = client.query_with(sql, None, &QueryOptions::new().limit(3)).await.unwrap();
    assert_eq!(rows(&flat), 3);
    assert_eq!(flat[0].schema().field(1).data_type(), &DataType::Utf8);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_with_a_generated_ca() {
    let pki = pki();
    let server = start(demo().tls(pki.cert_pem.clone(), pki.key_pem.clone())).await;
    assert!(server.uri().starts_with("grpc+tls://"), "{}", server.uri());
    let port = server.local_addr().port();
    let client = FlightSqlClient::builder(format!("grpc+tls://localhost:{port}"))
        .tls_ca_pem(pki.ca_pem.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(
        scalar(&client.query("SELECT count(*) FROM log_entries", None).await.unwrap()),
        ROWS as i64
    );
    let untrusted = FlightSqlClient::builder(format!("grpc+tls://localhost:{port}"))
        .tls_ca_pem(crate::support::pki().ca_pem)
        .connect()
        .await;
    assert!(matches!(untrusted, Err(Error::Connect { .. })), "{untrusted:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn from_env_reads_uri_and_token() {
    let server = start(demo().token("env-token")).await;
    // SAFETY: no other test in this binary reads or writes these variables.
    unsafe {
        std::env::set_var("FLIGHTLINE_URI", server.uri());
        std::env::set_var("FLIGHTLINE_TOKEN", "env-token");
    }
    let client = FlightSqlClient::from_env().await.unwrap();
    assert_eq!(client.uri(), server.uri());
    assert!(!format!("{client:?}").contains("env-token"));
    let mut stream = client.query_stream("SELECT count(*) FROM processes", None).await.unwrap();
    let mut seen = Vec::new();
    while let Some(batch) = stream.next().await {
        seen.push(batch.unwrap());
    }
    assert_eq!(scalar(&seen), 8);
    unsafe {
        std::env::remove_var("FLIGHTLINE_URI");
        std::env::remove_var("FLIGHTLINE_TOKEN");
    }
    server.shutdown().await.unwrap();
}
