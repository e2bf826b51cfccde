//! [`ClientBuilder`]: every option of a [`FlightSqlClient`], checked once by `connect`.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::auth::{CredentialScope, Credentials, HeaderSet, Redacted, TokenProvider};
use super::cache::LruCache;
use super::cookies::CookieJar;
use super::handshake::{BasicCredentials, CredentialExchange, HandshakeTokenProvider, JarHook};
use super::plaintext::PlaintextWarnings;
use super::tls::{ConnectSettings, parse_target};
use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_URI, FlightSqlClient, Shared,
};
use crate::error::{Error, Result};

/// How many connections to endpoint locations a client keeps open by default; the least
/// recently used one is closed past that.
pub const DEFAULT_MAX_LOCATION_CONNECTIONS: usize = 16;

/// Configures and connects a [`FlightSqlClient`].
///
/// Credentials (the values of secret headers such as `authorization` or `x-api-key`, see
/// [`is_secret_header`](super::is_secret_header), and the token provider's token) go to the
/// server named by the URI only. A result whose endpoints live on other hosts gets the
/// non-secret headers there; list the hosts that should see credentials too with
/// [`credential_hosts`](Self::credential_hosts), or send them everywhere with
/// [`send_credentials_to_all_locations`](Self::send_credentials_to_all_locations).
#[derive(Clone)]
pub struct ClientBuilder {
    uri: String,
    headers: Vec<(String, String)>,
    token_provider: Option<Arc<dyn TokenProvider>>,
    exchange: Option<Arc<dyn CredentialExchange>>,
    cookies: bool,
    ca_pem: Option<Vec<u8>>,
    ca_file: Option<PathBuf>,
    domain: Option<String>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    max_message_size: usize,
    credential_hosts: Vec<String>,
    credentials_everywhere: bool,
    allow_insecure_locations: bool,
    max_location_connections: usize,
}

