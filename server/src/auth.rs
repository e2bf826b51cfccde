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
    /// Accepts any of `tokens`; an empty list turns auth off.
    pub fn new(tokens: Vec<String>) -> Self {
        Self { tokens: Arc::new(tokens) }
    }

    fn accepts(&self, presented: &str) -> bool {
        // Compare against every token without stopping early, so timing says nothing about which.
        self.tokens
            .iter()
            .fold(false, |ok, t| ok | constant_time_eq(t.as_bytes(), presented.as_bytes()))
    }

    fn presented(request: &Request<()>) -> Option<&str> {
        let md = request.metadata();
        if let Some(v) = md.get("authorization").and_then(|v| v.to_str().ok()) {
            let (scheme, token) = v.trim().split_once(' ')?;
            return scheme.eq_ignore_ascii_case("bearer").then_some(token.trim());
        }
        md.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

impl Interceptor for TokenAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(request);
        }
        match Self::presented(&request) {
            Some(token) if self.accepts(token) => Ok(request),
            Some(_) => {
                Err(Status::unauthenticated("invalid token: check the bearer token or API key"))
            }
            None => Err(Status::unauthenticated(
                "missing credentials: send `authorization: Bearer <token>` or `x-api-key: <token>`",
            )),
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
        let mut r = Request::new(());
        if let Some((k, v)) = header {
            r.metadata_mut().insert(k, v.parse().unwrap());
        }
        auth.call(r).map(|_| ()).map_err(|s| s.code())
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
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert_eq!(call(&mut TokenAuth::default(), None), Ok(()));
    }
}
