//! The Flight SQL client.
//!
//! ```no_run
//! # async fn demo() -> flightline_core::Result<()> {
//! use flightline_core::TimeRange;
//! use flightline_core::client::FlightSqlClient;
//!
//! let client = FlightSqlClient::builder("grpc://127.0.0.1:50051")
//!     .header("authorization", "Bearer my-token")
//!     .header("x-tenant-id", "production")
//!     .connect()
//!     .await?;
//! let batches = client
//!     .query("SELECT level, count(*) FROM log_entries GROUP BY level", Some(TimeRange::parse_relative("7d")?))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The client wraps arrow-flight's `FlightServiceClient` over one tonic channel: cloning it is
//! cheap, it is `Send + Sync`, and every method takes `&self`. Headers are attached to each
//! request (client-wide headers, then the token provider's `authorization`, then the call's
//! own time range, limit and headers), so one client serves concurrent queries with different
//! time ranges.
//!
//! Servers that authenticate by the Flight handshake (user and password in, bearer token
//! out: Dremio, Arrow's example servers, `flightline serve --user`) are served by
//! [`ClientBuilder::basic_auth`]: the token is renewed once when it expires, an opt-in cookie
//! jar ([`ClientBuilder::cookies`]) keeps session cookies, and [`FlightSqlClient::close`]
//! sends `CloseSession`.

mod auth;
mod builder;
mod cache;
mod cookies;
mod decode;
mod endpoint;
mod handshake;
mod oidc;
mod options;
mod plaintext;
mod session;
mod stream;
mod tls;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow::record_batch::RecordBatch;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandStatementQuery, ProstMessageExt,
    TicketStatementQuery,
};
use arrow_flight::{Action, FlightDescriptor, Ticket};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;

pub use auth::{EnvToken, FileToken, StaticToken, TokenProvider, is_secret_header};
pub use builder::{ClientBuilder, DEFAULT_MAX_LOCATION_CONNECTIONS};
pub use handshake::{
    BasicCredentials, CredentialExchange, ExchangeRequest, HandshakeReply, HandshakeTokenProvider,
    SessionGrant, flight_handshake,
};
pub use oidc::{
    ClientSecret, DEFAULT_OIDC_TIMEOUT, DEFAULT_REFRESH_MARGIN, MICROMEGAS_OIDC_AUDIENCE,
    MICROMEGAS_OIDC_CLIENT_ID, MICROMEGAS_OIDC_CLIENT_SECRET, MICROMEGAS_OIDC_ISSUER,
    OidcClientCredentials,
};
pub use options::QueryOptions;
pub use stream::QueryStream;

use crate::TimeRange;
use crate::error::{Error, Result};
use auth::{CredentialScope, Credentials, HeaderSet, Redacted, bearer_value};
use cache::LruCache;
use cookies::CookieJar;
use endpoint::BatchStream;
use plaintext::PlaintextWarnings;
use tls::{ConnectSettings, Target, parse_target};

/// The server `from_env` talks to when `FLIGHTLINE_URI` is not set.
pub const DEFAULT_URI: &str = "grpc://127.0.0.1:50051";
/// Largest gRPC message accepted or sent by default. Micromegas hit tonic's 4 MiB default
/// with wide batches; 256 MiB leaves room for any sane batch.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;
/// How long to wait for a TCP (and TLS) connection by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Flight SQL client. See the [module documentation](self).
#[derive(Clone)]
pub struct FlightSqlClient {
    shared: Arc<Shared>,
}

/// What every clone of a client shares.
pub(crate) struct Shared {
    /// The URI as the user gave it, for messages.
    uri: String,
    target: Target,
    flight: FlightServiceClient<Channel>,
    headers: HeaderSet,
    token_provider: Option<Arc<dyn TokenProvider>>,
    /// The handshake behind `token_provider`, when the client authenticates by handshake.
    session: Option<Arc<HandshakeTokenProvider>>,
    /// The opt-in cookie jar.
    cookies: Option<Arc<CookieJar>>,
    /// Which endpoint locations besides the server itself receive credentials.
    credentials: CredentialScope,
    allow_insecure_locations: bool,
    settings: ConnectSettings,
    request_timeout: Option<Duration>,
    /// Connections to endpoint locations on other servers, by `http(s)://host:port`, the
    /// least recently used closed past the builder's limit.
    locations: Mutex<LruCache<FlightServiceClient<Channel>>>,
    /// Where credentials went in clear to another machine, already warned about.
    plaintext: PlaintextWarnings,
}

