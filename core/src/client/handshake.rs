//! The Flight `Handshake`: credentials in, a session token out, renewed when it expires.
//!
//! Dremio, Arrow's example Flight SQL servers, InfluxDB and Ballista's Flight SQL frontend
//! authenticate this way: the client sends `Handshake` with
//! `authorization: Basic base64(user:password)`, the server answers with
//! `authorization: Bearer <token>` in its response headers (some servers put the token in the
//! handshake payload or the trailers instead; all three are read), and every later call carries
//! the bearer token. [`ClientBuilder::basic_auth`](super::ClientBuilder::basic_auth) does this.
//!
//! The pieces are public for callers whose servers exchange other credentials:
//!
//! 1. [`CredentialExchange`] turns credentials into a token; [`BasicCredentials`] is the
//!    standard one, [`flight_handshake`] the RPC to build others on.
//! 2. [`HandshakeTokenProvider`] is a [`TokenProvider`] that runs the exchange when it has no
//!    token and again, once, when the server refuses the token it gave.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::HandshakeRequest;
use arrow_flight::flight_service_client::FlightServiceClient;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::future::BoxFuture;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;

use super::TokenProvider;
use super::cookies::CookieJar;
use crate::error::{Error, Result};

/// What an exchange needs to reach the server.
pub struct ExchangeRequest {
    /// A Flight client of the server the caller connects to (cheap to clone).
    pub flight: FlightServiceClient<Channel>,
    /// The client-wide headers (and cookies) to send with the exchange.
    pub metadata: MetadataMap,
    /// The server URI, for messages.
    pub uri: String,
}

/// What an exchange obtained.
pub struct SessionGrant {
    /// The bearer token for later calls.
    pub token: String,
    /// The response headers of the exchange (a cookie jar reads `set-cookie` from them).
    pub headers: MetadataMap,
}

impl fmt::Debug for SessionGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGrant").field("token", &"<redacted>").finish_non_exhaustive()
    }
}

/// Turns credentials into a session token: a Flight handshake, or any exchange of the
/// caller's (an identity provider, a custom handshake payload).
///
/// Implement it by returning a boxed future. An error whose credentials were refused should be
/// [`Error::CredentialsRefused`], which the client never retries.
pub trait CredentialExchange: Send + Sync {
    /// Obtains a fresh token.
    fn exchange(&self, request: ExchangeRequest) -> BoxFuture<'_, Result<SessionGrant>>;
}

/// Where a password comes from: read at every handshake, so a rotated one is picked up.
#[derive(Clone)]
enum Password {
    Fixed(String),
    Env(String),
    File(PathBuf),
}

/// A user name and password for HTTP Basic authentication in the Flight handshake.
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct BasicCredentials {
    user: String,
    password: Password,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.password {
            Password::Fixed(_) => "<redacted>".to_string(),
            Password::Env(var) => format!("<from ${var}>"),
            Password::File(path) => format!("<from {}>", path.display()),
        };
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &format_args!("{source}"))
            .finish()
    }
}

