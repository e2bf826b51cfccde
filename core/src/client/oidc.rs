//! OIDC client credentials: a [`TokenProvider`] for services that authenticate to a Flight SQL
//! server with tokens from an OpenID Connect provider (the Micromegas
//! `OidcClientCredentialsProvider`).
//!
//! The token endpoint is discovered from the issuer (`/.well-known/openid-configuration`);
//! tokens come from the client-credentials grant, sent the way Micromegas sends it (a form with
//! `grant_type`, `client_id`, `client_secret`, and `audience` / `scope` when given); each token
//! is kept until a margin before it expires (from `expires_in`, else the JWT's `exp`), and the
//! callers waiting meanwhile share one request to the provider.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::TokenProvider;
use crate::error::{Error, Result, with_causes};

/// The most a token is refreshed ahead of its expiry by default; shorter tokens are refreshed
/// a quarter of their lifetime ahead (see [`OidcClientCredentials::refresh_margin`]).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long a token is kept when the provider says neither `expires_in` nor `exp`: a refused
/// token is renewed anyway.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);

/// How long each request to the provider may take, unless told otherwise.
pub const DEFAULT_OIDC_TIMEOUT: Duration = Duration::from_secs(10);

/// While a refresh keeps failing and the old token is still valid, the next attempt waits this
/// long (or half the token's remaining life, if shorter), so a provider outage is not hammered.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The Micromegas environment variables [`OidcClientCredentials::from_env`] reads.
pub const MICROMEGAS_OIDC_ISSUER: &str = "MICROMEGAS_OIDC_ISSUER";
/// The client id variable.
pub const MICROMEGAS_OIDC_CLIENT_ID: &str = "MICROMEGAS_OIDC_CLIENT_ID";
/// The client secret variable (read at every token request).
pub const MICROMEGAS_OIDC_CLIENT_SECRET: &str = "MICROMEGAS_OIDC_CLIENT_SECRET";
/// The optional audience variable.
pub const MICROMEGAS_OIDC_AUDIENCE: &str = "MICROMEGAS_OIDC_AUDIENCE";

/// Where the client secret comes from: read at every token request, so a rotated secret is
/// picked up. `Debug` names the source, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// Given as is.
    Value(String),
    /// This environment variable.
    Env(String),
    /// This file (surrounding whitespace ignored).
    File(PathBuf),
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("<redacted>"),
            Self::Env(var) => write!(f, "<from ${var}>"),
            Self::File(path) => write!(f, "<from {}>", path.display()),
        }
    }
}

impl ClientSecret {
    async fn read(&self, issuer: &str) -> Result<String> {
        let secret = match self {
            Self::Value(secret) => secret.clone(),
            Self::Env(var) => std::env::var(var).map_err(|_| {
                oidc_error(
                    issuer,
                    format!("the client secret variable {var} is not set; export it"),
                    false,
                )
            })?,
            Self::File(path) => tokio::fs::read_to_string(path).await.map_err(|err| {
                oidc_error(
                    issuer,
                    format!("cannot read the client secret file {}: {err}", path.display()),
                    false,
                )
            })?,
        };
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(oidc_error(issuer, format!("the client secret {self:?} is empty"), false));
        }
        Ok(secret.to_string())
    }
}

/// A [`TokenProvider`] that gets tokens from an OIDC provider with the client-credentials
/// grant and refreshes them ahead of expiry.
///
/// ```no_run
/// # async fn demo() -> flightline_core::Result<()> {
/// use std::sync::Arc;
/// use flightline_core::client::{ClientSecret, FlightSqlClient, OidcClientCredentials};
///
/// let oidc = OidcClientCredentials::new(
///     "https://login.example.com/realms/ops",
///     "flightline-worker",
///     ClientSecret::Env("WORKER_CLIENT_SECRET".into()),
/// )?
/// .audience("flightline");
/// let client = FlightSqlClient::builder("grpc+tls://flight.example.com:443")
///     .token_provider(Arc::new(oidc))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// One provider serves any number of clients and concurrent calls: they share the cached token,
/// and when it is due one of them fetches the next while the others wait for it. When the
/// server refuses a token (`Unauthenticated`), [`renew`](TokenProvider::renew) fetches a new one
/// once and the client retries the call with it.
pub struct OidcClientCredentials {
    issuer: String,
    client_id: String,
    secret: ClientSecret,
    audience: Option<String>,
    scope: Option<String>,
    margin: Option<Duration>,
    http: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    token_endpoint: Option<String>,
    cached: Option<Cached>,
}

