//! Starting and stopping the server: [`ServerBuilder`] and [`RunningServer`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::auth::TokenAuth;
use crate::catalog::{Catalog, UserTable};
use crate::demo::DemoConfig;
use crate::engine::QueryEngine;
use crate::error::ServerError;
use crate::limits::QueryLimits;
use crate::oidc::{OidcService, OidcVerifier};
use crate::service::FlightSqlServer;
use crate::session::{DEFAULT_SESSION_TTL, SessionStore};
use crate::values::ValueCap;

/// Requests are small; this only bounds what a misbehaving client can make the server buffer.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Memory the queries of one server may hold at once, unless told otherwise.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// How long a stopping server lets in-flight queries finish, unless told otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// After the grace, cancelled queries end their streams at once; this only bounds the wait
/// for connections that still do not close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Configures and starts the embedded server.
#[derive(Clone)]
pub struct ServerBuilder {
    demo: DemoConfig,
    tokens: Vec<String>,
    users: Vec<(String, String)>,
    session_ttl: std::time::Duration,
    oidc: Option<(String, String)>,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    tables: Vec<UserTable>,
    tables_in_memory: bool,
    memory_limit: usize,
    limits: QueryLimits,
    shutdown_grace: Duration,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            demo: DemoConfig::default(),
            tokens: Vec::new(),
            users: Vec::new(),
            session_ttl: DEFAULT_SESSION_TTL,
            oidc: None,
            tls: None,
            tables: Vec::new(),
            tables_in_memory: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            limits: QueryLimits::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl std::fmt::Debug for ServerBuilder {
    // Tokens and the TLS private key never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("demo", &self.demo)
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("users", &self.users.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("session_ttl", &self.session_ttl)
            .field("oidc", &self.oidc)
            .field("tls", &self.tls.is_some())
            .field("tables", &self.tables)
            .field("tables_in_memory", &self.tables_in_memory)
            .field("memory_limit", &self.memory_limit)
            .field("limits", &self.limits)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl ServerBuilder {
    /// Demo data of 100 000 rows per table ending now, no auth, no TLS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows in `log_entries` and in `measures` each; 0 serves no demo tables.
    pub fn demo_rows(mut self, rows: u64) -> Self {
        self.demo.rows = rows;
        self
    }

    /// Seed of the demo generator: the same seed and end give the same rows.
    pub fn seed(mut self, seed: u64) -> Self {
        self.demo.seed = seed;
        self
    }

    /// End of the demo time window (default: now).
    pub fn demo_end(mut self, end: DateTime<Utc>) -> Self {
        self.demo.end = end;
        self
    }

    /// Length of the demo time window (default: 7 days).
    pub fn demo_window(mut self, window: chrono::Duration) -> Self {
        self.demo.window = window;
        self
    }

    /// Accepts `authorization: Bearer <token>` or `x-api-key: <token>`; once any token is set,
    /// every call without a valid one is refused with `Unauthenticated`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Accepts this user: `Handshake` with `authorization: Basic base64(name:password)` issues
    /// a session token valid for [`session_ttl`](Self::session_ttl), which later calls send as
    /// `authorization: Bearer <token>`. Once any user is set, auth is on (static tokens keep
    /// working beside the users).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// How long a session token lives (default [`DEFAULT_SESSION_TTL`], one hour); a client
    /// then handshakes again.
    pub fn session_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Accepts OIDC access tokens (`authorization: Bearer <JWT>`) of `issuer` for `audience`:
    /// signed by a key of the issuer's JWKS, not expired, with that `iss` and `aud`. The
    /// token's `sub` is the caller (a user for the per-user limits). Auth is on once this is
    /// set; static tokens and users keep working beside it. See [`crate::oidc`].
    pub fn oidc(mut self, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        self.oidc = Some((issuer.into(), audience.into()));
        self
    }

    /// Serves TLS with this PEM certificate chain and PEM private key.
    pub fn tls(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Serves a Parquet, CSV or NDJSON file as table `name`.
    pub fn table(self, name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.user_table(UserTable { name: name.into(), path: path.into() })
    }

    /// Serves a user table given as `name=path`.
    pub fn user_table(mut self, table: UserTable) -> Self {
        self.tables.push(table);
        self
    }

    /// Reads every user table into memory at start (scans then read no file; the process
    /// holds each table's decoded size, outside [`memory_limit`](Self::memory_limit)).
    /// Default: tables are scanned from their files by each query.
    pub fn tables_in_memory(mut self, on: bool) -> Self {
        self.tables_in_memory = on;
        self
    }

    /// Bytes the running queries may hold together (default [`DEFAULT_MEMORY_LIMIT`]); past it,
    /// sorts and aggregations spill or fail with `ResourceExhausted`.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Past `timeout` a query is cancelled with `ResourceExhausted` (default
    /// [`crate::limits::DEFAULT_QUERY_TIMEOUT`]); `None` lets queries run for ever.
    pub fn query_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.query_timeout = timeout;
        self
    }

    /// At most `n` queries (at least 1) are planned or run at once; another waits up to
    /// [`Self::queue_timeout`] for a slot, then gets `Unavailable` ("server busy, retry").
    pub fn max_concurrent_queries(mut self, n: usize) -> Self {
        self.limits.max_concurrent = n.max(1);
        self
    }

    /// At most `n` queries (at least 1) of one caller are planned or run at once: one user,
    /// one static token, or one client address when auth is off (default: a quarter of
    /// [`Self::max_concurrent_queries`], at least 1). Another query of that caller waits up to
    /// [`Self::queue_timeout`], then gets `Unavailable` naming `--max-queries-per-user`.
    pub fn max_queries_per_user(mut self, n: usize) -> Self {
        self.limits.max_per_caller = Some(n.max(1));
        self
    }

    /// A result stream whose client reads nothing for `timeout` is cancelled and frees its
    /// slot (default [`crate::limits::DEFAULT_SEND_STALL_TIMEOUT`]); `None` lets it wait.
    pub fn send_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.send_stall_timeout = timeout;
        self
    }

    /// How long a query waits for a free slot (default [`crate::limits::DEFAULT_QUEUE_TIMEOUT`]).
    pub fn queue_timeout(mut self, wait: Duration) -> Self {
        self.limits.queue_timeout = wait;
        self
    }

    /// Statements longer than `bytes` are refused with `InvalidArgument` before parsing
    /// (default [`crate::limits::DEFAULT_MAX_SQL_BYTES`]).
    pub fn max_sql_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_sql_bytes = bytes;
        self
    }

    /// A function call that would build a value (a string, a list) of more than `bytes` is
    /// refused with `ResourceExhausted` before it allocates (default
    /// [`crate::limits::DEFAULT_MAX_VALUE_BYTES`], 64 MiB); so is one that would build more
    /// than [`memory_limit`](Self::memory_limit) over one batch.
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_value_bytes = bytes;
        self
    }

