//! The listener's optional access token.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The token the listener wants. Only its SHA-256 is kept, and presented tokens are compared
/// digest to digest, so the comparison's time says nothing about the token.
#[derive(Clone)]
pub struct AccessToken([u8; 32]);

impl AccessToken {
    /// Wants `token` (surrounding whitespace ignored); `None` for a blank one, which must never
    /// let an empty header in.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self(Sha256::digest(token.as_bytes()).into()))
    }

    fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        digest.iter().zip(self.0.iter()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Lets a request through when no token is configured or it carries the token.
pub(super) async fn require(
    State(token): State<Option<AccessToken>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if presented(&request).is_some_and(|p| token.accepts(&p)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this listener wants its token: send `authorization: Bearer TOKEN` or open /?token=TOKEN\n",
    )
        .into_response()
}

fn presented(request: &Request) -> Option<String> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .and_then(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer").then(|| t.to_string()));
    bearer.or_else(|| {
        let token = request.uri().query()?.split('&').find_map(|p| p.strip_prefix("token="))?;
        // A query string encodes a space as `+`, and anything else by percent.
        let token = token.replace('+', " ");
        Some(percent_encoding::percent_decode_str(&token).decode_utf8_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_is_accepted_and_a_blank_one_is_no_token() {
        let token = AccessToken::new(" s3cret\n").unwrap();
        assert!(token.accepts("s3cret"));
        assert!(!token.accepts("s3cre"));
        assert!(!token.accepts(""));
        assert!(AccessToken::new("  ").is_none());
        assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
    }
}
