//! Sessions: the Flight handshake (user and password → bearer token, renewed once on expiry),
//! cookies, CloseSession, against the embedded server with users and a scripted service.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use flightline_core::Error;
use flightline_core::client::{
    BasicCredentials, CredentialExchange, ExchangeRequest, FlightSqlClient, SessionGrant,
    flight_handshake,
};
use flightline_server::{RunningServer, ServerBuilder};
use futures::TryStreamExt;
use futures::future::BoxFuture;

use crate::support::{HandshakeScript, Script, TestService, batch, endpoint, ids, serve, within};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse:battery";

async fn server_with_user(ttl: Duration) -> RunningServer {
    ServerBuilder::new()
        .demo_rows(1_000)
        .seed(3)
        .user(USER, PASSWORD)
        .token("static-token")
        .session_ttl(ttl)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn count(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0))
        .sum()
}

const COUNT_SQL: &str = "SELECT count(*) FROM log_entries";

#[tokio::test]
async fn right_password_queries_with_the_issued_token() {
    let server = server_with_user(Duration::from_secs(3600)).await;
    let sessions = server.sessions().unwrap();
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    assert_eq!(sessions.handshakes(), 1, "connect handshakes once");

    assert_eq!(count(&client.query(COUNT_SQL, None).await.unwrap()), 1_000);
    client.prepare("SELECT level FROM log_entries").await.unwrap();
    // GetFlightInfo, DoGet, CreatePreparedStatement, ClosePreparedStatement: every call was
    // accepted with the one session token the handshake issued.
    let live = sessions.sessions();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].user, USER);
    assert_eq!(live[0].calls, 4, "{live:?}");
    assert_eq!(sessions.handshakes(), 1);

    // The static token keeps working beside the users, and no credentials are refused.
    let by_token = FlightSqlClient::builder(server.uri())
        .bearer_token("static-token")
        .connect()
        .await
        .unwrap();
    assert_eq!(count(&by_token.query(COUNT_SQL, None).await.unwrap()), 1_000);
    let anonymous = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    let err = anonymous.query(COUNT_SQL, None).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_password_is_its_own_error_without_the_password() {
    let server = server_with_user(Duration::from_secs(3600)).await;
    let err = FlightSqlClient::builder(server.uri())
        .basic_auth(USER, "wrong-password")
        .connect()
        .await
        .unwrap_err();
    let Error::CredentialsRefused { uri, message } = &err else {
        panic!("expected CredentialsRefused, got {err:?}");
    };
    assert_eq!(uri, &server.uri());
    assert!(message.contains(USER), "{message}");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(server.sessions().unwrap().handshakes(), 0);
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_transparently() {
    let server = server_with_user(Duration::from_secs(3600)).await;
    let sessions = server.sessions().unwrap();
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();

    sessions.expire_all();
    assert_eq!(count(&client.query(COUNT_SQL, None).await.unwrap()), 1_000);
    assert_eq!(sessions.handshakes(), 2);

    // A stream whose DoGet is refused before any batch arrived is retried too.
    let stream = client.query_stream(COUNT_SQL, None).await.unwrap();
    sessions.expire_all();
    let batches: Vec<RecordBatch> = within("the stream", stream.try_collect()).await.unwrap();
    assert_eq!(count(&batches), 1_000);
    assert_eq!(sessions.handshakes(), 3);
    assert_eq!(sessions.sessions().len(), 1);
}

#[tokio::test]
async fn a_token_past_its_ttl_is_renewed() {
    let ttl = Duration::from_millis(300);
    let server = server_with_user(ttl).await;
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    // Waiting longer than the TTL guarantees the token expired; nothing is timed.
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(count(&client.query(COUNT_SQL, None).await.unwrap()), 1_000);
    assert!(server.sessions().unwrap().handshakes() >= 2);
}

#[tokio::test]
async fn a_revoked_user_is_not_renewed() {
    let server = server_with_user(Duration::from_secs(3600)).await;
    let sessions = server.sessions().unwrap();
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    client.query(COUNT_SQL, None).await.unwrap();

    assert!(sessions.remove_user(USER));
    let err = client.query(COUNT_SQL, None).await.unwrap_err();
    assert!(matches!(err, Error::CredentialsRefused { .. }), "{err:?}");
    assert_eq!(sessions.handshakes(), 1, "the revoked user got no new token");
    assert!(sessions.sessions().is_empty());
}

#[tokio::test]
async fn close_ends_the_session_and_the_client_can_start_another() {
    let server = server_with_user(Duration::from_secs(3600)).await;
    let sessions = server.sessions().unwrap();
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    client.close().await.unwrap();
    assert!(sessions.sessions().is_empty());
    assert_eq!(count(&client.query(COUNT_SQL, None).await.unwrap()), 1_000);
    assert_eq!(sessions.handshakes(), 2);
}

fn scripted_handshake(tokens: &[&str], in_payload: bool) -> HandshakeScript {
    HandshakeScript {
        user: USER.into(),
        password: PASSWORD.into(),
        tokens: tokens.iter().map(|t| t.to_string()).collect::<VecDeque<_>>(),
        in_payload,
    }
}

fn scripted(tokens: &[&str], in_payload: bool) -> TestService {
    let service = TestService::new();
    service
        .handshake(scripted_handshake(tokens, in_payload))
        .endpoints(vec![endpoint("t")])
        .script("t", Script::new(vec![batch(0, 3)]));
    service
}

#[tokio::test]
async fn a_token_in_the_handshake_payload_is_used_too() {
    let service = scripted(&["payload-token"], true);
    let server = serve(service.clone(), None).await;
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    assert_eq!(ids(&client.query("q", None).await.unwrap()), vec![0, 1, 2]);
    let get = service.calls_of("DoGet");
    assert_eq!(get[0].headers["authorization"], "Bearer payload-token");
}

#[tokio::test]
async fn refused_renewal_is_one_handshake_not_a_loop() {
    let service = scripted(&["t1", "t2"], false);
    let server = serve(service.clone(), None).await;
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    client.query("q", None).await.unwrap();

    // The server forgets t1 and now refuses the password.
    service.require_token("nobody-has-this").change_password("changed");
    let err = client.query("q", None).await.unwrap_err();
    assert!(matches!(err, Error::CredentialsRefused { .. }), "{err:?}");
    assert_eq!(service.calls_of("Handshake").len(), 2);
    assert_eq!(service.calls_of("GetFlightInfo").len(), 2, "no retry without a new token");

    // The refused token was dropped: with the password accepted again, the next call
    // handshakes first (t2) instead of sending t1 once more.
    service.change_password(PASSWORD);
    client.query("q", None).await.unwrap();
    let infos = service.calls_of("GetFlightInfo");
    assert_eq!(service.calls_of("Handshake").len(), 3);
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[1].headers["authorization"], "Bearer t1");
    assert_eq!(infos[2].headers["authorization"], "Bearer t2");
}

