//! Who a call is: the identities the auth interceptor ([`crate::auth`]) proves and puts on a
//! request, and the per-caller limits and the handshake ([`crate::session`]) read. Its own
//! module so that auth and sessions both depend on it and not on each other.

use std::net::IpAddr;

use tonic::Request;

/// Who made a call, as the server's per-caller limits count it: the authenticated identity,
/// or the client's address when auth is off.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A user, by Basic credentials or a session token the handshake issued.
    User(String),
    /// The static token at this position of the configured list (the token is a secret).
    Token(usize),
    /// An unauthenticated client, by its IP address (not its port, which it can change).
    Address(Option<IpAddr>),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(name) => write!(f, "user {name:?}"),
            Self::Token(i) => write!(f, "static token #{}", i + 1),
            Self::Address(Some(ip)) => write!(f, "client {ip}"),
            Self::Address(None) => f.write_str("a client of unknown address"),
        }
    }
}

impl Caller {
    /// The caller the auth interceptor put on `request`, or the request's address when it put
    /// none (a service used without [`TokenAuth`](crate::auth::TokenAuth)).
    pub fn of<T>(request: &Request<T>) -> Self {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Self::Address(request.remote_addr().map(|a| a.ip())))
    }
}

/// The user a call proved to be with valid Basic credentials: the auth interceptor puts it into
/// the request's extensions, for the handshake to issue a token to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);