    /// How long [`RunningServer::shutdown`] lets in-flight queries finish before cancelling
    /// them (default [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Binds `listen` (port 0 picks a free port) and serves in the background.
    pub async fn spawn(self, listen: SocketAddr) -> Result<RunningServer, ServerError> {
        let cap = ValueCap {
            max_value_bytes: self.limits.max_value_bytes,
            max_call_bytes: self.memory_limit,
        };
        let catalog = Arc::new(
            Catalog::new(&self.demo, &self.tables, self.memory_limit, self.tables_in_memory)
                .await?
                .with_value_cap(cap),
        );
        let (closing, closing_rx) = watch::channel(false);
        let engine = QueryEngine::new(self.limits.clone(), closing_rx)?;
        let mut service = FlightSqlServer::new(catalog, engine)?;
        let mut auth = TokenAuth::new(self.tokens);
        let sessions = (!self.users.is_empty())
            .then(|| Arc::new(SessionStore::new(self.users, self.session_ttl)));
        if let Some(sessions) = &sessions {
            service = service.with_sessions(Arc::clone(sessions));
            auth = auth.with_sessions(Arc::clone(sessions));
        }
        let verifier = match &self.oidc {
            Some((issuer, audience)) => Some(Arc::new(OidcVerifier::new(issuer, audience)?)),
            None => None,
        };
        if verifier.is_some() {
            auth = auth.with_oidc();
        }
        let flight = FlightServiceServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES);
        // The request id first, so that a call auth refuses names its id too.
        let flight = InterceptedService::new(flight, move |mut request: tonic::Request<()>| {
            let id = crate::request_id::assign(&mut request);
            auth.call(request).map_err(|status| crate::request_id::tag(status, &id))
        });
        let flight = OidcService::new(flight, verifier);