struct Cached {
    token: String,
    refresh_at: Instant,
    expires_at: Instant,
}

impl fmt::Debug for OidcClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClientCredentials")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl OidcClientCredentials {
    /// A provider for `client_id` at `issuer` (an `https://` or `http://` URL, the `iss` of its
    /// tokens). Nothing is sent until the first token is asked for.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Result<Self> {
        let issuer = issuer.into().trim().trim_end_matches('/').to_string();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(Error::Config(format!(
                "OIDC issuer {issuer:?} is not an http:// or https:// URL, e.g. \
                 https://login.example.com/realms/ops"
            )));
        }
        let client_id = client_id.into().trim().to_string();
        if client_id.is_empty() {
            return Err(Error::Config(format!("OIDC issuer {issuer}: the client id is empty")));
        }
        Ok(Self {
            http: http_client(&issuer, DEFAULT_OIDC_TIMEOUT)?,
            issuer,
            client_id,
            secret,
            audience: None,
            scope: None,
            margin: None,
            state: Mutex::new(State::default()),
        })
    }

    /// The Micromegas settings: MICROMEGAS_OIDC_ISSUER, MICROMEGAS_OIDC_CLIENT_ID,
    /// MICROMEGAS_OIDC_CLIENT_SECRET (read again at every token request) and, when set,
    /// MICROMEGAS_OIDC_AUDIENCE.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let required = |name: &str| {
            var(name).filter(|value| !value.trim().is_empty()).ok_or_else(|| {
                Error::Config(format!(
                    "OIDC from the environment needs {name}; export {MICROMEGAS_OIDC_ISSUER}, \
                     {MICROMEGAS_OIDC_CLIENT_ID} and {MICROMEGAS_OIDC_CLIENT_SECRET} \
                     ({MICROMEGAS_OIDC_AUDIENCE} is optional)"
                ))
            })
        };
        let issuer = required(MICROMEGAS_OIDC_ISSUER)?;
        let client_id = required(MICROMEGAS_OIDC_CLIENT_ID)?;
        required(MICROMEGAS_OIDC_CLIENT_SECRET)?;
        let secret = ClientSecret::Env(MICROMEGAS_OIDC_CLIENT_SECRET.to_string());
        let mut provider = Self::new(issuer, client_id, secret)?;
        if let Some(audience) = var(MICROMEGAS_OIDC_AUDIENCE).filter(|a| !a.trim().is_empty()) {
            provider = provider.audience(audience.trim());
        }
        Ok(provider)
    }

    /// Asks for tokens for this audience (the `audience` form parameter: Auth0, Azure AD,
    /// Keycloak with an audience mapper).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Asks for these scopes (space-separated, as OAuth writes them).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Refreshes a token this long before it expires. By default the margin is a quarter of the
    /// token's lifetime, at most [`DEFAULT_REFRESH_MARGIN`]: an hour-long token is refreshed a
    /// minute ahead, a 4-second one a second ahead. A margin longer than the token's lifetime
    /// means a new token for every call.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Bounds each request to the provider (default [`DEFAULT_OIDC_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self> {
        self.http = http_client(&self.issuer, timeout)?;
        Ok(self)
    }

    /// The issuer, as given (without a trailing `/`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The cached token when it is not due for refresh, else a new one (shared with every
    /// caller that asks meanwhile). A failed refresh keeps serving the old token while it is
    /// still valid and tries again a few seconds later.
    async fn current(&self) -> Result<String> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(cached) = state.cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        match self.fetch(&mut state).await {
            Ok(token) => Ok(token),
            Err(err) => match state.cached.as_mut().filter(|c| now < c.expires_at) {
                Some(cached) => {
                    tracing::warn!(issuer = %self.issuer, error = %err, "OIDC token refresh failed; using the current token until it expires");
                    let left = cached.expires_at.saturating_duration_since(now);
                    cached.refresh_at = now + RETRY_AFTER_FAILURE.min(left / 2);
                    Ok(cached.token.clone())
                }
                None => Err(err),
            },
        }
    }

    /// Gets a new token and caches it (the caller holds the state lock: one fetch at a time).
    async fn fetch(&self, state: &mut State) -> Result<String> {
        let endpoint = match &state.token_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let endpoint = self.discover().await?;
                state.token_endpoint = Some(endpoint.clone());
                endpoint
            }
        };
        let asked = Instant::now();
        let grant = self.request_token(&endpoint).await?;
        let lifetime = grant
            .expires_in
            .map(Duration::from_secs)
            .or_else(|| jwt_lifetime(&grant.access_token, SystemTime::now()))
            .unwrap_or(UNKNOWN_LIFETIME);
        let margin = self.margin.unwrap_or_else(|| default_margin(lifetime));
        let expires_at = asked + lifetime;
        let refresh_at = asked + lifetime.saturating_sub(margin);
        tracing::debug!(issuer = %self.issuer, client_id = %self.client_id, ?lifetime, "OIDC token obtained");
        state.cached = Some(Cached { token: grant.access_token.clone(), refresh_at, expires_at });
        Ok(grant.access_token)
    }

    async fn discover(&self) -> Result<String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = self.http.get(&url).send().await.map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(oidc_error(
                &self.issuer,
                format!(
                    "discovery at {url} answered HTTP {status}; check the issuer URL (it is the \
                     `iss` of the tokens, without /.well-known/...)"
                ),
                status.is_server_error(),
            ));
        }
        let discovery: Discovery = response.json().await.map_err(|err| {
            oidc_error(
                &self.issuer,
                with_causes(
                    format!("discovery at {url} is not an OpenID configuration"),
                    Some(&err),
                ),
                false,
            )
        })?;
        discovery.token_endpoint.ok_or_else(|| {
            oidc_error(&self.issuer, format!("discovery at {url} names no token_endpoint"), false)
        })
    }

    async fn request_token(&self, endpoint: &str) -> Result<TokenGrant> {
        let secret = self.secret.read(&self.issuer).await?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        if let Some(audience) = &self.audience {
            form.push(("audience", audience));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        if !status.is_success() {
            let refusal: Refusal = response.json().await.unwrap_or_default();
            return Err(self.refused(endpoint, status, refusal));
        }
        let grant: TokenGrant = response.json().await.map_err(|err| {
            oidc_error(
                &self.issuer,
                with_causes(
                    format!("the token endpoint {endpoint} answered without an access_token"),
                    Some(&err),
                ),
                false,
            )
        })?;
        if grant.access_token.trim().is_empty() {
            return Err(oidc_error(
                &self.issuer,
                format!("the token endpoint {endpoint} answered an empty access_token"),
                false,
            ));
        }
        Ok(grant)
    }

    fn refused(&self, endpoint: &str, status: reqwest::StatusCode, refusal: Refusal) -> Error {
        let said = match (refusal.error, refusal.error_description) {
            (Some(code), Some(text)) => format!(" ({code}: {text})"),
            (Some(code), None) => format!(" ({code})"),
            (None, _) => String::new(),
        };
        let hint = if matches!(status.as_u16(), 400 | 401 | 403) {
            format!(
                "; check the client id {:?}, its secret {:?}, the audience and the scopes",
                self.client_id, self.secret
            )
        } else {
            "; the provider may be down, try again later".to_string()
        };
        oidc_error(
            &self.issuer,
            format!(
                "the token endpoint {endpoint} refused client {:?} with HTTP {status}{said}{hint}",
                self.client_id
            ),
            status.is_server_error(),
        )
    }

    fn unreachable(&self, err: &reqwest::Error) -> Error {
        // reqwest names the URL: the secret travels in the body, never in it.
        oidc_error(
            &self.issuer,
            with_causes("cannot reach the provider".to_string(), Some(err)),
            true,
        )
    }
}

