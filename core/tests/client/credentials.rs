//! Which headers arrive where: credentials go to the server itself and to the hosts the caller
//! trusts, never in clear behind a TLS server; and errors that say whether to retry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flightline_core::Error;
use flightline_core::client::{ClientBuilder, FlightSqlClient, QueryOptions, TokenProvider};
use flightline_core::error::ConnectErrorKind;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Notify;

use crate::support::{
    Call, End, Script, TestServer, TestService, batch, endpoint, ids, pki, serve, within,
};

const SECRETS: [&str; 3] = ["authorization", "x-api-key", "x-amz-security-token"];

/// Endpoint "t0" on the main server, "t1" on another server (plain gRPC) named by its URI.
struct TwoServers {
    main: TestService,
    other: TestService,
    main_server: TestServer,
    other_server: TestServer,
}

async fn two_servers(main_tls: Option<(String, String)>) -> TwoServers {
    let other = TestService::new();
    other.script("t1", Script::new(vec![batch(2, 2)]));
    let other_server = serve(other.clone(), None).await;
    let main = TestService::new();
    main.script("t0", Script::new(vec![batch(0, 2)]))
        .endpoints(vec![endpoint("t0"), endpoint("t1").with_location(other_server.uri())]);
    let main_server = serve(main.clone(), main_tls).await;
    TwoServers { main, other, main_server, other_server }
}

fn with_secrets(builder: ClientBuilder) -> ClientBuilder {
    builder
        .bearer_token("hunter2")
        .api_key("key-123")
        .header("x-amz-security-token", "sts-456")
        .header("x-tenant-id", "production")
}

fn secrets_seen(calls: &[Call]) -> Vec<&str> {
    let mut seen: Vec<&str> = calls
        .iter()
        .flat_map(|c| SECRETS.iter().copied().filter(|name| c.headers.contains_key(*name)))
        .collect();
    seen.dedup();
    seen
}

#[tokio::test]
async fn credentials_go_to_the_server_itself_only_by_default() {
    let servers = two_servers(None).await;
    let client =
        with_secrets(FlightSqlClient::builder(servers.main_server.uri())).connect().await.unwrap();
    // A secret header given for one call is a credential too.
    let options = QueryOptions::new().header("x-session-id", "sess-789");
    let batches = client.query_with("q", None, &options).await.unwrap();
    assert_eq!(ids(&batches), vec![0, 1, 2, 3]);

    let main_calls = servers.main.calls();
    assert_eq!(main_calls.len(), 2, "GetFlightInfo and DoGet t0");
    for call in &main_calls {
        assert_eq!(call.headers["authorization"], "Bearer hunter2");
        assert_eq!(call.headers["x-api-key"], "key-123");
        assert_eq!(call.headers["x-amz-security-token"], "sts-456");
        assert_eq!(call.headers["x-session-id"], "sess-789");
    }
    let other_calls = servers.other.calls();
    assert_eq!(other_calls.len(), 1, "DoGet t1");
    assert_eq!(secrets_seen(&other_calls), Vec::<&str>::new(), "{other_calls:?}");
    assert!(!other_calls[0].headers.contains_key("x-session-id"), "{other_calls:?}");
    // Headers that are not credentials still travel: a distributed engine's workers route on
    // the tenant.
    assert_eq!(other_calls[0].headers["x-tenant-id"], "production");
}

/// Counts its calls.
struct CountingToken(AtomicUsize);

impl TokenProvider for CountingToken {
    fn token(&self) -> BoxFuture<'_, flightline_core::Result<String>> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok("fresh-token".to_string())
        })
    }
}

#[tokio::test]
async fn the_token_provider_is_not_asked_for_other_hosts() {
    let servers = two_servers(None).await;
    let provider = Arc::new(CountingToken(AtomicUsize::new(0)));
    let client = FlightSqlClient::builder(servers.main_server.uri())
        .token_provider(provider.clone())
        .connect()
        .await
        .unwrap();
    client.query("q", None).await.unwrap();
    assert_eq!(provider.0.load(Ordering::SeqCst), 2, "GetFlightInfo and DoGet t0 only");
    assert!(
        servers.main.calls().iter().all(|c| c.headers["authorization"] == "Bearer fresh-token")
    );
    assert_eq!(secrets_seen(&servers.other.calls()), Vec::<&str>::new());
}

#[tokio::test]
async fn listed_hosts_and_everywhere_receive_credentials() {
    let servers = two_servers(None).await;
    let port = servers.other_server.addr.port();
    let cases = [
        (vec![format!("127.0.0.1:{port}")], false, true),
        (vec!["127.0.0.1".to_string()], false, true),
        (vec![format!("127.0.0.1:{}", port.wrapping_add(1))], false, false),
        (vec!["other-host".to_string()], false, false),
        (vec![], true, true),
    ];
    for (hosts, everywhere, expected) in cases {
        let before = servers.other.calls().len();
        let client = with_secrets(FlightSqlClient::builder(servers.main_server.uri()))
            .credential_hosts(hosts.clone())
            .send_credentials_to_all_locations(everywhere)
            .connect()
            .await
            .unwrap();
        client.query("q", None).await.unwrap();
        let calls = servers.other.calls();
        let seen = secrets_seen(&calls[before..]);
        let expected_seen = if expected { SECRETS.to_vec() } else { Vec::new() };
        assert_eq!(seen, expected_seen, "{hosts:?} everywhere={everywhere}");
    }
}