        let mut server = Server::builder();
        if let Some((cert, key)) = &self.tls {
            let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
            server = server.tls_config(tls).map_err(|e| ServerError::Tls(e.to_string()))?;
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Bind { addr: listen, source })?;
        let addr =
            listener.local_addr().map_err(|source| ServerError::Bind { addr: listen, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = server.add_service(flight);
        let task = tokio::spawn(async move {
            let incoming = incoming(listener);
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| ServerError::Serve(e.to_string()))
        });
        tracing::info!(%addr, tls = self.tls.is_some(), "flight sql server listening");
        Ok(RunningServer {
            addr,
            tls: self.tls.is_some(),
            sessions,
            stop: Some(stop),
            closing,
            grace: self.shutdown_grace,
            task,
        })
    }
}

/// The connections `listener` accepts, with `TCP_NODELAY` set. HTTP/2 writes small frames
/// (a response's headers, a short result, a window update) and then waits for an answer; with
/// Nagle's algorithm on, such a write waits for the client's delayed ACK (40 ms on Linux).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// How [`RunningServer::shutdown`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every call in flight finished within the grace.
    Drained,
    /// Calls still running after the grace were cancelled.
    Cut,
}

/// A server serving in the background. Dropping it stops it.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    sessions: Option<Arc<SessionStore>>,
    stop: Option<oneshot::Sender<()>>,
    closing: watch::Sender<bool>,
    grace: Duration,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `grpc://host:port`, or `grpc+tls://host:port` when serving TLS.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "grpc+tls" } else { "grpc" };
        format!("{scheme}://{}", self.addr)
    }

    /// The users and session tokens, when the server has users: add or remove users, end
    /// sessions, see who is connected. `None` without [`ServerBuilder::user`].
    pub fn sessions(&self) -> Option<&Arc<SessionStore>> {
        self.sessions.as_ref()
    }

    /// Stops accepting calls, lets in-flight calls finish for the shutdown grace, then
    /// cancels the queries still running (their clients get `Unavailable`) and returns
    /// whether any had to be cancelled.
    pub async fn shutdown(mut self) -> Result<Stopped, ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Ok(ended) = tokio::time::timeout(self.grace, &mut self.task).await {
            ended.map_err(|e| ServerError::Serve(e.to_string()))??;
            return Ok(Stopped::Drained);
        }
        tracing::warn!(grace = ?self.grace, "queries still running after the shutdown grace: cancelling them");
        let _ = self.closing.send(true);
        match tokio::time::timeout(CLOSE_WAIT, &mut self.task).await {
            Ok(ended) => ended.map_err(|e| ServerError::Serve(e.to_string()))??,
            Err(_) => {
                tracing::warn!("connections still open after cancelling the queries: closing them");
                self.task.abort();
            }
        }
        Ok(Stopped::Cut)
    }

    /// Waits until the server ends on its own (it only does on an error).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        (&mut self.task).await.map_err(|e| ServerError::Serve(e.to_string()))?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Nobody waits for a grace any more: cancel what still runs.
        let _ = self.closing.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        use futures::StreamExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let server_side = accepted.next().await.unwrap().unwrap();
        assert!(server_side.nodelay().unwrap(), "Nagle's algorithm is still on");
    }

    #[test]
    fn debug_redacts_tokens_and_the_private_key() {
        let b = ServerBuilder::new()
            .token("s3cret-token")
            .user("alice", "pa55word")
            .tls("CERT", "PRIVATE-KEY-BYTES");
        let shown = format!("{b:?}");
        assert!(!shown.contains("s3cret-token") && !shown.contains("PRIVATE"), "{shown}");
        assert!(!shown.contains("pa55word") && shown.contains("alice"), "{shown}");
        assert!(shown.contains("1 redacted"), "{shown}");
    }
}