impl Shared {
    /// True when the client itself holds credentials (secret headers, a token provider): the
    /// ones whose travel in clear deserves a warning.
    fn has_credentials(&self) -> bool {
        self.headers.has_secrets() || self.token_provider.is_some()
    }
}

/// A prepared statement's schemas, read without executing the query.
#[derive(Debug, Clone)]
pub struct PreparedStatement {
    /// The schema of the rows the query would return (empty if the server did not say).
    pub dataset_schema: SchemaRef,
    /// The schema of the query's parameters (empty when it has none).
    pub parameter_schema: SchemaRef,
    /// The server's handle. The statement is already closed on the server when `prepare`
    /// returns; Micromegas and the Flightline server put the SQL text here.
    pub handle: Bytes,
}

impl FlightSqlClient {
    /// Starts configuring a client for `uri` (`grpc://`, `grpc+tls://`, `http://`, `https://`).
    pub fn builder(uri: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(uri)
    }

    /// Connects to `FLIGHTLINE_URI` (default [`DEFAULT_URI`]) with the bearer token in
    /// `FLIGHTLINE_TOKEN`, if set. Use [`ClientBuilder::from_env`] to add more options.
    pub async fn from_env() -> Result<Self> {
        ClientBuilder::from_env().connect().await
    }

    /// The server URI this client was built for.
    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// Runs `sql` and collects every batch, from every endpoint, in order.
    pub async fn query(&self, sql: &str, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        self.query_with(sql, range, &QueryOptions::default()).await
    }

    /// [`query`](Self::query) with per-call options.
    pub async fn query_with(
        &self,
        sql: &str,
        range: Option<TimeRange>,
        options: &QueryOptions,
    ) -> Result<Vec<RecordBatch>> {
        self.query_stream_with(sql, range, options).await?.try_collect().await
    }

    /// Runs `sql` and returns its batches as a stream, read from the server as the caller
    /// pulls them (back-pressure: nothing is buffered beyond what tonic and HTTP/2 hold).
    pub async fn query_stream(&self, sql: &str, range: Option<TimeRange>) -> Result<QueryStream> {
        self.query_stream_with(sql, range, &QueryOptions::default()).await
    }

    /// [`query_stream`](Self::query_stream) with per-call options.
    ///
    /// Errors that happen before the first batch (bad SQL, authentication, an unreachable
    /// server) are returned here; later ones arrive as an `Err` item of the stream. Every call
    /// of the query carries one `x-request-id` ([`QueryStream::request_id`]), and every error
    /// names it ([`Error::request_id`](crate::Error::request_id)).
    pub async fn query_stream_with(
        &self,
        sql: &str,
        range: Option<TimeRange>,
        options: &QueryOptions,
    ) -> Result<QueryStream> {
        let id = options.resolve_request_id()?;
        let call = options.call_headers(range.as_ref(), &id)?;
        let started = self.start_query(sql, options, call).await;
        let (schema, count, batches) = started.map_err(|err| err.with_request_id(&id))?;
        let named = id.clone();
        let batches = batches.map_err(move |err| err.with_request_id(&named)).boxed();
        Ok(QueryStream::new(schema, count, batches, id))
    }

    /// Sends the query: its announced schema, endpoint count and batches.
    async fn start_query(
        &self,
        sql: &str,
        options: &QueryOptions,
        call: HeaderSet,
    ) -> Result<(Option<SchemaRef>, usize, BatchStream)> {
        let shared = &self.shared;
        if options.direct_ticket {
            let ticket = TicketStatementQuery { statement_handle: Bytes::from(sql.to_string()) };
            let fetch = shared.main_fetch(0, Ticket::new(ticket.as_any().encode_to_vec()));
            let batches = shared.do_get(fetch, &call).await?;
            return Ok((None, 1, endpoint::stop_after_error(batches)));
        }

        let command = CommandStatementQuery { query: sql.to_string(), transaction_id: None };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let flight = &shared.flight;
        let info = shared
            .send(descriptor, &call, "GetFlightInfo", &shared.uri, Credentials::Send, |request| {
                let mut flight = flight.clone();
                async move { flight.get_flight_info(request).await }
            })
            .await?;
        let schema = announced_schema(&info.schema);
        let fetches = info
            .endpoint
            .into_iter()
            .enumerate()
            .map(|(index, endpoint)| shared.resolve(index, endpoint))
            .collect::<Result<Vec<_>>>()?;
        let count = fetches.len();
        let shared = Arc::clone(shared);
        let batches = if options.parallel_endpoints > 1 && count > 1 {
            endpoint::parallel(shared, fetches, call, options.parallel_endpoints)
        } else {
            endpoint::sequential(shared, fetches, call)
        };
        Ok((schema, count, batches))
    }

