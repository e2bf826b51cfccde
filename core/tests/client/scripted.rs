//! The client against scripted Flight SQL services: endpoints and locations, compression,
//! failures mid-stream, headers and tokens, prepared statements, error mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::StringArray;
use arrow::ipc::CompressionType;
use arrow_flight::FlightEndpoint;
use flightline_core::client::{
    ClientBuilder, FlightSqlClient, QueryOptions, StaticToken, TokenProvider,
};
use flightline_core::{Error, TimeRange};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Notify;

use crate::support::{
    End, Script, TestService, batch, endpoint, ids, proxy, schema, serve, within,
};

async fn connect(uri: &str) -> FlightSqlClient {
    FlightSqlClient::builder(uri).connect().await.unwrap()
}

/// Endpoint 0 on the main server, endpoints 1 and 2 on a second server (endpoint 2 first
/// lists a location the client cannot use).
async fn three_endpoints(
    first: Script,
) -> (crate::support::TestServer, crate::support::TestServer, TestService, TestService) {
    let other = TestService::new();
    other
        .script("t1", Script::new(vec![batch(3, 2), batch(5, 1)]))
        .script("t2", Script::new(vec![batch(6, 4)]));
    let other_server = serve(other.clone(), None).await;
    let main = TestService::new();
    main.script("t0", first).endpoints(vec![
        endpoint("t0"),
        endpoint("t1").with_location(other_server.uri()),
        endpoint("t2")
            .with_location("grpc+unix:///var/run/flight.sock")
            .with_location(other_server.uri()),
    ]);
    let main_server = serve(main.clone(), None).await;
    (main_server, other_server, main, other)
}

#[tokio::test]
async fn reads_every_endpoint_in_order_from_its_location() {
    let (main_server, _other_server, main, other) =
        three_endpoints(Script::new(vec![batch(0, 3)])).await;
    let client = FlightSqlClient::builder(main_server.uri())
        .header("x-tenant-id", "production")
        .connect()
        .await
        .unwrap();

    let batches = client.query("SELECT * FROM t", None).await.unwrap();
    assert_eq!(ids(&batches), (0..10).collect::<Vec<_>>());

    let main_gets: Vec<String> =
        main.calls().into_iter().filter(|c| c.method == "DoGet").map(|c| c.subject).collect();
    assert_eq!(main_gets, vec!["t0"]);
    let other_calls = other.calls();
    let other_gets: Vec<&str> = other_calls.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(other_gets, vec!["t1", "t2"]);
    // Headers go to endpoint locations too: a distributed engine's workers authenticate.
    assert!(
        other_calls
            .iter()
            .all(|c| c.headers.get("x-tenant-id").map(String::as_str) == Some("production"))
    );
}

