//! Test doubles: a small scriptable Flight SQL service, a TCP proxy that can cut connections,
//! and a throwaway CA.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::CompressionType;
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandStatementQuery, ProstMessageExt,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, IpcMessage, PollInfo, PutResult, SchemaAsIpc,
    SchemaResult, Ticket,
};
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

/// The schema every scripted result uses.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
    ]))
}

/// Rows `first..first + rows`, labelled `row-<id>`.
pub fn batch(first: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let labels: Vec<String> = ids.iter().map(|id| format!("row-{id}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(labels))],
    )
    .unwrap()
}

/// Every `id` of the batches, in order.
pub fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

/// How a scripted DoGet ends after its batches.
#[derive(Clone)]
pub enum End {
    /// Trailers with status OK.
    Finish,
    /// Trailers with this error status.
    Fail(Status),
    /// Never ends (the test cuts the connection).
    Hang,
}

/// What DoGet sends for one ticket.
#[derive(Clone)]
pub struct Script {
    pub batches: Vec<RecordBatch>,
    pub compression: Option<CompressionType>,
    pub end: End,
    /// Waited for before the first batch is sent.
    pub wait_for: Option<Arc<Notify>>,
    /// Notified when DoGet for this ticket arrives.
    pub on_request: Option<Arc<Notify>>,
    /// Largest FlightData message the encoder produces.
    pub max_message: Option<usize>,
    /// Sends a FlightData message that is not Arrow IPC after this many good ones.
    pub corrupt_after: Option<usize>,
    /// Notified when the server drops the response stream: the end of a finished stream, or
    /// the client cancelling one that never ends.
    pub on_drop: Option<Arc<Notify>>,
}

impl Script {
    pub fn new(batches: Vec<RecordBatch>) -> Self {
        Self {
            batches,
            compression: None,
            end: End::Finish,
            wait_for: None,
            on_request: None,
            max_message: None,
            corrupt_after: None,
            on_drop: None,
        }
    }

    pub fn corrupt_after(mut self, messages: usize) -> Self {
        self.corrupt_after = Some(messages);
        self
    }

    pub fn on_drop(mut self, signal: Arc<Notify>) -> Self {
        self.on_drop = Some(signal);
        self
    }

    pub fn end(mut self, end: End) -> Self {
        self.end = end;
        self
    }

    pub fn compression(mut self, compression: CompressionType) -> Self {
        self.compression = Some(compression);
        self
    }

    pub fn wait_for(mut self, gate: Arc<Notify>) -> Self {
        self.wait_for = Some(gate);
        self
    }

    pub fn on_request(mut self, signal: Arc<Notify>) -> Self {
        self.on_request = Some(signal);
        self
    }

    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }
}

/// One call the service received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    /// The SQL of GetFlightInfo / CreatePreparedStatement, the ticket key of DoGet.
    pub subject: String,
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    endpoints: Mutex<Vec<FlightEndpoint>>,
    scripts: Mutex<HashMap<String, Script>>,
    calls: Mutex<Vec<Call>>,
    closed: Mutex<Vec<Bytes>>,
    close_unimplemented: Mutex<bool>,
    accept_direct_tickets: Mutex<bool>,
    required_token: Mutex<Option<String>>,
    handshake: Mutex<Option<HandshakeScript>>,
    set_cookies: Mutex<Vec<String>>,
}

/// How the scripted Handshake answers: Basic `user:password` gets the next token, which
/// becomes the one every other call must carry.
#[derive(Clone)]
pub struct HandshakeScript {
    pub user: String,
    pub password: String,
    pub tokens: std::collections::VecDeque<String>,
    /// Sends the token in the payload only, not in an `authorization` header.
    pub in_payload: bool,
}