#[tokio::test]
async fn a_server_without_handshake_says_so() {
    let service = TestService::new();
    let server = serve(service, None).await;
    let err = FlightSqlClient::builder(server.uri())
        .basic_auth(USER, PASSWORD)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Unimplemented { message } if message.contains("handshake")));
}

/// An exchange of the caller's own: a handshake with a custom payload instead of Basic.
struct PayloadExchange;

impl CredentialExchange for PayloadExchange {
    fn exchange(
        &self,
        request: ExchangeRequest,
    ) -> BoxFuture<'_, flightline_core::Result<SessionGrant>> {
        Box::pin(async move {
            let ExchangeRequest { flight, mut metadata, uri } = request;
            // The scripted server wants Basic credentials; this exchange builds them itself.
            use base64::Engine;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
            metadata.insert("authorization", format!("Basic {basic}").parse().unwrap());
            let reply = flight_handshake(flight, metadata, "hello".into(), &uri).await?;
            Ok(SessionGrant { token: reply.token.unwrap(), headers: reply.headers })
        })
    }
}

#[tokio::test]
async fn a_custom_credential_exchange_drives_the_same_renewal() {
    let service = scripted(&["c1", "c2"], false);
    let server = serve(service.clone(), None).await;
    let client = FlightSqlClient::builder(server.uri())
        .credential_exchange(Arc::new(PayloadExchange))
        .connect()
        .await
        .unwrap();
    client.query("q", None).await.unwrap();
    // The server forgets c1: the client exchanges again and retries with c2.
    service.require_token("expired");
    let retried = client.query("q", None).await;
    assert!(retried.is_ok(), "{retried:?}");
    assert_eq!(service.calls_of("Handshake").len(), 2);
    let infos = service.calls_of("GetFlightInfo");
    assert_eq!(infos.last().unwrap().headers["authorization"], "Bearer c2");
}

#[tokio::test]
async fn credentials_from_a_file_are_read_at_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    let service = scripted(&["f1"], false);
    let server = serve(service.clone(), None).await;
    let client = FlightSqlClient::builder(server.uri())
        .basic_credentials(BasicCredentials::password_from_file(USER, &path))
        .connect()
        .await
        .unwrap();
    client.query("q", None).await.unwrap();
    assert!(!format!("{client:?}").contains(PASSWORD));
}