    /// Reads the result and parameter schemas of `sql` without running it (DoAction
    /// `CreatePreparedStatement`), then closes the statement on the server.
    pub async fn prepare(&self, sql: &str) -> Result<PreparedStatement> {
        self.prepare_with(sql, &QueryOptions::default()).await
    }

    /// [`prepare`](Self::prepare) with per-call options: `preserve_dictionary` changes the
    /// schema the server reports; extra headers are sent too.
    pub async fn prepare_with(
        &self,
        sql: &str,
        options: &QueryOptions,
    ) -> Result<PreparedStatement> {
        let id = options.resolve_request_id()?;
        let call = options.call_headers(None, &id)?;
        self.prepare_under(sql, &call).await.map_err(|err| err.with_request_id(&id))
    }

    async fn prepare_under(&self, sql: &str, call: &HeaderSet) -> Result<PreparedStatement> {
        let body =
            ActionCreatePreparedStatementRequest { query: sql.to_string(), transaction_id: None };
        let action = Action::new("CreatePreparedStatement", body.as_any().encode_to_vec());
        let reply = self.shared.first_action_result(action, call).await?;
        let any = Any::decode(reply).map_err(|err| {
            Error::Protocol(format!("CreatePreparedStatement returned undecodable bytes: {err}"))
        })?;
        let result: ActionCreatePreparedStatementResult = any
            .unpack()
            .map_err(|err| Error::Protocol(format!("CreatePreparedStatement result: {err}")))?
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "CreatePreparedStatement returned a {} instead of an \
                     ActionCreatePreparedStatementResult",
                    any.type_url
                ))
            })?;
        let schemas = decode_schema(&result.dataset_schema, "dataset").and_then(|dataset| {
            Ok((dataset, decode_schema(&result.parameter_schema, "parameter")?))
        });
        // Closed before the schemas are judged: a statement whose schema cannot be read must
        // not stay open on the server either.
        self.shared.close_prepared(&result.prepared_statement_handle, call).await;
        let (dataset_schema, parameter_schema) = schemas?;
        Ok(PreparedStatement {
            dataset_schema,
            parameter_schema,
            handle: result.prepared_statement_handle,
        })
    }
}

impl fmt::Debug for FlightSqlClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("FlightSqlClient")
            .field("uri", &shared.uri)
            .field("headers", &shared.headers)
            .field("token_provider", &shared.token_provider.is_some())
            .field("handshake", &shared.session.is_some())
            .field("cookies", &shared.cookies)
            .field("credentials", &shared.credentials)
            .field("allow_insecure_locations", &shared.allow_insecure_locations)
            .field("settings", &shared.settings)
            .field("request_timeout", &shared.request_timeout)
            .finish()
    }
}

