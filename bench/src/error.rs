//! The one error type of the benchmark client. A variant's message leaves out its source:
//! `main` prints the chain ([`flightline_core::error::Chain`]), each cause once.

/// What stopped a benchmark line.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The SDK failed: connecting, querying or running a processor.
    #[error(transparent)]
    Sdk(#[from] flightline_core::Error),
    /// The bare arrow-flight client failed against `uri`; what it reported is the source.
    #[error("arrow-flight client against {uri}")]
    Flight {
        /// The server asked.
        uri: String,
        /// What arrow-flight reported.
        source: arrow_flight::error::FlightError,
    },
    /// `uri` is not a URI a gRPC channel can open.
    #[error("cannot open a channel to {uri}: {message}; pass grpc://host:port or http://host:port")]
    Channel {
        /// The URI given.
        uri: String,
        /// Why tonic refused it.
        message: String,
    },
    /// A processor could not be built from its options.
    #[error("processor {name}: {message}")]
    Processor {
        /// The processor asked for.
        name: String,
        /// Why it could not be built.
        message: String,
    },
    /// The loopback copy failed; what the OS said is the source.
    #[error("loopback TCP copy")]
    Io(#[from] std::io::Error),
    /// Rows were lost: a benchmark of a wrong answer measures nothing.
    #[error("{line} read {got} rows where {expected} were expected")]
    RowsLost {
        /// The line that lost them.
        line: String,
        /// Rows read.
        got: u64,
        /// Rows expected.
        expected: u64,
    },
}
