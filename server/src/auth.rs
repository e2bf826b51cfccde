//! Optional token auth: `authorization: Bearer <token>` or `x-api-key: <token>`, where a token
//! is a static one or a session token the handshake issued (see [`crate::session`]).
//!
//! Every call leaves here marked with its [`Caller`]: who is asking, for the per-caller limits.

use std::net::IpAddr;
use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::identity::{AuthenticatedUser, Caller};
use crate::oidc::{OidcRefusal, OidcSubject};
use crate::secret::SecretDigest;
use crate::session::SessionStore;

/// Checks every call against the configured tokens; accepts everything when there are none.
#[derive(Clone, Default)]
pub struct TokenAuth {
    tokens: Arc<Vec<SecretDigest>>,
    sessions: Option<Arc<SessionStore>>,
    oidc: bool,
}

impl std::fmt::Debug for TokenAuth {
    // Never print the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("tokens", &self.tokens.len())
            .field("sessions", &self.sessions)
            .field("oidc", &self.oidc)
            .finish()
    }
}

impl TokenAuth {
    /// Accepts any of `tokens`; an empty list turns auth off. Blank tokens are ignored: an
    /// empty `--token ''` (or a blank line in a list) must never accept an empty header.
    /// Only the tokens' digests are kept.
    pub fn new(tokens: Vec<String>) -> Self {
        let tokens = tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| SecretDigest::of(t.as_bytes()));
        Self { tokens: Arc::new(tokens.collect()), sessions: None, oidc: false }
    }

    /// Also accepts the users of `sessions`: valid Basic credentials pass (and mark the call
    /// with an [`AuthenticatedUser`] for the handshake),
    /// and so do the session tokens the handshake issued.
    pub fn with_sessions(mut self, sessions: Arc<SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Also accepts the OIDC tokens [`OidcService`](crate::oidc::OidcService) verified (their
    /// subject becomes a [`Caller::User`]); OIDC alone turns auth on.
    pub fn with_oidc(mut self) -> Self {
        self.oidc = true;
        self
    }

    /// Who `presented` proves the caller to be, if anyone. One digest, then a 32-byte
    /// comparison with every static token without stopping at a match, so neither the
    /// token's length nor which token matched shows in the time taken.
    fn accepts(&self, presented: &str) -> Option<Caller> {
        let digest = SecretDigest::of(presented.as_bytes());
        let matched =
            self.tokens.iter().enumerate().fold(None, |found, (i, t)| {
                if t.matches(&digest) { found.or(Some(i)) } else { found }
            });
        let session = || self.sessions.as_ref()?.accept(presented).map(Caller::User);
        matched.map(Caller::Token).or_else(session)
    }

    /// Every non-empty credential the call carries: a Bearer token and an API key. Another
    /// `authorization` scheme (e.g. Basic, added by a proxy) is not ours and is skipped.
    fn presented(request: &Request<()>) -> Vec<&str> {
        let md = request.metadata();
        let bearer = md.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
        });
        let api_key = md.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
        [bearer, api_key].into_iter().flatten().filter(|t| !t.is_empty()).collect()
    }

    /// The outcome of checking the call's Basic credentials, when users are configured and
    /// the call carries some (any call may: Arrow's Java servers accept Basic on every call).
    fn basic(
        &self,
        request: &Request<()>,
        peer: Option<IpAddr>,
    ) -> Option<Result<AuthenticatedUser, Status>> {
        let sessions = self.sessions.as_ref()?;
        let value = request.metadata().get("authorization")?.to_str().ok()?;
        let (scheme, _) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| sessions.verify_basic(value, peer))
    }
}