/// A scriptable Flight SQL service.
///
/// GetFlightInfo(CommandStatementQuery) answers with the configured endpoints, except for
/// queries `status:<code>` (that gRPC error) and `hang` (never answers). DoGet plays the
/// script of its ticket. DoAction implements CreatePreparedStatement (handle = `h:<sql>`,
/// dataset schema = [`schema`], or bytes that are not Arrow IPC for SQL starting with
/// `bad-schema`) and ClosePreparedStatement.
#[derive(Clone, Default)]
pub struct TestService {
    state: Arc<State>,
}

impl TestService {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn endpoints(&self, endpoints: Vec<FlightEndpoint>) -> &Self {
        *self.state.endpoints.lock().unwrap() = endpoints;
        self
    }

    pub fn script(&self, ticket: &str, script: Script) -> &Self {
        self.state.scripts.lock().unwrap().insert(ticket.to_string(), script);
        self
    }

    pub fn accept_direct_tickets(&self) -> &Self {
        *self.state.accept_direct_tickets.lock().unwrap() = true;
        self
    }

    pub fn close_unimplemented(&self) -> &Self {
        *self.state.close_unimplemented.lock().unwrap() = true;
        self
    }

    pub fn require_token(&self, token: &str) -> &Self {
        *self.state.required_token.lock().unwrap() = Some(token.to_string());
        self
    }

    /// Answers Handshake as `script` says.
    pub fn handshake(&self, script: HandshakeScript) -> &Self {
        *self.state.handshake.lock().unwrap() = Some(script);
        self
    }

    /// Changes the password the scripted Handshake accepts (a revoked or changed user).
    pub fn change_password(&self, password: &str) -> &Self {
        if let Some(script) = self.state.handshake.lock().unwrap().as_mut() {
            script.password = password.to_string();
        }
        self
    }

    /// `set-cookie` headers added to every GetFlightInfo and Handshake answer.
    pub fn set_cookies(&self, cookies: &[&str]) -> &Self {
        *self.state.set_cookies.lock().unwrap() = cookies.iter().map(|c| c.to_string()).collect();
        self
    }

    /// The calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.method == method).collect()
    }

    fn add_cookies<T>(&self, response: &mut Response<T>) {
        for cookie in self.state.set_cookies.lock().unwrap().iter() {
            response.metadata_mut().append("set-cookie", cookie.parse().unwrap());
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn closed(&self) -> Vec<Bytes> {
        self.state.closed.lock().unwrap().clone()
    }

    fn record<T>(
        &self,
        method: &'static str,
        subject: &str,
        request: &Request<T>,
    ) -> Result<(), Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_string(), value.to_str().unwrap_or("<binary>").to_string())
            })
            .collect::<HashMap<_, _>>();
        let authorized = match &*self.state.required_token.lock().unwrap() {
            Some(token) => headers.get("authorization") == Some(&format!("Bearer {token}")),
            None => true,
        };
        self.state.calls.lock().unwrap().push(Call {
            method,
            subject: subject.to_string(),
            headers,
        });
        if authorized {
            Ok(())
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

pub fn endpoint(ticket: &str) -> FlightEndpoint {
    FlightEndpoint::new().with_ticket(Ticket::new(ticket.to_string()))
}

fn status_for(code: &str) -> Status {
    let message = format!("scripted {code}");
    match code {
        "invalid_argument" => Status::invalid_argument(message),
        "unauthenticated" => Status::unauthenticated(message),
        "permission_denied" => Status::permission_denied(message),
        "not_found" => Status::not_found(message),
        "resource_exhausted" => Status::resource_exhausted(message),
        "unavailable" => Status::unavailable(message),
        "deadline_exceeded" => Status::deadline_exceeded(message),
        "cancelled" => Status::cancelled(message),
        "unimplemented" => Status::unimplemented(message),
        "aborted" => Status::aborted(message),
        _ => Status::internal(message),
    }
}

fn ipc_schema(schema: &Schema) -> Bytes {
    IpcMessage::try_from(SchemaAsIpc::new(schema, &IpcWriteOptions::default())).unwrap().0
}

/// Notifies when dropped.
struct DropSignal(Arc<Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

fn play(script: Script) -> BoxStream<'static, Result<FlightData, Status>> {
    let Script { batches, compression, end, wait_for, max_message, corrupt_after, on_drop, .. } =
        script;
    let options = IpcWriteOptions::default().try_with_compression(compression).unwrap();
    let input = stream::once(async move {
        if let Some(gate) = wait_for {
            gate.notified().await;
        }
        stream::iter(batches.into_iter().map(Ok))
    })
    .flatten();
    let mut encoder = FlightDataEncoderBuilder::new().with_options(options);
    if let Some(bytes) = max_message {
        encoder = encoder.with_max_flight_data_size(bytes);
    }
    let data = encoder.build(input).map_err(|err| Status::internal(err.to_string()));
    let data = data.enumerate().flat_map(move |(position, message)| {
        let garbage = (Some(position) == corrupt_after)
            .then(|| Ok(FlightData::new().with_data_header(Bytes::from_static(b"not IPC at all"))));
        stream::iter(garbage.into_iter().chain([message]))
    });
    let tail: BoxStream<'static, Result<FlightData, Status>> = match end {
        End::Finish => stream::empty().boxed(),
        End::Fail(status) => stream::once(async move { Err(status) }).boxed(),
        End::Hang => stream::pending().boxed(),
    };
    let signal = on_drop.map(DropSignal);
    data.chain(tail)
        .map(move |message| {
            let _kept_until_the_stream_is_dropped = &signal;
            message
        })
        .boxed()
}

