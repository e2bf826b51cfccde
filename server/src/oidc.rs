//! OIDC bearer tokens (`flightline serve --oidc-issuer URL --audience X`): a JWT is accepted
//! when its signature checks against a key the issuer publishes (its JWKS, discovered from
//! `/.well-known/openid-configuration`), it has not expired (a few seconds of leeway), and its
//! `iss` and `aud` are the configured ones. Its `sub` becomes the caller
//! ([`Caller::User`](crate::identity::Caller)).
//!
//! Fetching keys is asynchronous and tonic's interceptors are not, so the check runs in
//! [`OidcService`], a service around the intercepted Flight service: it verifies the token
//! before the call reaches the [`TokenAuth`](crate::auth::TokenAuth) interceptor and leaves the
//! outcome in the request's extensions ([`OidcSubject`] or [`OidcRefusal`]), which the
//! interceptor turns into the caller or the refusal, beside static tokens and users.
//!
//! Keys are cached; a token signed by a key not in the cache (the provider rotated its keys)
//! makes the server fetch the JWKS again, at most [`JWKS_FETCHES_PER_WINDOW`] times per
//! [`JWKS_FETCH_WINDOW`], so tokens with made-up key ids cannot make it hammer the provider.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::error::ServerError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// At most this many JWKS fetches per [`JWKS_FETCH_WINDOW`] (the first, and rotations).
pub const JWKS_FETCHES_PER_WINDOW: usize = 3;

/// See [`JWKS_FETCHES_PER_WINDOW`].
pub const JWKS_FETCH_WINDOW: Duration = Duration::from_secs(30);

/// Keys older than this are fetched again on the next call, so a key the provider withdrew
/// stops being accepted.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

/// How long each request to the provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The subject of a valid OIDC token, put in the request's extensions by [`OidcService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSubject(pub String);

/// Why a bearer token was not a valid OIDC token, for the interceptor's `Unauthenticated`
/// answer when no static token or session accepts it either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcRefusal(pub String);