impl Interceptor for TokenAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        if self.tokens.is_empty() && self.sessions.is_none() && !self.oidc {
            request.extensions_mut().insert(Caller::Address(peer));
            return Ok(request);
        }
        if let Some(OidcSubject(subject)) = request.extensions_mut().remove::<OidcSubject>() {
            request.extensions_mut().insert(Caller::User(subject));
            return Ok(request);
        }
        let oidc_refusal = request.extensions_mut().remove::<OidcRefusal>();
        let basic = self.basic(&request, peer);
        if let Some(Ok(user)) = basic {
            request.extensions_mut().insert(Caller::User(user.0.clone()));
            request.extensions_mut().insert(user);
            return Ok(request);
        }
        let presented = Self::presented(&request);
        if let Some(caller) = presented.iter().find_map(|t| self.accepts(t)) {
            request.extensions_mut().insert(caller);
            Ok(request)
        } else if let Some(Err(refused)) = basic {
            Err(refused)
        } else if let Some(OidcRefusal(why)) = oidc_refusal {
            Err(Status::unauthenticated(why))
        } else if presented.is_empty() {
            Err(Status::unauthenticated(
                "missing credentials: send `authorization: Bearer <token>` or `x-api-key: <token>`",
            ))
        } else {
            // A session token that expired lands here too: the client handshakes again.
            Err(Status::unauthenticated(
                "invalid or expired token: check the bearer token or API key, or handshake again",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        auth: &mut TokenAuth,
        header: Option<(&'static str, &'static str)>,
    ) -> Result<(), tonic::Code> {
        call_with(auth, header.as_slice())
    }

    fn call_with(
        auth: &mut TokenAuth,
        headers: &[(&'static str, &'static str)],
    ) -> Result<(), tonic::Code> {
        let mut r = Request::new(());
        for (k, v) in headers {
            r.metadata_mut().insert(*k, v.parse().unwrap());
        }
        auth.call(r).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn blank_tokens_never_accept_an_empty_credential() {
        let mut auth = TokenAuth::new(vec!["".into(), " ".into(), "k".into()]);
        assert_eq!(call(&mut auth, Some(("x-api-key", ""))), Err(tonic::Code::Unauthenticated));
        let blank_bearer = Some(("authorization", "Bearer "));
        assert_eq!(call(&mut auth, blank_bearer), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut auth, Some(("x-api-key", "k"))), Ok(()));
        // Blank tokens are dropped (the CLI refuses them up front).
        assert_eq!(call(&mut TokenAuth::new(vec!["".into()]), None), Ok(()));
    }

    #[test]
    fn api_key_is_checked_beside_a_foreign_authorization_scheme() {
        let mut auth = TokenAuth::new(vec!["k".into()]);
        let headers = [("authorization", "Basic dXNlcjpwdw=="), ("x-api-key", "k")];
        assert_eq!(call_with(&mut auth, &headers), Ok(()));
    }

    #[test]
    fn users_pass_with_basic_and_their_session_tokens() {
        use crate::session::DEFAULT_SESSION_TTL;
        let store = Arc::new(SessionStore::new(
            [("alice".to_string(), "pw".to_string())],
            DEFAULT_SESSION_TTL,
        ));
        let mut auth = TokenAuth::new(vec!["static".into()]).with_sessions(Arc::clone(&store));
        // "alice:pw" and "alice:no" in base64.
        let mut r = Request::new(());
        r.metadata_mut().insert("authorization", "Basic YWxpY2U6cHc=".parse().unwrap());
        let passed = auth.call(r).unwrap();
        assert_eq!(passed.extensions().get(), Some(&AuthenticatedUser("alice".into())));
        let refused = call(&mut auth, Some(("authorization", "Basic YWxpY2U6bm8=")));
        assert_eq!(refused, Err(tonic::Code::Unauthenticated));
        // A static token still works beside a wrong Basic header from a proxy.
        let headers = [("authorization", "Basic YWxpY2U6bm8="), ("x-api-key", "static")];
        assert_eq!(call_with(&mut auth, &headers), Ok(()));

        let token = store.issue(&AuthenticatedUser("alice".into())).unwrap();
        let bearer: &'static str = format!("Bearer {token}").leak();
        assert_eq!(call(&mut auth, Some(("authorization", bearer))), Ok(()));
        assert_eq!(store.sessions()[0].calls, 1);
        store.expire_all();
        assert_eq!(
            call(&mut auth, Some(("authorization", bearer))),
            Err(tonic::Code::Unauthenticated)
        );
        // Sessions alone turn auth on.
        let mut sessions_only = TokenAuth::new(vec![]).with_sessions(store);
        assert_eq!(call(&mut sessions_only, None), Err(tonic::Code::Unauthenticated));
    }

    #[test]
    fn bearer_and_api_key_accepted_others_refused() {
        let mut auth = TokenAuth::new(vec!["s3cret".into()]);
        assert_eq!(call(&mut auth, Some(("authorization", "Bearer s3cret"))), Ok(()));
        assert_eq!(call(&mut auth, Some(("authorization", "bearer s3cret"))), Ok(()));
        assert_eq!(call(&mut auth, Some(("x-api-key", "s3cret"))), Ok(()));
        for h in
            [Some(("authorization", "Bearer nope")), Some(("authorization", "Basic s3cret")), None]
        {
            assert_eq!(call(&mut auth, h), Err(tonic::Code::Unauthenticated), "{h:?}");
        }
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret") && shown.contains("TokenAuth { tokens: 1,"), "{shown}");
        assert_eq!(call(&mut TokenAuth::default(), None), Ok(()));
    }

    #[test]
    fn a_wrong_token_of_any_length_costs_the_same_work_as_the_right_one() {
        use crate::secret::work;
        let mut auth = TokenAuth::new(vec!["s3cret".into(), "other-token".into()]);
        work::take();
        for presented in ["s3cret", "r2cret", "s", "s3cret-and-more", "other-token"] {
            let header: &'static str = presented.to_string().leak();
            let _ = call(&mut auth, Some(("x-api-key", header)));
            // One digest of what was presented, compared with both tokens in full.
            assert_eq!(work::take(), (1, 2 * 32), "{presented}");
        }
        assert_eq!(
            call(&mut auth, Some(("x-api-key", "r2cret"))),
            Err(tonic::Code::Unauthenticated)
        );
    }

    #[test]
    fn every_accepted_call_is_marked_with_its_caller() {
        let store = Arc::new(SessionStore::new(
            [("alice".to_string(), "pw".to_string())],
            crate::session::DEFAULT_SESSION_TTL,
        ));
        let mut auth = TokenAuth::new(vec!["t1".into(), "t2".into()]).with_sessions(store.clone());
        let caller = |auth: &mut TokenAuth, k: &'static str, v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert(k, v.parse().unwrap());
            auth.call(r).unwrap().extensions().get::<Caller>().cloned()
        };
        assert_eq!(caller(&mut auth, "x-api-key", "t2"), Some(Caller::Token(1)));
        assert_eq!(
            caller(&mut auth, "authorization", "Basic YWxpY2U6cHc="),
            Some(Caller::User("alice".into()))
        );
        let token = store.issue(&AuthenticatedUser("alice".into())).unwrap();
        let bearer = format!("Bearer {token}");
        assert_eq!(caller(&mut auth, "authorization", &bearer), Some(Caller::User("alice".into())));
        let open = TokenAuth::default().call(Request::new(())).unwrap();
        assert_eq!(open.extensions().get::<Caller>(), Some(&Caller::Address(None)));
        assert_eq!(Caller::Token(1).to_string(), "static token #2");
    }

    #[test]
    fn an_oidc_subject_becomes_the_user_and_a_refusal_the_message() {
        let mut auth = TokenAuth::new(vec!["static".into()]).with_oidc();
        let mut r = Request::new(());
        r.metadata_mut().insert("authorization", "Bearer a.b.c".parse().unwrap());
        r.extensions_mut().insert(OidcSubject("svc-account".into()));
        let passed = auth.call(r).unwrap();
        assert_eq!(passed.extensions().get(), Some(&Caller::User("svc-account".into())));

        let mut r = Request::new(());
        r.metadata_mut().insert("authorization", "Bearer a.b.c".parse().unwrap());
        r.extensions_mut().insert(OidcRefusal("the token expired".into()));
        let refused = auth.call(r).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(refused.message(), "the token expired");

        // A static token passes beside a refused OIDC token (x-api-key with a foreign bearer).
        let mut r = Request::new(());
        r.metadata_mut().insert("x-api-key", "static".parse().unwrap());
        r.extensions_mut().insert(OidcRefusal("not a JWT".into()));
        assert_eq!(auth.call(r).unwrap().extensions().get(), Some(&Caller::Token(0)));
        // OIDC alone turns auth on.
        let mut oidc_only = TokenAuth::new(vec![]).with_oidc();
        assert_eq!(call(&mut oidc_only, None), Err(tonic::Code::Unauthenticated));
    }

    #[test]
    fn a_token_configured_twice_is_accepted() {
        // The same token from --token and FLIGHTLINE_SERVE_TOKENS, say; an odd number of
        // matches must not be what decides.
        let mut auth = TokenAuth::new(vec!["k".into(), "k".into()]);
        assert_eq!(call(&mut auth, Some(("x-api-key", "k"))), Ok(()));
        let mut auth = TokenAuth::new(vec!["k".into(), "other".into(), "k".into()]);
        assert_eq!(call(&mut auth, Some(("authorization", "Bearer k"))), Ok(()));
        assert_eq!(call(&mut auth, Some(("x-api-key", "other"))), Ok(()));
    }
}