impl BasicCredentials {
    /// A fixed user name and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self { user: user.into(), password: Password::Fixed(password.into()) }
    }

    /// The password is read from the environment variable `var` at every handshake.
    pub fn password_from_env(user: impl Into<String>, var: impl Into<String>) -> Self {
        Self { user: user.into(), password: Password::Env(var.into()) }
    }

    /// The password is read from `path` at every handshake (one trailing newline ignored).
    pub fn password_from_file(user: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self { user: user.into(), password: Password::File(path.into()) }
    }

    /// The user from `user_var` (read now) and the password from `password_var` (read at every
    /// handshake), e.g. `from_env("FLIGHTLINE_USER", "FLIGHTLINE_PASSWORD")`.
    pub fn from_env(user_var: &str, password_var: &str) -> Result<Self> {
        let user = std::env::var(user_var).ok().filter(|user| !user.trim().is_empty()).ok_or_else(
            || Error::Config(format!("the user name variable {user_var} is not set or empty")),
        )?;
        Ok(Self::password_from_env(user.trim(), password_var))
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks what can be checked before connecting: a user name that Basic can carry.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.user.is_empty() || self.user.contains(':') {
            return Err(Error::Config(format!(
                "the user name {:?} must be non-empty and must not contain ':' (HTTP Basic \
                 separates the user from the password with it)",
                self.user
            )));
        }
        Ok(())
    }

    async fn password(&self) -> Result<String> {
        let password = match &self.password {
            Password::Fixed(password) => password.clone(),
            Password::Env(var) => std::env::var(var).map_err(|_| {
                Error::Config(format!(
                    "the password variable {var} for user {:?} is not set (or not UTF-8)",
                    self.user
                ))
            })?,
            Password::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|err| {
                    Error::Config(format!(
                        "cannot read the password file {}: {err}",
                        path.display()
                    ))
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_string()
            }
        };
        if password.is_empty() {
            return Err(Error::Config(format!("the password for user {:?} is empty", self.user)));
        }
        Ok(password)
    }

    /// The `authorization` value: `Basic base64(user:password)`, marked sensitive.
    async fn header(&self) -> Result<MetadataValue<tonic::metadata::Ascii>> {
        self.validate()?;
        let encoded = STANDARD.encode(format!("{}:{}", self.user, self.password().await?));
        let mut value = MetadataValue::try_from(format!("Basic {encoded}"))
            .map_err(|_| Error::Config("Basic credentials are not valid header text".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl CredentialExchange for BasicCredentials {
    fn exchange(&self, request: ExchangeRequest) -> BoxFuture<'_, Result<SessionGrant>> {
        Box::pin(async move {
            let ExchangeRequest { flight, mut metadata, uri } = request;
            metadata.insert("authorization", self.header().await?);
            let reply =
                flight_handshake(flight, metadata, Bytes::new(), &uri).await.map_err(|err| {
                    match err {
                        Error::CredentialsRefused { uri, message } => Error::CredentialsRefused {
                            uri,
                            message: format!("user {:?}: {message}", self.user),
                        },
                        other => other,
                    }
                })?;
            let token = reply.token.ok_or_else(|| {
                Error::Protocol(format!(
                    "{uri} accepted the handshake of user {:?} but sent no bearer token (neither \
                     an `authorization` header nor a payload)",
                    self.user
                ))
            })?;
            Ok(SessionGrant { token, headers: reply.headers })
        })
    }
}

/// The server's answer to a [`flight_handshake`].
pub struct HandshakeReply {
    /// The bearer token from the `authorization` response header or trailer, else the first
    /// non-empty UTF-8 payload.
    pub token: Option<String>,
    /// The first non-empty payload the server sent.
    pub payload: Bytes,
    /// The response headers.
    pub headers: MetadataMap,
}

impl fmt::Debug for HandshakeReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeReply")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("payload_bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// Sends the Flight `Handshake` RPC with `metadata` and one request carrying `payload`, and
/// reads the answer to its end.
///
/// `Unauthenticated` and `PermissionDenied` become [`Error::CredentialsRefused`]; a server
/// without a handshake gives [`Error::Unimplemented`].
pub async fn flight_handshake(
    mut flight: FlightServiceClient<Channel>,
    metadata: MetadataMap,
    payload: Bytes,
    uri: &str,
) -> Result<HandshakeReply> {
    let message = HandshakeRequest { protocol_version: 0, payload };
    let mut request = tonic::Request::new(futures::stream::iter([message]));
    *request.metadata_mut() = metadata;
    let response = flight.handshake(request).await.map_err(|status| refused(&status, uri))?;
    let headers = response.metadata().clone();
    let mut answers = response.into_inner();
    let mut payload = Bytes::new();
    while let Some(answer) = answers.message().await.map_err(|status| refused(&status, uri))? {
        if payload.is_empty() {
            payload = answer.payload;
        }
    }
    let trailers = answers.trailers().await.ok().flatten();
    let token = bearer(&headers)
        .or_else(|| trailers.as_ref().and_then(bearer))
        .or_else(|| std::str::from_utf8(&payload).ok().map(str::trim).map(str::to_string))
        .filter(|token| !token.is_empty() && MetadataValue::try_from(token.as_str()).is_ok());
    Ok(HandshakeReply { token, payload, headers })
}

fn refused(status: &tonic::Status, uri: &str) -> Error {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            Error::CredentialsRefused { uri: uri.to_string(), message: status.message().into() }
        }
        tonic::Code::Unimplemented => Error::Unimplemented {
            message: format!(
                "{uri} does not implement the Flight handshake ({}); it may expect a bearer \
                 token or API key instead of a user and password",
                status.message()
            ),
        },
        _ => Error::from_status(status, uri),
    }
}

/// The token of an `authorization: Bearer <token>` entry.
fn bearer(metadata: &MetadataMap) -> Option<String> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Where a provider keeps the cookies of its exchanges: the client's jar for the server.
pub(crate) struct JarHook {
    pub(crate) jar: Arc<CookieJar>,
    pub(crate) origin: String,
    pub(crate) tls: bool,
}

/// A [`TokenProvider`] backed by a [`CredentialExchange`] with one server.
///
/// The first request runs the exchange; later ones reuse its token. When the server refuses
/// the token (`Unauthenticated`, e.g. because it expired), the client asks
/// [`renew`](TokenProvider::renew): the exchange runs once more and the call is retried once.
/// Concurrent calls refused with the same token share one renewal.
pub struct HandshakeTokenProvider {
    exchange: Arc<dyn CredentialExchange>,
    flight: FlightServiceClient<Channel>,
    metadata: MetadataMap,
    uri: String,
    timeout: Option<Duration>,
    jar: Option<JarHook>,
    current: tokio::sync::Mutex<Option<String>>,
}

impl fmt::Debug for HandshakeTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeTokenProvider").field("uri", &self.uri).finish_non_exhaustive()
    }
}