/// Checks OIDC access tokens against one issuer and audience.
pub struct OidcVerifier {
    issuer: String,
    audience: String,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
    fetches: tokio::sync::Mutex<FetchLog>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct KeyCache {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
    fetched: Option<Instant>,
}

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct FetchLog {
    jwks_uri: Option<String>,
    recent: VecDeque<Instant>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl OidcVerifier {
    /// A verifier for tokens of `issuer` (its `iss`, with or without a trailing `/`) for
    /// `audience`. Nothing is fetched until the first token arrives.
    pub fn new(issuer: &str, audience: &str) -> Result<Self, ServerError> {
        let issuer = issuer.trim().trim_end_matches('/').to_string();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ServerError::Oidc(format!(
                "the issuer {issuer:?} is not an http:// or https:// URL"
            )));
        }
        if audience.trim().is_empty() {
            return Err(ServerError::Oidc("the audience is empty: give --audience".into()));
        }
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|err| {
            ServerError::Oidc(format!("cannot set up the HTTP client for {issuer}: {err}"))
        })?;
        Ok(Self {
            issuer,
            audience: audience.trim().to_string(),
            http,
            keys: RwLock::new(KeyCache::default()),
            fetches: tokio::sync::Mutex::new(FetchLog::default()),
        })
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject of `token` when it is a valid token of the issuer for the audience, else
    /// why not (in the caller's terms, never the token).
    pub async fn verify(&self, token: &str) -> Result<String, OidcRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            OidcRefusal(format!(
                "the bearer token is not a JWT (this server accepts OIDC access tokens of {})",
                self.issuer
            ))
        })?;
        let kid = header.kid.as_deref();
        if self.keys_are_stale() {
            self.refresh(None).await;
        }
        let keys = match self.candidates(kid) {
            keys if !keys.is_empty() => keys,
            _ => {
                self.refresh(kid).await;
                self.candidates(kid)
            }
        };
        if keys.is_empty() && !self.keys_fetched() {
            return Err(OidcRefusal(format!(
                "cannot check the token: the signing keys of {} could not be fetched yet (the \
                 server's log says why); retry in a few seconds",
                self.issuer
            )));
        }
        if keys.is_empty() {
            return Err(OidcRefusal(format!(
                "the token is signed by key {} which {} does not publish (if the provider just \
                 rotated its keys, retry in a few seconds)",
                kid.unwrap_or("(no kid)"),
                self.issuer
            )));
        }
        let mut last = None;
        for key in &keys {
            match self.check(token, header.alg, key) {
                Ok(subject) => return Ok(subject),
                Err(refusal) => last = Some(refusal),
            }
        }
        Err(last.unwrap_or_else(|| OidcRefusal("the token was refused".into())))
    }

    fn check(&self, token: &str, alg: Algorithm, key: &Key) -> Result<String, OidcRefusal> {
        if !key.algorithms.contains(&alg) {
            return Err(OidcRefusal(format!(
                "the token's algorithm {alg:?} is not the one of its key at {}",
                self.issuer
            )));
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.issuer.clone(), format!("{}/", self.issuer)]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|err| self.refusal(err.kind()))?;
        if data.claims.sub.trim().is_empty() {
            return Err(OidcRefusal("the token's `sub` claim is empty".into()));
        }
        Ok(data.claims.sub)
    }

    fn refusal(&self, kind: &ErrorKind) -> OidcRefusal {
        let issuer = &self.issuer;
        OidcRefusal(match kind {
            ErrorKind::ExpiredSignature => {
                format!("the token expired; get a new one from {issuer}")
            }
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
            ErrorKind::InvalidAudience => format!(
                "the token is for another audience; this server accepts audience {:?}",
                self.audience
            ),
            ErrorKind::InvalidIssuer => {
                format!("the token was issued by another issuer; this server accepts {issuer}")
            }
            ErrorKind::InvalidSignature => {
                format!("the token's signature does not match the key of {issuer} it names")
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the token has no `{claim}` claim")
            }
            other => format!("the token is malformed ({other:?})"),
        })
    }

    fn keys_fetched(&self) -> bool {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).fetched.is_some()
    }

    fn keys_are_stale(&self) -> bool {
        let cache = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.fetched.is_some_and(|at| at.elapsed() > KEYS_MAX_AGE)
    }

    /// The keys that may have signed a token naming `kid` (every key without an id, too).
    fn candidates(&self, kid: Option<&str>) -> Vec<Key> {
        let cache = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let named = kid.and_then(|kid| cache.by_kid.get(kid)).cloned();
        let all_named = || cache.by_kid.values().cloned().collect::<Vec<_>>();
        match (kid, named) {
            (_, Some(key)) => vec![key],
            (Some(_), None) => cache.without_kid.clone(),
            (None, None) => cache.without_kid.iter().cloned().chain(all_named()).collect(),
        }
    }

    /// Fetches the JWKS again unless another call just did (then `wanted` is known now) or
    /// the rate limit is reached. Failures are logged: the call is refused with what the cache
    /// says.
    async fn refresh(&self, wanted: Option<&str>) {
        let mut log = self.fetches.lock().await;
        if let Some(kid) = wanted
            && !self.candidates(Some(kid)).is_empty()
        {
            return;
        }
        let now = Instant::now();
        while log.recent.front().is_some_and(|at| now.duration_since(*at) > JWKS_FETCH_WINDOW) {
            log.recent.pop_front();
        }
        if log.recent.len() >= JWKS_FETCHES_PER_WINDOW {
            tracing::warn!(issuer = %self.issuer, kid = ?wanted, "not fetching the JWKS again yet: fetched {JWKS_FETCHES_PER_WINDOW} times in the last {JWKS_FETCH_WINDOW:?}");
            return;
        }
        log.recent.push_back(now);
        match self.fetch(&mut log).await {
            Ok(cache) => {
                tracing::info!(issuer = %self.issuer, keys = cache.by_kid.len() + cache.without_kid.len(), "OIDC signing keys fetched");
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = cache;
            }
            Err(message) => {
                tracing::warn!(issuer = %self.issuer, "cannot fetch the OIDC signing keys: {message}")
            }
        }
    }

    async fn fetch(&self, log: &mut FetchLog) -> Result<KeyCache, String> {
        let jwks_uri = match &log.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                log.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let mut cache = KeyCache { fetched: Some(Instant::now()), ..KeyCache::default() };
        for value in set.keys {
            // A key of a type this server cannot use is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else { continue };
            let key = Key { decoding, algorithms: algorithms(&jwk) };
            match jwk.common.key_id {
                Some(kid) => {
                    cache.by_kid.insert(kid, key);
                }
                None => cache.without_kid.push(key),
            }
        }
        Ok(cache)
    }

    async fn discover(&self) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Discovery = self.get_json(&url).await?;
        if let Some(named) = discovery.issuer.filter(|i| i.trim_end_matches('/') != self.issuer) {
            return Err(format!(
                "{url} names the issuer {named}, not {}: give --oidc-issuer {named}",
                self.issuer
            ));
        }
        discovery.jwks_uri.ok_or_else(|| format!("{url} names no jwks_uri"))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self.http.get(url).send().await.map_err(|err| {
            flightline_core::error::with_causes(format!("cannot reach {url}"), Some(&err))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url} answered HTTP {status}"));
        }
        response.json().await.map_err(|err| format!("{url} did not answer JSON: {err}"))
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// The algorithms a key may verify: the one it names, else those of its type.
fn algorithms(jwk: &Jwk) -> Vec<Algorithm> {
    if let Some(alg) =
        jwk.common.key_algorithm.and_then(|a| Algorithm::from_str(&a.to_string()).ok())
    {
        return vec![alg];
    }
    use Algorithm::*;
    match jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(_) => vec![ES256, ES384],
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        // A shared secret in a public key set would let anyone sign: never used.
        AlgorithmParameters::OctetKey(_) => vec![],
    }
}

