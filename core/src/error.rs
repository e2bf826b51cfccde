//! The one error type of `flightline-core`.
//!
//! Each variant says what failed in the caller's terms, so a caller can tell "fix your query"
//! ([`Error::InvalidQuery`]) from "retry" ([`Error::is_retryable`]). A variant that wraps a
//! typed cause exposes it through `source()` and leaves it out of its message: print errors
//! with [`Chain`] to show every cause once.

use std::path::PathBuf;

mod chain;

pub use chain::Chain;

use crate::plugin::PluginErrorKind;
use crate::process::{ProcessError, ProcessStage};
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
        "not authenticated: {message} (give the client a valid token: ClientBuilder::bearer_token, \
         token_provider, FLIGHTLINE_TOKEN, or an `authorization` / `x-api-key` header)"
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
    /// The connection could not be made or broke (refused, reset, timed out, stream cut
    /// mid-result); retrying may succeed. TLS and DNS failures are [`Error::Connect`].
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
    /// A plugin library could not be loaded or used; names the file.
    #[error("plugin {}: {kind}", path.display())]
    Plugin {
        /// The library's path, as given.
        path: PathBuf,
        /// What went wrong.
        kind: PluginErrorKind,
    },
    /// A processor failed; names the processor, the stage and the batch; what the processor
    /// said is the source. Not retryable: the same data would fail the same way.
    #[error("processor `{processor}` failed in {stage}{}", batch.map(|b| format!(" at batch {b}")).unwrap_or_default())]
    Processor {
        /// The processor's name.
        processor: String,
        /// Which call failed.
        stage: ProcessStage,
        /// The 0-based batch index, for a failure in `process`.
        batch: Option<u64>,
        /// What the processor said.
        #[source]
        source: ProcessError,
    },
    /// The connection failed in a way retrying will not fix: TLS, the server certificate,
    /// or a host name that does not resolve. (A malformed URI is [`Error::Config`].)
    #[error("cannot connect to {uri}: {kind}: {message}")]
    Connect {
        /// The server address.
        uri: String,
        /// What part of connecting failed.
        kind: ConnectErrorKind,
        /// What the network or TLS stack reported.
        message: String,
    },
    /// A file could not be written or put in place ([`crate::atomic_file`]); names the file and
    /// the step. Whatever had that name before is unchanged, except after a failed
    /// [`FileStep::SyncDir`](crate::atomic_file::FileStep::SyncDir): then the new file is in
    /// place but may not survive a power cut.
    #[error("cannot {step} {}: {cause} (check the path, its permissions and free space)", path.display())]
    File {
        /// The file that was to be written.
        path: PathBuf,
        /// What failed.
        step: crate::atomic_file::FileStep,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file exists and the write was not to replace it: nothing was written.
    #[error("{} exists and was kept; nothing was written (choose another path, or allow replacing it)", path.display())]
    FileExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A metric name cannot be used: the host's prefix, not a Prometheus name, or taken with
    /// another type ([`crate::metrics::claim_metric_name`]).
    #[error("metric `{name}`: {reason}")]
    MetricName {
        /// The name asked for.
        name: String,
        /// Why it was refused, naming both owners when it is taken.
        reason: String,
    },
    /// Getting a token from an OIDC provider failed
    /// ([`OidcClientCredentials`](crate::client::OidcClientCredentials)): discovery, the token
    /// request, or reading the client secret. Never shows the secret or a token.
    #[error("OIDC issuer {issuer}: {message}")]
    Oidc {
        /// The issuer URL.
        issuer: String,
        /// What failed and what to try.
        message: String,
        /// The provider was unreachable or answered a server error: trying later may succeed.
        transient: bool,
    },
    /// An endpoint lives at a plaintext location while the server was reached over TLS.
    #[error(
        "endpoint {endpoint} is at the plaintext location {location} but the server was reached \
         over TLS; refusing to send the ticket and credentials in clear \
         (ClientBuilder::allow_insecure_locations allows it)"
    )]
    InsecureLocation {
        /// The endpoint's index in the FlightInfo.
        endpoint: usize,
        /// The location refused.
        location: String,
    },
}

/// Why [`Error::Connect`] could not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server certificate was refused (unknown issuer, wrong name, expired).
    #[error("certificate refused")]
    Certificate,
    /// The TLS handshake failed for another reason (the server does not speak TLS, no common
    /// protocol version or cipher).
    #[error("TLS handshake failed")]
    Tls,
    /// The host name does not resolve.
    #[error("host name not resolved")]
    Dns,
}

