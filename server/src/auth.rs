//! Optional token auth: `authorization: Bearer <token>` or `x-api-key: <token>`.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks every call against the configured tokens; accepts everything when there are none.
#[derive(Clone, Default)]
pub struct TokenAuth {
    tokens: Arc<Vec<String>>,
}

impl std::fmt::Debug for TokenAuth {
    // Never print the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth").field("tokens", &self.tokens.len()).finish()
    }
}

impl TokenAuth {
    /// Accepts any of `tokens`; an empty list turns auth off. Blank tokens are ignored: an
    /// empty `--token ''` (or a trailing comma in a list) must never accept an empty header.
    pub fn new(tokens: Vec<String>) -> Self {
        let tokens = tokens.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        Self { tokens: Arc::new(tokens.collect()) }
    }

    fn accepts(&self, presented: &str) -> bool {
        // Compare against every token without stopping early, so timing says nothing about which.
        self.tokens
            .iter()
            .fold(false, |ok, t| ok | constant_time_eq(t.as_bytes(), presented.as_bytes()))
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
}

impl Interceptor for TokenAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(request);
        }
        let presented = Self::presented(&request);
        if presented.iter().any(|t| self.accepts(t)) {
            Ok(request)
        } else if presented.is_empty() {
            Err(Status::unauthenticated(
                "missing credentials: send `authorization: Bearer <token>` or `x-api-key: <token>`",
            ))
        } else {
            Err(Status::unauthenticated("invalid token: check the bearer token or API key"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        assert!(!shown.contains("s3cret") && shown.contains("TokenAuth { tokens: 1 }"), "{shown}");
        assert_eq!(call(&mut TokenAuth::default(), None), Ok(()));
    }

    #[test]
    fn byte_differences_that_cancel_out_are_still_differences() {
        // 'a' ^ 'b' == 3 twice: an XOR-folded comparison would call these equal.
        assert!(!constant_time_eq(b"aa", b"bb"));
        assert!(!constant_time_eq(b"s3cret", b"r2cret"));
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        let mut auth = TokenAuth::new(vec!["s3cret".into()]);
        assert_eq!(
            call(&mut auth, Some(("x-api-key", "r2cret"))),
            Err(tonic::Code::Unauthenticated)
        );
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