/// Wraps the Flight service: verifies an OIDC bearer token, when there is a verifier and the
/// call carries one, and passes the outcome on in the request's extensions.
#[derive(Clone)]
pub struct OidcService<S> {
    inner: S,
    verifier: Option<Arc<OidcVerifier>>,
}

impl<S> OidcService<S> {
    /// `inner` with OIDC checks when `verifier` is given (else it only forwards).
    pub fn new(inner: S, verifier: Option<Arc<OidcVerifier>>) -> Self {
        Self { inner, verifier }
    }
}

impl<S: NamedService> NamedService for OidcService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for OidcService<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh one waits for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            if let Some(verifier) = verifier
                && let Some(token) = bearer(request.headers())
            {
                match verifier.verify(&token).await {
                    Ok(subject) => {
                        request.extensions_mut().insert(OidcSubject(subject));
                    }
                    Err(refusal) => {
                        request.extensions_mut().insert(refusal);
                    }
                }
            }
            inner.call(request).await
        })
    }
}

/// The token of `authorization: Bearer <token>`, if the call carries one.
fn bearer(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_tokens_are_checked() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(http::header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(http::header::AUTHORIZATION, "bearer  abc.def.ghi ".parse().unwrap());
        assert_eq!(bearer(&headers).as_deref(), Some("abc.def.ghi"));
    }

    #[tokio::test]
    async fn a_token_that_is_not_a_jwt_is_refused_without_fetching() {
        let verifier = OidcVerifier::new("http://127.0.0.1:9/", "flightline").unwrap();
        assert_eq!(verifier.issuer(), "http://127.0.0.1:9");
        let refusal = verifier.verify("not-a-jwt").await.unwrap_err();
        assert!(
            refusal.0.contains("not a JWT") && refusal.0.contains("127.0.0.1:9"),
            "{refusal:?}"
        );
        assert!(verifier.fetches.lock().await.recent.is_empty());
    }

    #[tokio::test]
    async fn keys_that_cannot_be_fetched_are_named_as_the_reason() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let verifier = OidcVerifier::new(&format!("http://127.0.0.1:{port}"), "aud").unwrap();
        // {"alg":"RS256","kid":"k1"} . {} . signature
        let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
        let refusal = verifier.verify(token).await.unwrap_err();
        assert!(
            refusal.0.contains("could not be fetched") && refusal.0.contains(&port.to_string()),
            "{refusal:?}"
        );
    }

    #[test]
    fn issuers_must_be_urls_and_audiences_non_empty() {
        assert!(
            matches!(OidcVerifier::new("idp", "a"), Err(ServerError::Oidc(m)) if m.contains("idp"))
        );
        assert!(
            matches!(OidcVerifier::new("https://idp", " "), Err(ServerError::Oidc(m)) if m.contains("--audience"))
        );
    }
}
