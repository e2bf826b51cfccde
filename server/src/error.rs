//! The one error type of `flightline-server`. A variant's message leaves out its source, so
//! printing the chain ([`flightline_core::error::Chain`]) says each cause once.

use std::path::PathBuf;

/// Everything that can stop the embedded server from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listen address could not be bound; what the OS said is the source.
    #[error("cannot listen on {addr} (is another server using the port? try --listen 127.0.0.1:0)")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// A `--table name=path` could not be registered.
    #[error("cannot serve table {name:?} from {}: {reason}", path.display())]
    Table {
        /// Table name.
        name: String,
        /// File path.
        path: PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The TLS certificate or key is unusable.
    #[error(
        "TLS setup failed: {0} (pass a PEM certificate chain with --tls-cert and its PEM private key with --tls-key)"
    )]
    Tls(String),
    /// Building the demo tables failed.
    #[error("cannot build the demo tables: {0}")]
    Demo(String),
    /// A user for the handshake is malformed (the message never holds the password).
    #[error("invalid user {0}")]
    User(String),
    /// The OIDC settings are unusable (`--oidc-issuer`, `--audience`).
    #[error("OIDC: {0}")]
    Oidc(String),
    /// The gRPC server stopped with an error.
    #[error("the Flight SQL server failed: {0}")]
    Serve(String),
}

impl ServerError {
    pub(crate) fn demo(e: impl std::fmt::Display) -> Self {
        Self::Demo(e.to_string())
    }
}