#[tonic::async_trait]
impl FlightService for TestService {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        use base64::Engine;
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let call = Call { method: "Handshake", subject: String::new(), headers: HashMap::new() };
        self.state.calls.lock().unwrap().push(Call {
            headers: request
                .metadata()
                .clone()
                .into_headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
                .collect(),
            ..call
        });
        let mut guard = self.state.handshake.lock().unwrap();
        let Some(script) = guard.as_mut() else {
            return Err(Status::unimplemented("handshake"));
        };
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", script.user, script.password))
        );
        if presented != expected {
            return Err(Status::unauthenticated("wrong user or password"));
        }
        let token = script.tokens.pop_front().expect("the test scripted enough tokens");
        *self.state.required_token.lock().unwrap() = Some(token.clone());
        let in_payload = script.in_payload;
        drop(guard);
        let reply = HandshakeResponse { protocol_version: 0, payload: token.clone().into() };
        let mut response: Response<Self::HandshakeStream> =
            Response::new(stream::iter([Ok(reply)]).boxed());
        if !in_payload {
            response
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        self.add_cookies(&mut response);
        Ok(response)
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights"))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = Any::decode(request.get_ref().cmd.clone())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let command: CommandStatementQuery = any
            .unpack()
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .ok_or_else(|| Status::unimplemented(format!("command {}", any.type_url)))?;
        self.record("GetFlightInfo", &command.query, &request)?;
        if let Some(code) = command.query.strip_prefix("status:") {
            return Err(status_for(code));
        }
        if command.query == "hang" {
            std::future::pending::<()>().await;
        }
        let info = FlightInfo::new()
            .try_with_schema(&schema())
            .unwrap()
            .with_endpoints(self.state.endpoints.lock().unwrap().clone());
        let mut response = Response::new(info);
        self.add_cookies(&mut response);
        Ok(response)
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema"))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let raw = request.get_ref().ticket.clone();
        let key = match Any::decode(raw.clone())
            .ok()
            .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
        {
            Some(direct) => {
                if !*self.state.accept_direct_tickets.lock().unwrap() {
                    self.record("DoGet", "direct", &request)?;
                    return Err(Status::unimplemented(
                        "DoGet with a TicketStatementQuery is not supported",
                    ));
                }
                String::from_utf8(direct.statement_handle.to_vec()).unwrap()
            }
            None => String::from_utf8(raw.to_vec()).unwrap(),
        };
        self.record("DoGet", &key, &request)?;
        let script = self
            .state
            .scripts
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no script for ticket {key}")))?;
        if let Some(signal) = &script.on_request {
            signal.notify_one();
        }
        Ok(Response::new(play(script)))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented("do_put"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.get_ref().clone();
        let any = Any::decode(action.body.clone())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        match action.r#type.as_str() {
            "CreatePreparedStatement" => {
                let create: ActionCreatePreparedStatementRequest = any
                    .unpack()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
                    .ok_or_else(|| Status::invalid_argument("not a create request"))?;
                self.record("CreatePreparedStatement", &create.query, &request)?;
                if let Some(code) = create.query.strip_prefix("status:") {
                    return Err(status_for(code));
                }
                // A server answering garbage where the schema should be.
                let dataset_schema = if create.query.starts_with("bad-schema") {
                    Bytes::from_static(b"this is not Arrow IPC")
                } else {
                    ipc_schema(&schema())
                };
                let result = ActionCreatePreparedStatementResult {
                    prepared_statement_handle: format!("h:{}", create.query).into(),
                    dataset_schema,
                    parameter_schema: Bytes::new(),
                };
                let body = result.as_any().encode_to_vec();
                Ok(Response::new(stream::iter([Ok(arrow_flight::Result::new(body))]).boxed()))
            }
            "ClosePreparedStatement" => {
                let close: ActionClosePreparedStatementRequest = any
                    .unpack()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
                    .ok_or_else(|| Status::invalid_argument("not a close request"))?;
                let handle = String::from_utf8_lossy(&close.prepared_statement_handle).to_string();
                self.record("ClosePreparedStatement", &handle, &request)?;
                if *self.state.close_unimplemented.lock().unwrap() {
                    return Err(Status::unimplemented("ClosePreparedStatement"));
                }
                self.state.closed.lock().unwrap().push(close.prepared_statement_handle);
                Ok(Response::new(stream::empty().boxed()))
            }
            "CloseSession" => {
                self.record("CloseSession", "", &request)?;
                if *self.state.close_unimplemented.lock().unwrap() {
                    return Err(Status::unimplemented("CloseSession"));
                }
                // CloseSessionResult { status: CLOSED }.
                let body = Bytes::from_static(&[0x08, 0x01]);
                Ok(Response::new(stream::iter([Ok(arrow_flight::Result::new(body))]).boxed()))
            }
            other => Err(Status::unimplemented(format!("action {other}"))),
        }
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented("list_actions"))
    }
}