impl TokenProvider for OidcClientCredentials {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(self.current())
    }

    fn renew<'a>(&'a self, rejected: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            // Another call already replaced the token this one was refused with.
            if let Some(cached) = state.cached.as_ref().filter(|c| c.token != rejected) {
                return Ok(Some(cached.token.clone()));
            }
            tracing::debug!(issuer = %self.issuer, "the server refused the OIDC token; fetching a new one");
            self.fetch(&mut state).await.map(Some)
        })
    }
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct TokenGrant {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Refusal {
    error: Option<String>,
    error_description: Option<String>,
}

fn oidc_error(issuer: &str, message: String, transient: bool) -> Error {
    Error::Oidc { issuer: issuer.to_string(), message, transient }
}

fn http_client(issuer: &str, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder().timeout(timeout).build().map_err(|err| {
        Error::Config(with_causes(
            format!("OIDC issuer {issuer}: cannot set up the HTTP client"),
            Some(&err),
        ))
    })
}

/// A quarter of the lifetime, at most [`DEFAULT_REFRESH_MARGIN`].
fn default_margin(lifetime: Duration) -> Duration {
    DEFAULT_REFRESH_MARGIN.min(lifetime / 4)
}

/// How long a JWT has left by its `exp` claim (the signature is the server's business).
fn jwt_lifetime(token: &str, now: SystemTime) -> Option<Duration> {
    #[derive(Deserialize)]
    struct Claims {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(claims.exp.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_margin_suits_long_and_short_tokens() {
        assert_eq!(default_margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(default_margin(Duration::from_secs(4)), Duration::from_secs(1));
        assert_eq!(default_margin(Duration::from_secs(120)), Duration::from_secs(30));
    }

    #[test]
    fn the_lifetime_falls_back_to_the_jwt_exp() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"svc","exp":1042}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(jwt_lifetime(&token, now), Some(Duration::from_secs(42)));
        let expired = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(br#"{"exp":10}"#));
        assert_eq!(jwt_lifetime(&expired, now), Some(Duration::ZERO));
        assert_eq!(jwt_lifetime("opaque-token", now), None);
        assert_eq!(jwt_lifetime("a.bm90IGpzb24.c", now), None);
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let oidc = OidcClientCredentials::new(
            "https://idp.example/",
            "svc",
            ClientSecret::Value("hunter2".into()),
        )
        .unwrap();
        let shown = format!("{oidc:?}");
        assert!(shown.contains("https://idp.example\"") && shown.contains("svc"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let refusal = Refusal { error: Some("invalid_client".into()), error_description: None };
        let err =
            oidc.refused("https://idp.example/token", reqwest::StatusCode::UNAUTHORIZED, refusal);
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("https://idp.example") && text.contains("invalid_client"), "{text}");
        assert!(text.contains("check the client id") && !err.is_retryable(), "{text}");
        let down = oidc.refused(
            "https://idp.example/token",
            reqwest::StatusCode::BAD_GATEWAY,
            Refusal::default(),
        );
        assert!(down.is_retryable(), "{down}");
    }

    #[test]
    fn issuers_and_client_ids_are_checked() {
        let secret = || ClientSecret::Env("S".into());
        let err = OidcClientCredentials::new("idp.example", "svc", secret()).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("idp.example")), "{err}");
        let err = OidcClientCredentials::new("https://idp.example", " ", secret()).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("client id")), "{err}");
    }

    #[test]
    fn from_env_reads_the_micromegas_names() {
        let vars = |name: &str| match name {
            MICROMEGAS_OIDC_ISSUER => Some("https://idp.example".to_string()),
            MICROMEGAS_OIDC_CLIENT_ID => Some("svc".to_string()),
            MICROMEGAS_OIDC_CLIENT_SECRET => Some("hunter2".to_string()),
            MICROMEGAS_OIDC_AUDIENCE => Some("flightline".to_string()),
            _ => None,
        };
        let oidc = OidcClientCredentials::from_vars(&vars).unwrap();
        assert_eq!(oidc.issuer(), "https://idp.example");
        assert_eq!(oidc.audience.as_deref(), Some("flightline"));
        assert_eq!(oidc.secret, ClientSecret::Env(MICROMEGAS_OIDC_CLIENT_SECRET.into()));
        let missing =
            |name: &str| (name != MICROMEGAS_OIDC_CLIENT_ID).then(|| vars(name)).flatten();
        let err = OidcClientCredentials::from_vars(&missing).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("needs MICROMEGAS_OIDC_CLIENT_ID")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_a_transient_error_naming_it() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let oidc =
            OidcClientCredentials::new(&issuer, "svc", ClientSecret::Value("hunter2".into()))
                .unwrap();
        let err = oidc.token().await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&issuer) && text.contains("cannot reach"), "{text}");
        assert!(err.is_retryable() && !text.contains("hunter2"), "{text}");
    }
}