/// The message of an error a call produced (the server's, or the network stack's), by
/// reference or mutably as `error` is.
macro_rules! call_message {
    ($error:expr) => {
        match $error {
            Error::InvalidQuery { message }
            | Error::Unauthenticated { message }
            | Error::PermissionDenied { message }
            | Error::NotFound { message }
            | Error::ResourceExhausted { message }
            | Error::Unimplemented { message }
            | Error::Unavailable { message }
            | Error::Transport { message, .. }
            | Error::Timeout { message }
            | Error::Cancelled { message }
            | Error::Server { message, .. } => Some(message),
            _ => None,
        }
    };
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
                | Error::Oidc { transient: true, .. }
        )
    }

    /// Names `id` at the end of the message of an error a call produced, unless the message
    /// (the server's) already does; other errors are returned as they are.
    pub fn with_request_id(mut self, id: &str) -> Self {
        if let Some(message) = call_message!(&mut self) {
            *message = crate::request_id::append(std::mem::take(message), id);
        }
        self
    }

    /// The `x-request-id` of the query that failed, when the error came from a call: the id
    /// the server's log and audit line carry.
    pub fn request_id(&self) -> Option<&str> {
        call_message!(self).and_then(|message| crate::request_id::find(message))
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
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
                if is_local(status) =>
            {
                Error::local(uri, status.message().to_string(), status)
            }
            tonic::Code::Unavailable => Error::Unavailable { message },
            code => Error::Server { code, message },
        }
    }

    /// A failure of the client's own network stack talking to `uri`: [`Error::Connect`] when
    /// its causes show TLS, a certificate or DNS, [`Error::Transport`] (retryable) otherwise.
    pub fn from_transport(uri: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Error::local(uri, err.to_string(), err)
    }

    fn local(uri: &str, text: String, err: &(dyn std::error::Error + 'static)) -> Self {
        let message = with_causes(text, err.source());
        match connect_kind(err) {
            Some(kind) => Error::Connect { uri: uri.to_string(), kind, message },
            None => Error::Transport { uri: uri.to_string(), message },
        }
    }
}

/// Reads the cause chain: rustls errors travel inside an `io::Error` (whose `source` skips
/// them, hence `get_ref`), and hyper's connector names a failed lookup "dns error".
fn connect_kind(err: &(dyn std::error::Error + 'static)) -> Option<ConnectErrorKind> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        let inner = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| inner?.downcast_ref());
        match tls {
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
                return Some(ConnectErrorKind::Certificate);
            }
            Some(_) => return Some(ConnectErrorKind::Tls),
            None if err.to_string() == "dns error" => return Some(ConnectErrorKind::Dns),
            None => cause = err.source(),
        }
    }
    None
}

/// A status the server sent arrives as trailers and has no source; one built by the client's
/// own HTTP/2 stack from a connect failure or a broken stream carries the underlying error.
fn is_local(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// Appends each cause of an error chain that the text does not already say: for libraries
/// whose errors keep the reason in their source (a TLS handshake's certificate problem).
pub fn with_causes(
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
    fn a_call_error_names_its_request_id_once_and_others_none() {
        let refused = Error::InvalidQuery { message: "no such table".into() }.with_request_id("r1");
        assert_eq!(refused.request_id(), Some("r1"));
        assert!(refused.to_string().contains("no such table (request id: r1)"), "{refused}");
        let again = refused.with_request_id("r1");
        assert_eq!(again.to_string().matches("request id").count(), 1, "{again}");
        let local = Error::Config("bad".into()).with_request_id("r1");
        assert_eq!(local.request_id(), None);
        assert_eq!(local.to_string(), "invalid client configuration: bad");
    }

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
        assert!(err.to_string().contains("ClientBuilder::bearer_token"), "{err}");
        // The library names its API; command-line flags are the runner's to suggest.
        assert!(!err.to_string().contains("--"), "{err}");
    }

    #[test]
    fn a_processor_failure_says_its_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "disk says no");
        let err = Error::Processor {
            processor: "csv_sink".into(),
            stage: ProcessStage::Process,
            batch: Some(2),
            source: ProcessError::from(io),
        };
        assert!(!err.to_string().contains("disk says no"), "{err}");
        assert_eq!(
            Chain(&err).to_string(),
            "processor `csv_sink` failed in process at batch 2: i/o: disk says no"
        );
    }

    #[test]
    fn tls_and_dns_failures_are_not_retryable() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        let err =
            Error::from_transport("grpc+tls://h:1", &tonic::Status::from_error(Box::new(wrapped)));
        assert!(
            matches!(&err, Error::Connect { kind: ConnectErrorKind::Certificate, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let handshake = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        let err = Error::from_transport("grpc+tls://h:1", &handshake);
        assert!(matches!(&err, Error::Connect { kind: ConnectErrorKind::Tls, .. }), "{err:?}");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::from_transport("grpc://h:1", &refused);
        assert!(matches!(&err, Error::Transport { .. }) && err.is_retryable(), "{err:?}");
    }
}
