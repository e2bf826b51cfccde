//! With tokens configured, every RPC of the Flight service needs one: the raw Flight client
//! calls each method without a token, with a wrong one, and with a right one.

mod common;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, HandshakeRequest, Ticket,
};
use common::*;
use flightline_server::ServerBuilder;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

const TOKEN: &str = "s3cret";

fn req<T>(message: T, credential: Option<(&'static str, &str)>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some((name, value)) = credential {
        r.metadata_mut().insert(name, value.parse().unwrap());
    }
    r
}

fn statement_descriptor() -> FlightDescriptor {
    let cmd = CommandStatementQuery { query: "SELECT 1".into(), transaction_id: None };
    FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec())
}

/// The status code of every Flight RPC called with `credential`, by method name.
async fn codes(
    c: &mut FlightServiceClient<Channel>,
    credential: Option<(&'static str, &str)>,
) -> Vec<(&'static str, Code)> {
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        r.map_or_else(|s| s.code(), |_| Code::Ok)
    }
    let hello = futures::stream::iter(vec![HandshakeRequest::default()]);
    let put = futures::stream::iter(vec![FlightData::default()]);
    let exchange = futures::stream::iter(vec![FlightData::default()]);
    let action = Action::new("CloseSession", "");
    vec![
        ("Handshake", code(c.handshake(req(hello, credential)).await)),
        ("ListFlights", code(c.list_flights(req(Criteria::default(), credential)).await)),
        ("GetFlightInfo", code(c.get_flight_info(req(statement_descriptor(), credential)).await)),
        ("PollFlightInfo", code(c.poll_flight_info(req(statement_descriptor(), credential)).await)),
        ("GetSchema", code(c.get_schema(req(statement_descriptor(), credential)).await)),
        ("DoGet", code(c.do_get(req(sql_ticket("SELECT 1"), credential)).await)),
        ("DoGet(bad ticket)", code(c.do_get(req(Ticket::new("x"), credential)).await)),
        ("DoPut", code(c.do_put(req(put, credential)).await)),
        ("DoExchange", code(c.do_exchange(req(exchange, credential)).await)),
        ("DoAction", code(c.do_action(req(action, credential)).await)),
        ("ListActions", code(c.list_actions(req(Empty {}, credential)).await)),
    ]
}

async fn flight_client(s: &flightline_server::RunningServer) -> FlightServiceClient<Channel> {
    let uri = format!("http://{}", s.local_addr());
    FlightServiceClient::new(Channel::from_shared(uri).unwrap().connect().await.unwrap())
}

#[tokio::test]
async fn every_rpc_is_refused_without_a_valid_token() {
    let s = spawn(ServerBuilder::new().demo_rows(10).token(TOKEN)).await;
    let mut c = flight_client(&s).await;
    for credential in [
        None,
        Some(("authorization", "Bearer wrong")),
        Some(("x-api-key", "wrong")),
        Some(("authorization", "Basic czNjcmV0")),
        Some(("authorization", &*format!("Bearer {TOKEN}x"))),
    ] {
        for (rpc, code) in codes(&mut c, credential).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with {credential:?}");
        }
    }
}

#[tokio::test]
async fn every_rpc_passes_auth_with_a_valid_token() {
    let s = spawn(ServerBuilder::new().demo_rows(10).token(TOKEN)).await;
    let mut c = flight_client(&s).await;
    let bearer = format!("Bearer {TOKEN}");
    for credential in [("authorization", bearer.as_str()), ("x-api-key", TOKEN)] {
        let codes = codes(&mut c, Some(credential)).await;
        for (rpc, code) in &codes {
            assert_ne!(*code, Code::Unauthenticated, "{rpc} with {credential:?}");
        }
        let ok = |rpc: &str| codes.iter().any(|(r, c)| *r == rpc && *c == Code::Ok);
        for rpc in ["GetFlightInfo", "DoGet", "DoAction", "ListActions"] {
            assert!(ok(rpc), "{rpc} failed with a valid token: {codes:?}");
        }
    }
    // And the statement ticket really answers.
    let stream = c.do_get(req(sql_ticket("SELECT 1"), Some(("x-api-key", TOKEN)))).await.unwrap();
    let messages: Vec<FlightData> = stream.into_inner().try_collect().await.unwrap();
    assert!(messages.len() >= 2, "schema and one batch: {}", messages.len());
}