impl HandshakeTokenProvider {
    /// A provider exchanging with the server behind `flight` (named `uri` in messages),
    /// sending `metadata` with each exchange.
    pub fn new(
        exchange: Arc<dyn CredentialExchange>,
        flight: FlightServiceClient<Channel>,
        metadata: MetadataMap,
        uri: impl Into<String>,
    ) -> Self {
        Self {
            exchange,
            flight,
            metadata,
            uri: uri.into(),
            timeout: None,
            jar: None,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Bounds each exchange (the client's request timeout).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn with_jar(mut self, jar: Option<JarHook>) -> Self {
        self.jar = jar;
        self
    }

    /// Runs the exchange now and keeps its token.
    pub async fn authenticate(&self) -> Result<()> {
        let mut current = self.current.lock().await;
        *current = Some(self.run().await?);
        Ok(())
    }

    /// Forgets the token (after `CloseSession`): the next request exchanges again.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    async fn run(&self) -> Result<String> {
        let mut metadata = self.metadata.clone();
        if let Some(hook) = &self.jar {
            hook.jar.apply(&hook.origin, hook.tls, &mut metadata);
        }
        let request =
            ExchangeRequest { flight: self.flight.clone(), metadata, uri: self.uri.clone() };
        let exchange = self.exchange.exchange(request);
        let grant = match self.timeout {
            Some(limit) => {
                tokio::time::timeout(limit, exchange).await.map_err(|_| Error::Timeout {
                    message: format!("{} did not answer the handshake within {limit:?}", self.uri),
                })??
            }
            None => exchange.await?,
        };
        if let Some(hook) = &self.jar {
            hook.jar.store(&hook.origin, &grant.headers);
        }
        tracing::debug!(uri = %self.uri, "handshake obtained a session token");
        Ok(grant.token)
    }
}

impl TokenProvider for HandshakeTokenProvider {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let mut current = self.current.lock().await;
            if let Some(token) = current.as_ref() {
                return Ok(token.clone());
            }
            let token = self.run().await?;
            *current = Some(token.clone());
            Ok(token)
        })
    }

    fn renew<'a>(&'a self, rejected: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let mut current = self.current.lock().await;
            // Another call already renewed the token this one was refused with.
            if let Some(token) = current.as_ref().filter(|token| token.as_str() != rejected) {
                return Ok(Some(token.clone()));
            }
            *current = None;
            let token = self.run().await?;
            *current = Some(token.clone());
            Ok(Some(token))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", BasicCredentials::new("alice", "hunter2"));
        assert!(shown.contains("alice") && !shown.contains("hunter2"), "{shown}");
        let shown = format!("{:?}", BasicCredentials::password_from_env("a", "PW_VAR"));
        assert!(shown.contains("PW_VAR"), "{shown}");
    }

    #[tokio::test]
    async fn the_basic_header_encodes_user_and_password() {
        let header = BasicCredentials::new("alice", "pa:ss").header().await.unwrap();
        assert!(header.is_sensitive());
        // base64("alice:pa:ss")
        assert_eq!(header.to_str().unwrap(), "Basic YWxpY2U6cGE6c3M=");
        let bad = BasicCredentials::new("al:ice", "pw").header().await.unwrap_err();
        assert!(matches!(&bad, Error::Config(m) if m.contains("al:ice")), "{bad}");
    }

    #[tokio::test]
    async fn passwords_from_files_and_env_are_read_at_each_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "first\n").unwrap();
        let credentials = BasicCredentials::password_from_file("u", &path);
        assert_eq!(credentials.password().await.unwrap(), "first");
        std::fs::write(&path, " second ").unwrap();
        // Only the line ending is stripped: spaces may be part of a password.
        assert_eq!(credentials.password().await.unwrap(), " second ");
        std::fs::write(&path, "").unwrap();
        assert!(
            matches!(credentials.password().await, Err(Error::Config(m)) if m.contains("empty"))
        );
        let unset = BasicCredentials::password_from_env("u", "FLIGHTLINE_TEST_PW_NEVER_SET");
        let err = unset.password().await.unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("NEVER_SET")), "{err}");
        let err = BasicCredentials::from_env("FLIGHTLINE_TEST_USER_NEVER_SET", "X").unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("USER_NEVER_SET")), "{err}");
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        let mut metadata = MetadataMap::new();
        assert_eq!(bearer(&metadata), None);
        metadata.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&metadata), None);
        metadata.insert("authorization", "bearer  tok-1 ".parse().unwrap());
        assert_eq!(bearer(&metadata).as_deref(), Some("tok-1"));
    }

    #[test]
    fn refusals_are_typed() {
        let uri = "grpc://h:1";
        let err = refused(&tonic::Status::unauthenticated("bad password"), uri);
        assert!(
            matches!(&err, Error::CredentialsRefused { message, .. } if message == "bad password")
        );
        assert!(!err.is_retryable());
        let err = refused(&tonic::Status::unimplemented("no"), uri);
        assert!(matches!(&err, Error::Unimplemented { message } if message.contains("bearer")));
        let err = refused(&tonic::Status::unavailable("later"), uri);
        assert!(err.is_retryable());
    }
}