impl Shared {
    /// Wraps `message` in a request carrying the client's headers, the provider's `token`,
    /// the server's cookies and the call's own headers, in that order of precedence. Secret
    /// headers are left out when `credentials` says this destination must not see them (the
    /// caller then passes no token either).
    fn request<T>(
        &self,
        message: T,
        call: &HeaderSet,
        what: &str,
        uri: &str,
        credentials: Credentials,
        token: Option<&str>,
    ) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        self.headers.apply(metadata, credentials);
        if let Some(token) = token {
            metadata.insert("authorization", bearer_value(token)?);
        }
        // Per origin: a location only gets back the cookies it set itself.
        if let (Some(jar), Ok(target)) = (&self.cookies, parse_target(uri)) {
            jar.apply(&target.http_uri, target.tls, metadata);
        }
        call.apply(metadata, credentials);
        tracing::debug!(
            uri,
            call = what,
            headers = ?Redacted(self.headers.raw()),
            call_headers = ?Redacted(call.raw()),
            token_provider = self.token_provider.is_some(),
            ?credentials,
            "flight request"
        );
        Ok(request)
    }

    /// Sends one call (`send` makes the RPC from a request) and awaits its answer. When the
    /// server refuses the provider's token with `Unauthenticated`, the provider may renew it
    /// (the handshake runs again) and the call is sent once more: never more than once, and a
    /// refused renewal is its own error. A streamed result is retried only here, before any
    /// of its batches was read.
    async fn send<M, R, F, Fut>(
        &self,
        message: M,
        call: &HeaderSet,
        what: &str,
        uri: &str,
        credentials: Credentials,
        send: F,
    ) -> Result<R>
    where
        M: Clone,
        F: Fn(tonic::Request<M>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<R>, tonic::Status>>,
    {
        let provider = match credentials {
            Credentials::Send => self.token_provider.as_ref(),
            Credentials::Withhold => None,
        };
        let token = match provider {
            Some(provider) => Some(provider.token().await?),
            None => None,
        };
        let request =
            self.request(message.clone(), call, what, uri, credentials, token.as_deref())?;
        let refused = match self.answer(what, uri, send(request)).await {
            Err(err @ Error::Unauthenticated { .. }) => err,
            other => return other,
        };
        let (Some(provider), Some(rejected)) = (provider, token) else {
            return Err(refused);
        };
        let Some(fresh) = provider.renew(&rejected).await? else {
            return Err(refused);
        };
        tracing::debug!(uri, call = what, "token refused; retrying once with a renewed one");
        let request = self.request(message, call, what, uri, credentials, Some(&fresh))?;
        self.answer(what, uri, send(request)).await
    }

    /// Awaits the server's answer within the request timeout and maps a failure to a typed
    /// error, keeping the cookies it sets. The timeout covers the wait for the answer, not
    /// reading a streamed result.
    async fn answer<T>(
        &self,
        what: &str,
        uri: &str,
        call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let outcome = match self.request_timeout {
            Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| Error::Timeout {
                message: format!("{uri} did not answer {what} within {limit:?}"),
            })?,
            None => call.await,
        };
        if let (Some(jar), Ok(target)) = (&self.cookies, parse_target(uri)) {
            let metadata = match &outcome {
                Ok(response) => response.metadata(),
                Err(status) => status.metadata(),
            };
            jar.store(&target.http_uri, metadata);
        }
        outcome.map(tonic::Response::into_inner).map_err(|status| Error::from_status(&status, uri))
    }

    async fn first_action_result(&self, action: Action, call: &HeaderSet) -> Result<Bytes> {
        let what = format!("DoAction {}", action.r#type);
        let mut results = self.do_action(action, call, &what).await?;
        let first =
            results.message().await.map_err(|status| Error::from_status(&status, &self.uri))?;
        first
            .map(|result| result.body)
            .ok_or_else(|| Error::Protocol(format!("{what} returned no result")))
    }

    /// Sends DoAction to the main server and returns its result stream.
    async fn do_action(
        &self,
        action: Action,
        call: &HeaderSet,
        what: &str,
    ) -> Result<tonic::Streaming<arrow_flight::Result>> {
        let flight = &self.flight;
        self.send(action, call, what, &self.uri, Credentials::Send, |request| {
            let mut flight = flight.clone();
            async move { flight.do_action(request).await }
        })
        .await
    }

    /// Best effort: a server that forgot the statement or does not implement closing costs
    /// nothing but a log line.
    async fn close_prepared(&self, handle: &Bytes, call: &HeaderSet) {
        let body =
            ActionClosePreparedStatementRequest { prepared_statement_handle: handle.clone() };
        let action = Action::new("ClosePreparedStatement", body.as_any().encode_to_vec());
        let outcome = async {
            let results = self.do_action(action, call, "DoAction ClosePreparedStatement").await?;
            results
                .map_err(|status| Error::from_status(&status, &self.uri))
                .try_for_each(|_| async { Ok(()) })
                .await
        };
        if let Err(err) = outcome.await {
            tracing::debug!(uri = %self.uri, error = %err, "closing a prepared statement failed");
        }
    }
}

/// The FlightInfo's schema, if the server sent a readable one. It is informational (the
/// batches carry their own), so a server sending garbage there is tolerated.
fn announced_schema(bytes: &[u8]) -> Option<SchemaRef> {
    if bytes.is_empty() {
        return None;
    }
    match try_schema_from_ipc_buffer(bytes) {
        Ok(schema) => Some(Arc::new(schema)),
        Err(err) => {
            tracing::debug!(error = %err, "ignoring an unreadable FlightInfo schema");
            None
        }
    }
}

fn decode_schema(bytes: &[u8], which: &str) -> Result<SchemaRef> {
    if bytes.is_empty() {
        return Ok(Arc::new(Schema::empty()));
    }
    try_schema_from_ipc_buffer(bytes).map(Arc::new).map_err(|err| {
        Error::Protocol(format!("the prepared statement's {which} schema is not Arrow IPC: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_schema_bytes_mean_an_empty_schema() {
        assert_eq!(decode_schema(&[], "dataset").unwrap().fields().len(), 0);
        assert!(matches!(decode_schema(&[1, 2, 3, 4, 5], "dataset"), Err(Error::Protocol(_))));
        assert!(announced_schema(&[]).is_none());
        assert!(announced_schema(&[9; 16]).is_none());
    }
}