impl ClientBuilder {
    /// A builder for `uri` with the defaults: no headers, system TLS roots, a 10 s connect
    /// timeout, no request timeout, a 256 MiB message limit, credentials for this server only,
    /// no plaintext endpoint locations behind a TLS server.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            headers: Vec::new(),
            token_provider: None,
            exchange: None,
            cookies: false,
            ca_pem: None,
            ca_file: None,
            domain: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            credential_hosts: Vec::new(),
            credentials_everywhere: false,
            allow_insecure_locations: false,
            max_location_connections: DEFAULT_MAX_LOCATION_CONNECTIONS,
        }
    }

    /// A builder for `FLIGHTLINE_URI` (default [`DEFAULT_URI`]) that sends
    /// `authorization: Bearer $FLIGHTLINE_TOKEN` when that variable is set and not empty.
    pub fn from_env() -> Self {
        let uri = non_empty_env("FLIGHTLINE_URI").unwrap_or_else(|| DEFAULT_URI.to_string());
        let builder = Self::new(uri);
        match non_empty_env("FLIGHTLINE_TOKEN") {
            Some(token) => builder.bearer_token(token),
            None => builder,
        }
    }

    /// Sends `name: value` with every request (`authorization`, `x-api-key`, `x-tenant-id`,
    /// ...). Repeating a name replaces the earlier value. Checked by [`connect`](Self::connect).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into().trim().to_ascii_lowercase();
        self.headers.retain(|(existing, _)| *existing != name);
        self.headers.push((name, value.into()));
        self
    }

    /// Sends `authorization: Bearer <token>` with every request.
    pub fn bearer_token(self, token: impl AsRef<str>) -> Self {
        let value = format!("Bearer {}", token.as_ref());
        self.header("authorization", value)
    }

    /// Sends `x-api-key: <key>` with every request.
    pub fn api_key(self, key: impl Into<String>) -> Self {
        self.header("x-api-key", key)
    }

    /// Asks `provider` for a token before every request and sends it as
    /// `authorization: Bearer <token>`, overriding a static `authorization` header.
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.token_provider = Some(provider);
        self
    }

    /// Authenticates with the Flight handshake: `connect` sends `Handshake` with
    /// `authorization: Basic base64(user:password)` and every later call carries the bearer
    /// token the server answers with (Dremio, Arrow's example servers, `flightline serve
    /// --user`), to the same destinations as any credential. When a call is refused because
    /// the token expired, the client handshakes once more and retries that call once. A refused
    /// password is [`Error::CredentialsRefused`]. The password never appears in `Debug` output
    /// or logs.
    pub fn basic_auth(self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_credentials(BasicCredentials::new(user, password))
    }

    /// [`basic_auth`](Self::basic_auth) with credentials whose password may come from the
    /// environment or a file ([`BasicCredentials`]).
    pub fn basic_credentials(self, credentials: BasicCredentials) -> Self {
        self.credential_exchange(Arc::new(credentials))
    }

    /// Authenticates with a credential exchange of the caller's own (a custom handshake, an
    /// identity provider): run at connect, and again once when a token is refused. Replaces a
    /// [`token_provider`](Self::token_provider).
    pub fn credential_exchange(mut self, exchange: Arc<dyn CredentialExchange>) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// Keeps the cookies a server sets (`set-cookie`) and sends them back (`cookie`) on later
    /// calls to that same server, until they expire. Off by default.
    pub fn cookies(mut self, enabled: bool) -> Self {
        self.cookies = enabled;
        self
    }

    /// Also sends credentials to endpoint locations at these places: `host` (any port),
    /// `host:port`, or with a scheme, `grpc+tls://host:port` (`grpc://`, `http://`, `https://`
    /// too). The scheme is part of the place: an entry without one means the scheme of the
    /// URI given to [`FlightSqlClient::builder`], so a token sent over TLS never reaches the
    /// same host in clear unless an entry names `grpc://` explicitly. Hosts are compared
    /// without regard to case. Adds to the entries given before.
    ///
    /// Credentials sent in clear to a host other than this machine are logged once per host
    /// and port (a `tracing` warning naming the place, never the credential).
    pub fn credential_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.credential_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Sends credentials to every endpoint location a server names, whatever its host. Only
    /// for servers whose FlightInfo you trust as much as the server itself. A client that
    /// reached its server over TLS still sends none to a plaintext location (list it with
    /// [`credential_hosts`](Self::credential_hosts) as `grpc://host:port` to allow that).
    pub fn send_credentials_to_all_locations(mut self, everywhere: bool) -> Self {
        self.credentials_everywhere = everywhere;
        self
    }

    /// Accepts plaintext (`grpc://`, `http://`) endpoint locations although the server was
    /// reached over TLS. Off by default: such a location fails the query with
    /// [`Error::InsecureLocation`] rather than send the ticket and the result in clear.
    pub fn allow_insecure_locations(mut self, allow: bool) -> Self {
        self.allow_insecure_locations = allow;
        self
    }

    /// How many connections to endpoint locations on other servers stay open (default
    /// [`DEFAULT_MAX_LOCATION_CONNECTIONS`], at least 1); past it the least recently used is
    /// closed.
    pub fn max_location_connections(mut self, connections: usize) -> Self {
        self.max_location_connections = connections.max(1);
        self
    }

    /// Trusts these CA certificates (PEM) instead of the system roots.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Trusts the CA certificates in this PEM file instead of the system roots; the file is
    /// read by [`connect`](Self::connect).
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Verifies the server certificate against this name instead of the URI's host (for a
    /// server reached by IP address or through a tunnel).
    pub fn tls_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// How long to wait for the connection to be established.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for the server to answer each call (GetFlightInfo, the start of a
    /// DoGet, DoAction). Reading a long result is not limited by it.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The largest gRPC message accepted or sent (default [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The URI this builder connects to.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Checks the options and connects; fails early when the server cannot be reached.
    pub async fn connect(self) -> Result<FlightSqlClient> {
        let target = parse_target(&self.uri)?;
        let headers = HeaderSet::parse(&self.headers)?;
        let credentials =
            CredentialScope::new(&self.credential_hosts, self.credentials_everywhere, target.tls)?;
        let ca_pem = match (self.ca_pem, &self.ca_file) {
            (Some(pem), _) => Some(pem),
            (None, Some(path)) => Some(tokio::fs::read(path).await.map_err(|err| {
                Error::Config(format!("cannot read the CA file {}: {err}", path.display()))
            })?),
            (None, None) => None,
        };
        let settings = ConnectSettings {
            ca_pem,
            domain: self.domain,
            connect_timeout: self.connect_timeout,
            max_message_size: self.max_message_size,
        };
        let endpoint = settings.endpoint(&self.uri, &target, true)?;
        tracing::debug!(uri = %self.uri, headers = ?Redacted(headers.raw()), "connecting");
        let channel =
            endpoint.connect().await.map_err(|err| Error::from_transport(&self.uri, &err))?;
        let flight = settings.flight_client(channel);
        let cookies = self.cookies.then(|| Arc::new(CookieJar::default()));
        let mut token_provider = self.token_provider;
        let session = match self.exchange {
            Some(exchange) => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                headers.apply(&mut metadata, Credentials::Send);
                let jar = cookies.as_ref().map(|jar| JarHook {
                    jar: Arc::clone(jar),
                    origin: target.http_uri.clone(),
                    tls: target.tls,
                });
                let provider =
                    HandshakeTokenProvider::new(exchange, flight.clone(), metadata, &self.uri)
                        .timeout(self.request_timeout)
                        .with_jar(jar);
                // Now, so that a wrong password fails `connect` rather than the first query.
                provider.authenticate().await?;
                let provider = Arc::new(provider);
                token_provider = Some(Arc::clone(&provider) as Arc<dyn TokenProvider>);
                Some(provider)
            }
            None => None,
        };
        let client = FlightSqlClient {
            shared: Arc::new(Shared {
                uri: self.uri,
                target,
                flight,
                headers,
                token_provider,
                session,
                cookies,
                credentials,
                allow_insecure_locations: self.allow_insecure_locations,
                settings,
                request_timeout: self.request_timeout,
                locations: Mutex::new(LruCache::new(self.max_location_connections)),
                plaintext: PlaintextWarnings::default(),
            }),
        };
        if client.shared.has_credentials() {
            client.shared.plaintext.credentials_sent_to(&client.shared.target);
        }
        Ok(client)
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("uri", &self.uri)
            .field("headers", &Redacted(&self.headers))
            .field("token_provider", &self.token_provider.is_some())
            .field("credential_exchange", &self.exchange.is_some())
            .field("cookies", &self.cookies)
            .field("custom_ca", &(self.ca_pem.is_some() || self.ca_file.is_some()))
            .field("domain", &self.domain)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("credential_hosts", &self.credential_hosts)
            .field("credentials_everywhere", &self.credentials_everywhere)
            .field("allow_insecure_locations", &self.allow_insecure_locations)
            .field("max_location_connections", &self.max_location_connections)
            .finish()
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_debug_hides_secrets() {
        let builder = FlightSqlClient::builder("grpc://127.0.0.1:1")
            .bearer_token("hunter2")
            .api_key("key-123")
            .header("X-Tenant-Id", "production");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("key-123"), "{shown}");
        assert!(shown.contains("x-tenant-id") && shown.contains("production"), "{shown}");
    }

    #[test]
    fn repeating_a_header_replaces_it() {
        let builder =
            ClientBuilder::new("grpc://h:1").header("authorization", "Bearer a").bearer_token("b");
        assert_eq!(builder.headers, vec![("authorization".to_string(), "Bearer b".to_string())]);
    }

    #[test]
    fn at_least_one_location_connection_is_kept() {
        assert_eq!(
            ClientBuilder::new("grpc://h:1").max_location_connections(0).max_location_connections,
            1
        );
    }
}