#[tokio::test]
async fn cookies_are_stored_sent_back_and_dropped_after_expiry() {
    let service = scripted(&["k1"], false);
    service.set_cookies(&["session=abc; Max-Age=1; Path=/", "pref=x"]);
    let server = serve(service.clone(), None).await;
    let client = FlightSqlClient::builder(server.uri())
        .basic_auth(USER, PASSWORD)
        .cookies(true)
        .connect()
        .await
        .unwrap();
    client.query("q", None).await.unwrap();
    // Set by the handshake already, so the first GetFlightInfo carries them.
    let info = &service.calls_of("GetFlightInfo")[0];
    assert_eq!(info.headers.get("cookie").map(String::as_str), Some("pref=x; session=abc"));
    let get = &service.calls_of("DoGet")[0];
    assert_eq!(get.headers.get("cookie").map(String::as_str), Some("pref=x; session=abc"));

    service.set_cookies(&[]);
    // Waiting past Max-Age guarantees expiry; nothing is timed.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    client.query("q", None).await.unwrap();
    let info = service.calls_of("GetFlightInfo").pop().unwrap();
    assert_eq!(info.headers.get("cookie").map(String::as_str), Some("pref=x"));
}

#[tokio::test]
async fn without_the_jar_cookies_are_not_sent() {
    let service = scripted(&["n1"], false);
    service.set_cookies(&["session=abc"]);
    let server = serve(service.clone(), None).await;
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    client.query("q", None).await.unwrap();
    client.query("q", None).await.unwrap();
    assert!(service.calls().iter().all(|call| !call.headers.contains_key("cookie")));
}

#[tokio::test]
async fn close_sends_close_session_and_ignores_unimplemented() {
    let service = scripted(&["s1", "s2"], false);
    let server = serve(service.clone(), None).await;
    let client =
        FlightSqlClient::builder(server.uri()).basic_auth(USER, PASSWORD).connect().await.unwrap();
    client.close().await.unwrap();
    let closes = service.calls_of("CloseSession");
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].headers["authorization"], "Bearer s1");

    let quiet = TestService::new();
    quiet.close_unimplemented();
    let server = serve(quiet.clone(), None).await;
    let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    client.close().await.unwrap();
    assert_eq!(quiet.calls_of("CloseSession").len(), 1);
}

/// The main service (handshake, endpoint "t0" on itself, "t1" on a second service) and the
/// second service at another port of 127.0.0.1.
async fn main_and_location(
    tokens: &[&str],
) -> (TestService, TestService, crate::support::TestServer, crate::support::TestServer) {
    let other = TestService::new();
    other.script("t1", Script::new(vec![batch(2, 2)]));
    let other_server = serve(other.clone(), None).await;
    let main = TestService::new();
    main.handshake(scripted_handshake(tokens, false))
        .script("t0", Script::new(vec![batch(0, 2)]))
        .endpoints(vec![endpoint("t0"), endpoint("t1").with_location(other_server.uri())])
        .set_cookies(&["session=abc"]);
    let main_server = serve(main.clone(), None).await;
    (main, other, main_server, other_server)
}

#[tokio::test]
async fn the_session_token_reaches_other_locations_only_when_allowed() {
    let (main, other, main_server, other_server) = main_and_location(&["m1", "m2"]).await;
    let client = FlightSqlClient::builder(main_server.uri())
        .basic_auth(USER, PASSWORD)
        .cookies(true)
        .connect()
        .await
        .unwrap();
    assert_eq!(ids(&client.query("q", None).await.unwrap()), vec![0, 1, 2, 3]);
    for call in main.calls().iter().filter(|c| c.method != "Handshake") {
        assert_eq!(call.headers["authorization"], "Bearer m1", "{call:?}");
        assert_eq!(call.headers["cookie"], "session=abc", "{call:?}");
    }
    let fetched = other.calls_of("DoGet");
    assert_eq!(fetched.len(), 1);
    assert!(!fetched[0].headers.contains_key("authorization"), "{fetched:?}");
    assert!(!fetched[0].headers.contains_key("cookie"), "{fetched:?}");

    // Listed as a credential host, the location gets the session token (but never the main
    // server's cookies, which belong to that server alone).
    let port = other_server.addr.port();
    let trusting = FlightSqlClient::builder(main_server.uri())
        .basic_auth(USER, PASSWORD)
        .cookies(true)
        .credential_hosts([format!("127.0.0.1:{port}")])
        .connect()
        .await
        .unwrap();
    trusting.query("q", None).await.unwrap();
    let fetched = other.calls_of("DoGet");
    assert_eq!(fetched.len(), 2);
    assert_eq!(fetched[1].headers["authorization"], "Bearer m2");
    assert!(!fetched[1].headers.contains_key("cookie"), "{fetched:?}");
}
