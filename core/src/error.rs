//! The one error type of `flightline-core`.
//!
//! Each variant says what failed in the caller's terms, so a caller can tell "fix your query"
//! ([`Error::InvalidQuery`]) from "retry" ([`Error::is_retryable`]).

use crate::validate::Finding;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URI or a client option is malformed.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A time range could not be parsed or is empty/reversed.
    #[error("invalid time range {input:?}: {reason}")]
    TimeRange {
        /// What the user passed.
        input: String,
        /// Why it was refused, and what to write instead.
        reason: String,
    },
    /// Validation refused the query: at least one finding has severity `Deny`.
    #[error("query refused by validation: {}", findings.iter().map(|f| format!("[{}] {}", f.code, f.message)).collect::<Vec<_>>().join("; "))]
    ValidationDenied {
        /// Every finding of the run, not only the denying ones.
        findings: Vec<Finding>,
    },
    /// The server refused the query or a header value (gRPC `INVALID_ARGUMENT`): bad SQL,
    /// unknown table or column, malformed time range header.
    #[error(
        "invalid query: {message} (fix the SQL or the request options; retrying will not help)"
    )]
    InvalidQuery {
        /// The server's message.
        message: String,
    },
    /// The server wants credentials, or refused the ones given (gRPC `UNAUTHENTICATED`).
    #[error(
        "not authenticated: {message} (pass a valid token with --token / FLIGHTLINE_TOKEN or an \
         `authorization: Bearer ...` / `x-api-key` header)"
    )]
    Unauthenticated {
        /// The server's message.
        message: String,
    },
    /// The server refused the credentials of the Flight handshake (a user name and password, or
    /// a caller's own exchange). Retrying with the same credentials will not help, and the
    /// client never does.
    #[error("{uri} refused the credentials: {message} (check the user name and password)")]
    CredentialsRefused {
        /// The server.
        uri: String,
        /// The server's message, with the user name when known (never the password).
        message: String,
    },
    /// The credentials are valid but not allowed to do this (gRPC `PERMISSION_DENIED`).
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// The server's message.
        message: String,
    },
    /// Something the request names does not exist on the server (gRPC `NOT_FOUND`).
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// The query is over a server budget (gRPC `RESOURCE_EXHAUSTED`): narrow the time range,
    /// add a limit, or select fewer columns.
    #[error(
        "server resources exhausted: {message} (narrow the time range, add a LIMIT or select fewer \
         columns)"
    )]
    ResourceExhausted {
        /// The server's message.
        message: String,
    },
    /// The server does not implement this call (gRPC `UNIMPLEMENTED`), e.g. a Flight SQL command
    /// or the direct-ticket path on a server that only speaks standard Flight SQL.
    #[error("not supported by the server: {message}")]
    Unimplemented {
        /// The server's message.
        message: String,
    },
    /// The server said it is unavailable (gRPC `UNAVAILABLE`); retrying later may succeed.
    #[error("server unavailable: {message} (retry later)")]
    Unavailable {
        /// The server's message.
        message: String,
    },
    /// The connection could not be made or broke (refused, reset, TLS failure, stream cut
    /// mid-result); retrying may succeed.
    #[error("transport error talking to {uri}: {message} (is the server running and reachable?)")]
    Transport {
        /// The server address the client was talking to.
        uri: String,
        /// What the network stack reported.
        message: String,
    },
    /// A deadline passed before the server answered (client request timeout or gRPC
    /// `DEADLINE_EXCEEDED`).
    #[error("timed out: {message}")]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// The call was cancelled (gRPC `CANCELLED`).
    #[error("cancelled: {message}")]
    Cancelled {
        /// The server's message.
        message: String,
    },
    /// Any other gRPC status (`INTERNAL`, `UNKNOWN`, `ABORTED`, ...), with its code.
    #[error("server error ({code:?}): {message}")]
    Server {
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// The server answered something this client cannot use: a malformed Flight SQL message,
    /// undecodable Arrow IPC data, an endpoint without a usable location.
    #[error("unexpected response from the server: {0}")]
    Protocol(String),
}