#[tokio::test]
async fn a_plaintext_location_behind_tls_is_refused_unless_allowed() {
    let pki = pki();
    let servers = two_servers(Some((pki.cert_pem.clone(), pki.key_pem.clone()))).await;
    let uri = format!("grpc+tls://localhost:{}", servers.main_server.addr.port());
    let builder = with_secrets(FlightSqlClient::builder(&uri)).tls_ca_pem(pki.ca_pem.clone());

    let client = builder.clone().connect().await.unwrap();
    match client.query("q", None).await {
        Err(err @ Error::InsecureLocation { endpoint: 1, .. }) => {
            assert!(err.to_string().contains(&servers.other_server.uri()), "{err}");
            assert!(err.to_string().contains("allow_insecure_locations"), "{err}");
            assert!(!err.is_retryable());
        }
        other => panic!("{other:?}"),
    }
    assert!(servers.other.calls().is_empty(), "nothing may reach the plaintext location");

    let client = builder.allow_insecure_locations(true).connect().await.unwrap();
    assert_eq!(ids(&client.query("q", None).await.unwrap()), vec![0, 1, 2, 3]);
    // Allowed in clear, but still no credentials: the host is not trusted with them.
    assert_eq!(secrets_seen(&servers.other.calls()), Vec::<&str>::new());
}

#[tokio::test]
async fn a_host_trusted_from_a_tls_client_gets_no_credentials_in_clear() {
    let pki = pki();
    let servers = two_servers(Some((pki.cert_pem.clone(), pki.key_pem.clone()))).await;
    let port = servers.other_server.addr.port();
    let uri = format!("grpc+tls://localhost:{}", servers.main_server.addr.port());
    // The plaintext location itself is allowed: what is checked is who sees the credentials.
    let builder = with_secrets(FlightSqlClient::builder(&uri))
        .tls_ca_pem(pki.ca_pem.clone())
        .allow_insecure_locations(true);
    let cases = [
        // Written without a scheme: the client's own (TLS), so not this plaintext location.
        (vec![format!("127.0.0.1:{port}")], false, false),
        (vec!["127.0.0.1".to_string()], false, false),
        (vec![format!("grpc+tls://127.0.0.1:{port}")], false, false),
        // Everywhere still means "over TLS" for a TLS client.
        (vec![], true, false),
        // Only an entry naming the plaintext scheme sends them in clear.
        (vec![format!("grpc://127.0.0.1:{port}")], false, true),
        (vec!["http://127.0.0.1".to_string()], false, true),
    ];
    for (hosts, everywhere, expected) in cases {
        let before = servers.other.calls().len();
        let client = builder
            .clone()
            .credential_hosts(hosts.clone())
            .send_credentials_to_all_locations(everywhere)
            .connect()
            .await
            .unwrap();
        assert_eq!(ids(&client.query("q", None).await.unwrap()), vec![0, 1, 2, 3]);
        let calls = servers.other.calls();
        let expected_seen = if expected { SECRETS.to_vec() } else { Vec::new() };
        assert_eq!(secrets_seen(&calls[before..]), expected_seen, "{hosts:?} {everywhere}");
    }
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_in_clear_to_another_machine_are_warned_about_once() {
    // The main endpoint fails, so the remote location is resolved (and judged) but never
    // contacted: nothing leaves this machine.
    let main = TestService::new();
    main.script("t0", Script::new(vec![]).end(End::Fail(tonic::Status::internal("stop here"))))
        .endpoints(vec![
            endpoint("t0"),
            endpoint("t1").with_location("grpc://192.0.2.10:50051"),
            endpoint("t2").with_location("grpc://127.0.0.1:9"),
        ]);
    let main_server = serve(main, None).await;
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // The test runtime is current-thread: the client's code runs here, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let client = with_secrets(FlightSqlClient::builder(main_server.uri()))
        .credential_hosts(["192.0.2.10", "127.0.0.1"])
        .connect()
        .await
        .unwrap();
    for _ in 0..3 {
        let err = client.query("q", None).await.unwrap_err();
        assert!(err.to_string().contains("stop here"), "{err}");
    }
    let text = log.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("in clear")).collect();
    assert_eq!(warnings.len(), 1, "one warning per place, none for this machine: {text}");
    assert!(warnings[0].contains("192.0.2.10:50051"), "{text}");
    for secret in ["hunter2", "key-123", "sts-456"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }

    // Without credentials there is nothing to warn about.
    let before = log.text().len();
    let anonymous = FlightSqlClient::builder(main_server.uri())
        .send_credentials_to_all_locations(true)
        .connect()
        .await
        .unwrap();
    anonymous.query("q", None).await.unwrap_err();
    assert!(!log.text()[before..].contains("in clear"), "{}", log.text());
}