#[tokio::test]
async fn parallel_endpoints_keep_the_order() {
    // Endpoint 0 sends nothing until endpoint 2 has been requested: read one after the other
    // this would never finish, so completing proves the fetches overlap.
    let endpoint_two_requested = Arc::new(Notify::new());
    let first = Script::new(vec![batch(0, 3)]).wait_for(Arc::clone(&endpoint_two_requested));
    let (main_server, _other_server, _main, other) = three_endpoints(first).await;
    other.script(
        "t2",
        Script::new(vec![batch(6, 4)]).on_request(Arc::clone(&endpoint_two_requested)),
    );
    let client = connect(&main_server.uri()).await;

    let options = QueryOptions::new().parallel_endpoints(3);
    let stream = client.query_stream_with("SELECT * FROM t", None, &options).await.unwrap();
    assert_eq!(stream.endpoint_count(), 3);
    assert_eq!(stream.schema().unwrap().as_ref(), schema().as_ref());
    let batches: Vec<_> = within("parallel read", stream.try_collect()).await.unwrap();
    assert_eq!(ids(&batches), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn reuse_connection_location_means_the_same_server() {
    let main = TestService::new();
    main.script("a", Script::new(vec![batch(0, 2)]))
        .script("b", Script::new(vec![batch(2, 2)]))
        .endpoints(vec![
            endpoint("a").with_location("arrow-flight-reuse-connection://?"),
            endpoint("b"),
        ]);
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;
    let batches = client.query("q", None).await.unwrap();
    assert_eq!(ids(&batches), vec![0, 1, 2, 3]);
    assert_eq!(main.calls().iter().filter(|c| c.method == "DoGet").count(), 2);
}

#[tokio::test]
async fn an_endpoint_without_a_usable_location_is_a_protocol_error() {
    let main = TestService::new();
    main.endpoints(vec![endpoint("a"), endpoint("b").with_location("s3://bucket/part-1.arrow")]);
    let server = serve(main, None).await;
    let client = connect(&server.uri()).await;
    match client.query("q", None).await {
        Err(Error::Protocol(message)) => {
            assert!(message.contains("endpoint 1"), "{message}");
            assert!(message.contains("s3://bucket/part-1.arrow"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_location_is_a_retryable_transport_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_uri = format!("grpc://{}", closed.local_addr().unwrap());
    drop(closed);
    let main = TestService::new();
    main.script("a", Script::new(vec![batch(0, 2)]))
        .endpoints(vec![endpoint("a"), endpoint("b").with_location(dead_uri.clone())]);
    let server = serve(main, None).await;
    let client = connect(&server.uri()).await;

    let mut stream = client.query_stream("q", None).await.unwrap();
    assert_eq!(ids(&[stream.next().await.unwrap().unwrap()]), vec![0, 1]);
    match stream.next().await {
        Some(Err(err @ Error::Transport { .. })) => {
            assert!(err.is_retryable());
            assert!(err.to_string().contains(&dead_uri), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn lz4_and_zstd_bodies_are_decoded() {
    for compression in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let main = TestService::new();
        main.script(
            "a",
            Script::new(vec![batch(0, 1000), batch(1000, 24)]).compression(compression),
        )
        .endpoints(vec![endpoint("a")]);
        let server = serve(main, None).await;
        let client = connect(&server.uri()).await;
        let batches = client.query("q", None).await.unwrap();
        assert_eq!(ids(&batches), (0..1024).collect::<Vec<_>>(), "{compression:?}");
        let labels = batches[1].column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(labels.value(23), "row-1023");
    }
}

#[tokio::test]
async fn a_message_larger_than_4_mib_is_accepted() {
    let big = "x".repeat(6 * 1024 * 1024);
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec![big.clone()])),
        ],
    )
    .unwrap();
    let main = TestService::new();
    main.script("a", Script::new(vec![batch]).max_message(usize::MAX))
        .endpoints(vec![endpoint("a")]);
    let server = serve(main, None).await;

    let client = connect(&server.uri()).await;
    let batches = client.query("q", None).await.unwrap();
    let labels = batches[0].column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(labels.value(0).len(), big.len());

    // The same message over a deliberately small limit fails loudly, naming the size.
    let small = FlightSqlClient::builder(server.uri())
        .max_message_size(1024 * 1024)
        .connect()
        .await
        .unwrap();
    let err = small.query("q", None).await.unwrap_err();
    assert!(err.to_string().contains("message length too large"), "{err}");
}

#[tokio::test]
async fn an_error_status_mid_stream_is_an_error_not_a_short_result() {
    let main = TestService::new();
    main.script(
        "a",
        Script::new(vec![batch(0, 2), batch(2, 2)])
            .end(End::Fail(tonic::Status::unavailable("executor lost"))),
    )
    .script("b", Script::new(vec![batch(4, 2)]))
    .endpoints(vec![endpoint("a"), endpoint("b")]);
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;

    match client.query("q", None).await {
        Err(err @ Error::Unavailable { .. }) => {
            assert!(err.to_string().contains("executor lost"));
            assert!(err.is_retryable());
        }
        other => panic!("{other:?}"),
    }

    for options in [QueryOptions::new(), QueryOptions::new().parallel_endpoints(2)] {
        let items: Vec<_> =
            client.query_stream_with("q", None, &options).await.unwrap().collect().await;
        // Two batches, then the error, and nothing of endpoint "b" after it.
        assert_eq!(items.len(), 3, "{options:?}");
        assert!(items[0].is_ok() && items[1].is_ok());
        assert!(matches!(items[2], Err(Error::Unavailable { .. })));
    }
}

#[tokio::test]
async fn a_cut_connection_mid_stream_is_a_transport_error() {
    let main = TestService::new();
    main.script("a", Script::new(vec![batch(0, 2), batch(2, 2)]).end(End::Hang))
        .endpoints(vec![endpoint("a")]);
    let server = serve(main, None).await;
    let proxy = proxy(server.addr).await;
    let client = connect(&proxy.uri()).await;

    let mut stream = client.query_stream("q", None).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(ids(&[first, second]), vec![0, 1, 2, 3]);
    proxy.cut();
    match within("the error after the cut", stream.next()).await {
        Some(Err(err)) => assert!(err.is_retryable(), "{err:?}"),
        other => panic!("a cut connection must be an error, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn direct_ticket_sends_the_sql_as_a_ticket_statement_query() {
    let main = TestService::new();
    main.accept_direct_tickets().script("SELECT 1", Script::new(vec![batch(7, 1)]));
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;
    let range = TimeRange::parse("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z").unwrap();
    let options = QueryOptions::new().direct_ticket(true).limit(5);
    let stream = client.query_stream_with("SELECT 1", Some(range), &options).await.unwrap();
    assert!(stream.schema().is_none());
    let batches: Vec<_> = stream.try_collect().await.unwrap();
    assert_eq!(ids(&batches), vec![7]);

    let calls = main.calls();
    assert_eq!(calls.len(), 1, "no GetFlightInfo on the direct path");
    assert_eq!(calls[0].method, "DoGet");
    assert_eq!(calls[0].subject, "SELECT 1");
    assert_eq!(calls[0].headers["query_range_begin"], "2024-01-01T00:00:00Z");
    assert_eq!(calls[0].headers["limit"], "5");
}

#[tokio::test]
async fn a_standard_server_refusing_direct_tickets_is_unimplemented() {
    let server = serve(TestService::new(), None).await;
    let client = connect(&server.uri()).await;
    let options = QueryOptions::new().direct_ticket(true);
    match client.query_with("SELECT 1", None, &options).await {
        Err(Error::Unimplemented { message }) => {
            assert!(message.contains("TicketStatementQuery"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn each_status_code_becomes_its_own_error() {
    let server = serve(TestService::new(), None).await;
    let client = connect(&server.uri()).await;
    type Check = fn(&Error) -> bool;
    let cases: [(&str, Check, bool); 10] = [
        ("invalid_argument", |e| matches!(e, Error::InvalidQuery { .. }), false),
        ("unauthenticated", |e| matches!(e, Error::Unauthenticated { .. }), false),
        ("permission_denied", |e| matches!(e, Error::PermissionDenied { .. }), false),
        ("not_found", |e| matches!(e, Error::NotFound { .. }), false),
        ("resource_exhausted", |e| matches!(e, Error::ResourceExhausted { .. }), false),
        ("unavailable", |e| matches!(e, Error::Unavailable { .. }), true),
        ("deadline_exceeded", |e| matches!(e, Error::Timeout { .. }), true),
        ("cancelled", |e| matches!(e, Error::Cancelled { .. }), false),
        ("unimplemented", |e| matches!(e, Error::Unimplemented { .. }), false),
        ("internal", |e| matches!(e, Error::Server { code: tonic::Code::Internal, .. }), false),
    ];
    for (code, check, retryable) in cases {
        let err = client.query(&format!("status:{code}"), None).await.unwrap_err();
        assert!(check(&err), "{code} became {err:?}");
        assert_eq!(err.is_retryable(), retryable, "{code}");
        assert!(err.to_string().contains(&format!("scripted {code}")), "{err}");
        let err = client.prepare(&format!("status:{code}")).await.unwrap_err();
        assert!(check(&err), "prepare: {code} became {err:?}");
    }
}

#[tokio::test]
async fn request_timeout_bounds_the_wait_for_an_answer() {
    let server = serve(TestService::new(), None).await;
    let client = FlightSqlClient::builder(server.uri())
        .request_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    match within("the timeout", client.query("hang", None)).await {
        Err(err @ Error::Timeout { .. }) => {
            assert!(err.to_string().contains("GetFlightInfo"), "{err}");
            assert!(err.is_retryable());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_transport_error_naming_the_uri() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("grpc://{}", closed.local_addr().unwrap());
    drop(closed);
    match FlightSqlClient::builder(&uri).connect().await {
        Err(err @ Error::Transport { .. }) => {
            assert!(err.to_string().contains(&uri), "{err}");
            assert!(err.is_retryable());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_options_are_config_errors() {
    for builder in [
        ClientBuilder::new("localhost:50051"),
        ClientBuilder::new("grpc://127.0.0.1:1").header("bad header", "v"),
        ClientBuilder::new("grpc://127.0.0.1:1").tls_domain("localhost"),
        ClientBuilder::new("grpc+tls://127.0.0.1:1").tls_ca_file("/nonexistent/ca.pem"),
    ] {
        let shown = format!("{builder:?}");
        assert!(matches!(builder.connect().await, Err(Error::Config(_))), "{shown}");
    }
}

#[tokio::test]
async fn concurrent_calls_carry_their_own_time_range() {
    let main = TestService::new();
    main.endpoints(vec![]);
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;

    let queries = (0..8).map(|day| {
        let client = client.clone();
        async move {
            let begin = format!("2024-01-{:02}T00:00:00Z", day + 1);
            let end = format!("2024-01-{:02}T00:00:00.000000001Z", day + 2);
            let range = TimeRange::parse(&begin, &end).unwrap();
            client.query(&format!("q{day}"), Some(range)).await.unwrap();
            (format!("q{day}"), begin, end)
        }
    });
    let expected = futures::future::join_all(queries).await;
    let calls = main.calls();
    assert_eq!(calls.len(), 8);
    for (query, begin, end) in expected {
        let call = calls.iter().find(|c| c.subject == query).unwrap();
        assert_eq!(call.headers["query_range_begin"], begin, "{query}");
        assert_eq!(call.headers["query_range_end"], end, "{query}");
    }
    // A call without a range sends no range headers, whatever ran before on this client.
    client.query("plain", None).await.unwrap();
    let plain = main.calls().into_iter().find(|c| c.subject == "plain").unwrap();
    assert!(!plain.headers.contains_key("query_range_begin"));
}

/// Counts its calls and hands out a new token each time.
struct RotatingToken {
    calls: AtomicUsize,
}

impl TokenProvider for RotatingToken {
    fn token(&self) -> BoxFuture<'_, flightline_core::Result<String>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(format!("token-{n}"))
        })
    }
}

#[tokio::test]
async fn the_token_provider_is_asked_before_every_request() {
    let main = TestService::new();
    main.script("a", Script::new(vec![batch(0, 1)])).endpoints(vec![endpoint("a")]);
    let server = serve(main.clone(), None).await;
    let provider = Arc::new(RotatingToken { calls: AtomicUsize::new(0) });
    let client = FlightSqlClient::builder(server.uri())
        .bearer_token("static-token-loses")
        .token_provider(provider.clone())
        .connect()
        .await
        .unwrap();
    client.query("q", None).await.unwrap();
    client.query("q", None).await.unwrap();
    assert_eq!(provider.calls.load(Ordering::SeqCst), 4);
    let tokens: Vec<String> =
        main.calls().into_iter().map(|c| c.headers["authorization"].clone()).collect();
    assert_eq!(
        tokens,
        vec!["Bearer token-1", "Bearer token-2", "Bearer token-3", "Bearer token-4"]
    );
    assert!(!format!("{client:?}").contains("static-token-loses"));
}

#[tokio::test]
async fn a_failing_token_provider_stops_the_call() {
    struct Broken;
    impl TokenProvider for Broken {
        fn token(&self) -> BoxFuture<'_, flightline_core::Result<String>> {
            Box::pin(async { Err(Error::Config("token service down".into())) })
        }
    }
    let main = TestService::new();
    let server = serve(main.clone(), None).await;
    let client = FlightSqlClient::builder(server.uri())
        .token_provider(Arc::new(Broken))
        .connect()
        .await
        .unwrap();
    assert!(matches!(
        client.query("q", None).await,
        Err(Error::Config(m)) if m == "token service down"
    ));
    assert!(main.calls().is_empty());
}

#[tokio::test]
async fn static_headers_and_tokens_authenticate() {
    let main = TestService::new();
    main.require_token("s3cret").endpoints(vec![]);
    let server = serve(main.clone(), None).await;

    let anonymous = connect(&server.uri()).await;
    assert!(matches!(anonymous.query("q", None).await, Err(Error::Unauthenticated { .. })));
    let by_header = FlightSqlClient::builder(server.uri())
        .header("authorization", "Bearer s3cret")
        .connect()
        .await
        .unwrap();
    assert!(by_header.query("q", None).await.unwrap().is_empty());
    let by_provider = FlightSqlClient::builder(server.uri())
        .token_provider(Arc::new(StaticToken::new("s3cret")))
        .connect()
        .await
        .unwrap();
    assert!(by_provider.query("q", None).await.unwrap().is_empty());
    let per_call = QueryOptions::new().header("authorization", "Bearer s3cret");
    assert!(anonymous.query_with("q", None, &per_call).await.unwrap().is_empty());
}

#[tokio::test]
async fn prepare_reads_schemas_and_closes_the_statement() {
    let main = TestService::new();
    let server = serve(main.clone(), None).await;
    let client =
        FlightSqlClient::builder(server.uri()).header("x-tenant-id", "t").connect().await.unwrap();
    let prepared = client.prepare("SELECT id, label FROM t").await.unwrap();
    assert_eq!(prepared.dataset_schema.as_ref(), schema().as_ref());
    assert_eq!(prepared.parameter_schema.fields().len(), 0);
    assert_eq!(prepared.handle.as_ref(), b"h:SELECT id, label FROM t");
    assert_eq!(main.closed(), vec![prepared.handle.clone()]);
    let methods: Vec<&str> = main.calls().iter().map(|c| c.method).collect();
    assert_eq!(methods, vec!["CreatePreparedStatement", "ClosePreparedStatement"]);
    assert!(main.calls().iter().all(|c| c.headers["x-tenant-id"] == "t"));
    // Nothing was executed.
    assert!(main.calls().iter().all(|c| c.method != "DoGet"));
}

#[tokio::test]
async fn prepare_closes_the_statement_even_when_its_schema_is_unreadable() {
    let main = TestService::new();
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;
    let err = client.prepare("bad-schema SELECT 1").await.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(message) if message.contains("dataset schema")),
        "{err:?}"
    );
    assert_eq!(main.closed(), vec![bytes::Bytes::from_static(b"h:bad-schema SELECT 1")]);
}

#[tokio::test]
async fn prepare_tolerates_a_server_that_cannot_close() {
    let main = TestService::new();
    main.close_unimplemented();
    let server = serve(main.clone(), None).await;
    let client = connect(&server.uri()).await;
    let prepared = client
        .prepare_with("SELECT 1", &QueryOptions::new().preserve_dictionary(true))
        .await
        .unwrap();
    assert_eq!(prepared.dataset_schema.fields().len(), 2);
    assert!(main.closed().is_empty());
    assert_eq!(
        main.calls()[0].headers.get("preserve_dictionary").map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn a_result_without_endpoints_is_empty() {
    let main = TestService::new();
    main.endpoints(Vec::<FlightEndpoint>::new());
    let server = serve(main, None).await;
    let client = connect(&server.uri()).await;
    let stream = client.query_stream("q", None).await.unwrap();
    assert_eq!(stream.endpoint_count(), 0);
    assert_eq!(stream.schema().unwrap().fields().len(), 2);
    assert!(client.query("q", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_client_is_cheap_to_clone_and_shares_its_connection() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    let main = TestService::new();
    main.script("a", Script::new(vec![batch(0, 1)])).endpoints(vec![endpoint("a")]);
    let server = serve(main, None).await;
    let client = connect(&server.uri()).await;
    assert_send_sync(&client);
    let clone = client.clone();
    let handle = tokio::spawn(async move { clone.query("q", None).await.unwrap() });
    assert_eq!(ids(&handle.await.unwrap()), vec![0]);
    assert_eq!(client.uri(), server.uri());
}