/// A running test server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    pub fn uri(&self) -> String {
        format!("grpc://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `service` on 127.0.0.1 with a free port, optionally with TLS (cert and key PEM).
pub async fn serve(service: TestService, tls: Option<(String, String)>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = Server::builder();
    if let Some((cert, key)) = tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .unwrap();
    }
    let router = builder.add_service(
        FlightServiceServer::new(service)
            .max_encoding_message_size(usize::MAX)
            .max_decoding_message_size(usize::MAX),
    );
    let task = tokio::spawn(async move {
        // Nagle's algorithm off, as the real server has it: small frames go out at once.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        router.serve_with_incoming(incoming).await.unwrap();
    });
    TestServer { addr, task }
}

/// A TCP proxy in front of a server whose connections the test can cut at once, as a crash
/// or a network failure would.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub fn uri(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// Drops every proxied connection without any gRPC goodbye.
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(Notify::new());
    let cut_signal = Arc::clone(&cut);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let cut = Arc::clone(&cut_signal);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(upstream).await.unwrap();
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.notified() => {}
                }
            });
        }
    });
    Proxy { addr, cut, task }
}

/// A CA and a server certificate for `localhost` signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Flightline test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params.distinguished_name.push(DnType::CommonName, "localhost");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        cert_pem: server_cert.pem(),
        key_pem: server_key.serialize_pem(),
    }
}

/// Waits for `signal` at most a generous while, so a broken test fails instead of hanging.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not complete"))
}