#[tokio::test]
async fn an_endpoint_with_a_secure_alternative_uses_it() {
    let pki = pki();
    let servers = two_servers(Some((pki.cert_pem.clone(), pki.key_pem.clone()))).await;
    servers.main.endpoints(vec![
        endpoint("t0")
            .with_location(servers.other_server.uri())
            .with_location("arrow-flight-reuse-connection://?"),
    ]);
    let uri = format!("grpc+tls://localhost:{}", servers.main_server.addr.port());
    let client =
        FlightSqlClient::builder(&uri).tls_ca_pem(pki.ca_pem.clone()).connect().await.unwrap();
    assert_eq!(ids(&client.query("q", None).await.unwrap()), vec![0, 1]);
    assert!(servers.other.calls().is_empty());
}

#[tokio::test]
async fn tls_certificate_and_dns_failures_are_not_retryable() {
    let pki_a = pki();
    let main = TestService::new();
    let tls_server = serve(main, Some((pki_a.cert_pem.clone(), pki_a.key_pem.clone()))).await;
    let untrusted = format!("grpc+tls://localhost:{}", tls_server.addr.port());
    match FlightSqlClient::builder(&untrusted).tls_ca_pem(pki().ca_pem).connect().await {
        Err(err @ Error::Connect { kind: ConnectErrorKind::Certificate, .. }) => {
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(&untrusted), "{err}");
        }
        other => panic!("{other:?}"),
    }

    let plain_server = serve(TestService::new(), None).await;
    let tls_to_plain = format!("grpc+tls://localhost:{}", plain_server.addr.port());
    match FlightSqlClient::builder(&tls_to_plain).tls_ca_pem(pki_a.ca_pem).connect().await {
        Err(err @ Error::Connect { kind: ConnectErrorKind::Tls, .. }) => {
            assert!(!err.is_retryable())
        }
        other => panic!("{other:?}"),
    }

    // `.invalid` never resolves (RFC 6761).
    let unknown = "grpc://flightline-test.invalid:50051";
    match FlightSqlClient::builder(unknown).connect().await {
        Err(err @ Error::Connect { kind: ConnectErrorKind::Dns, .. }) => {
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(unknown), "{err}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_direct_ticket_path_ends_after_the_first_error() {
    let main = TestService::new();
    // Schema, one batch, a message that is not Arrow IPC, then a batch that must not be read.
    main.accept_direct_tickets()
        .script("SELECT 1", Script::new(vec![batch(0, 1), batch(1, 1)]).corrupt_after(2));
    let server = serve(main, None).await;
    let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    let options = QueryOptions::new().direct_ticket(true);
    let items: Vec<_> =
        client.query_stream_with("SELECT 1", None, &options).await.unwrap().collect().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(ids(&[items[0].as_ref().unwrap().clone()]), vec![0]);
    assert!(matches!(items[1], Err(Error::Protocol(_))), "{items:?}");
}

/// Two endpoints read in parallel; endpoint "a" never ends.
async fn endless_parallel(first: Script) -> (TestServer, Arc<Notify>) {
    let dropped = Arc::new(Notify::new());
    let main = TestService::new();
    main.script("a", first.end(End::Hang).on_drop(Arc::clone(&dropped)))
        .script("b", Script::new(vec![batch(10, 1)]))
        .endpoints(vec![endpoint("a"), endpoint("b")]);
    (serve(main, None).await, dropped)
}

#[tokio::test]
async fn dropping_a_parallel_stream_cancels_its_fetches() {
    let (server, dropped) = endless_parallel(Script::new(vec![batch(0, 1)])).await;
    let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    let options = QueryOptions::new().parallel_endpoints(2);
    let mut stream = client.query_stream_with("q", None, &options).await.unwrap();
    assert_eq!(ids(&[stream.try_next().await.unwrap().unwrap()]), vec![0]);
    drop(stream);
    // The background task was waiting for the server, not for the reader: only aborting it
    // cancels the DoGet.
    within("the server to see the DoGet cancelled", dropped.notified()).await;
}

#[tokio::test]
async fn a_parallel_fetch_stops_at_its_first_error() {
    let (server, dropped) =
        endless_parallel(Script::new(vec![batch(0, 1), batch(1, 1)]).corrupt_after(2)).await;
    let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    let options = QueryOptions::new().parallel_endpoints(2);
    let mut stream = client.query_stream_with("q", None, &options).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    assert!(matches!(stream.next().await, Some(Err(Error::Protocol(_)))));
    assert!(stream.next().await.is_none());
    // The stream is still held: the fetch itself must have stopped after the error.
    within("the server to see the DoGet cancelled", dropped.notified()).await;
    drop(stream);
}