impl Error {
    /// True when the same call may succeed if tried again later: the server was unavailable,
    /// the connection failed or broke, a deadline passed, or the server aborted the call.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. }
                | Error::Transport { .. }
                | Error::Timeout { .. }
                | Error::Server { code: tonic::Code::Aborted, .. }
        )
    }

    /// Maps a gRPC status to the variant that says what the caller should do. `uri` names the
    /// server for errors produced by the local network stack rather than sent by the server.
    pub fn from_status(status: &tonic::Status, uri: &str) -> Self {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::InvalidArgument => Error::InvalidQuery { message },
            tonic::Code::Unauthenticated => Error::Unauthenticated { message },
            tonic::Code::PermissionDenied => Error::PermissionDenied { message },
            tonic::Code::NotFound => Error::NotFound { message },
            tonic::Code::ResourceExhausted => Error::ResourceExhausted { message },
            tonic::Code::Unimplemented => Error::Unimplemented { message },
            tonic::Code::DeadlineExceeded => Error::Timeout { message },
            tonic::Code::Cancelled => Error::Cancelled { message },
            tonic::Code::Unavailable if is_local(status) => {
                Error::Transport { uri: uri.to_string(), message: describe_local(status) }
            }
            tonic::Code::Unavailable => Error::Unavailable { message },
            tonic::Code::Unknown | tonic::Code::Internal if is_local(status) => {
                Error::Transport { uri: uri.to_string(), message: describe_local(status) }
            }
            code => Error::Server { code, message },
        }
    }
}

/// A status the server sent arrives as trailers and has no source; one built by the client's
/// own HTTP/2 stack from a connect failure or a broken stream carries the underlying error.
fn is_local(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// The status message and its causes, which hold the useful part ("connection refused").
fn describe_local(status: &tonic::Status) -> String {
    with_causes(status.message().to_string(), std::error::Error::source(status))
}

/// Appends each cause of an error chain that the text does not already say.
pub(crate) fn with_causes(
    mut text: String,
    mut cause: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    while let Some(err) = cause {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&Error) -> bool;

    #[test]
    fn server_statuses_map_to_typed_variants() {
        let uri = "grpc://example:1";
        let cases: Vec<(tonic::Status, Check, bool)> = vec![
            (
                tonic::Status::invalid_argument("bad sql"),
                |e| matches!(e, Error::InvalidQuery { message } if message == "bad sql"),
                false,
            ),
            (
                tonic::Status::unauthenticated("no token"),
                |e| matches!(e, Error::Unauthenticated { .. }),
                false,
            ),
            (
                tonic::Status::permission_denied("no"),
                |e| matches!(e, Error::PermissionDenied { .. }),
                false,
            ),
            (tonic::Status::not_found("gone"), |e| matches!(e, Error::NotFound { .. }), false),
            (
                tonic::Status::resource_exhausted("budget"),
                |e| matches!(e, Error::ResourceExhausted { .. }),
                false,
            ),
            (
                tonic::Status::unimplemented("what"),
                |e| matches!(e, Error::Unimplemented { .. }),
                false,
            ),
            (
                tonic::Status::unavailable("busy"),
                |e| matches!(e, Error::Unavailable { message } if message == "busy"),
                true,
            ),
            (
                tonic::Status::deadline_exceeded("slow"),
                |e| matches!(e, Error::Timeout { .. }),
                true,
            ),
            (tonic::Status::cancelled("stop"), |e| matches!(e, Error::Cancelled { .. }), false),
            (
                tonic::Status::aborted("conflict"),
                |e| matches!(e, Error::Server { code: tonic::Code::Aborted, .. }),
                true,
            ),
            (
                tonic::Status::internal("boom"),
                |e| matches!(e, Error::Server { code: tonic::Code::Internal, .. }),
                false,
            ),
        ];
        for (status, check, retryable) in cases {
            let err = Error::from_status(&status, uri);
            assert!(check(&err), "{status:?} became {err:?}");
            assert_eq!(err.is_retryable(), retryable, "{err:?}");
        }
    }

    #[test]
    fn locally_built_statuses_are_transport_errors() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let status = tonic::Status::from_error(Box::new(io));
        let err = Error::from_status(&status, "grpc://example:1");
        match &err {
            Error::Transport { uri, message } => {
                assert_eq!(uri, "grpc://example:1");
                assert!(message.contains("connection reset"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_retryable());
    }

    #[test]
    fn messages_say_what_to_do() {
        let err = Error::InvalidQuery { message: "table 'x' not found".into() };
        assert!(err.to_string().contains("table 'x' not found"));
        assert!(err.to_string().contains("retrying will not help"));
        let err = Error::Unauthenticated { message: "missing token".into() };
        assert!(err.to_string().contains("--token"));
    }
}
