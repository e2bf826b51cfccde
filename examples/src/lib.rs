//! # flightline-examples
//!
//! Runnable programs that follow the Micromegas advanced guide with the Flightline SDK, in
//! `examples/examples/`: `auth_headers` (bearer token, API key, tenant header, token
//! provider), `analyze_query_schema` (result schema and row size without running the query),
//! `validate_query` (the built-in validators plus one of our own) and `large_query` (a large
//! result streamed through the executor and the `count_by` processor, with progress and
//! statistics).
//!
//! This library holds what they share: [`ServerArgs`], the `--uri` / `--token` flags (also
//! read from `FLIGHTLINE_URI` / `FLIGHTLINE_TOKEN`, as every `flightline` command does) and
//! the client they describe.
//!
//! ```text
//! flightline serve --demo-rows 10000 --token s3cret &
//! cargo run -p flightline-examples --example validate_query -- --uri grpc://127.0.0.1:PORT --token s3cret
//! ```
#![warn(missing_docs)]

use std::fmt;

use flightline_core::Result;
use flightline_core::client::{ClientBuilder, DEFAULT_URI, FlightSqlClient};

/// The server to talk to and the token to show it. `Debug` never prints the token.
#[derive(Clone, clap::Args)]
pub struct ServerArgs {
    /// Flight SQL server (grpc://, grpc+tls://, http://, https://).
    #[arg(long, env = "FLIGHTLINE_URI", default_value = DEFAULT_URI)]
    pub uri: String,
    /// Bearer token, sent as `authorization: Bearer TOKEN`; empty sends none.
    #[arg(long, env = "FLIGHTLINE_TOKEN", hide_env_values = true, default_value = "")]
    pub token: String,
}

impl ServerArgs {
    /// The token, when one was given (surrounding whitespace ignored).
    pub fn token(&self) -> Option<&str> {
        Some(self.token.trim()).filter(|token| !token.is_empty())
    }

    /// A client builder for [`uri`](Self::uri) that sends the token, if any, as a bearer token.
    pub fn builder(&self) -> ClientBuilder {
        let builder = FlightSqlClient::builder(&self.uri);
        match self.token() {
            Some(token) => builder.bearer_token(token),
            None => builder,
        }
    }

    /// Connects with [`builder`](Self::builder).
    pub async fn connect(&self) -> Result<FlightSqlClient> {
        self.builder().connect().await
    }
}

impl fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerArgs")
            .field("uri", &self.uri)
            .field("token", &self.token().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn uri_and_token_fall_back_to_the_flightline_variables() {
        let command = ServerArgs::augment_args(clap::Command::new("probe"));
        let env = |id: &str| {
            let arg = command.get_arguments().find(|arg| arg.get_id() == id).unwrap();
            arg.get_env().map(|name| name.to_string_lossy().into_owned())
        };
        assert_eq!(env("uri").as_deref(), Some("FLIGHTLINE_URI"));
        assert_eq!(env("token").as_deref(), Some("FLIGHTLINE_TOKEN"));
        Probe::command().debug_assert();
    }

    #[test]
    fn the_token_becomes_a_bearer_header_and_never_shows() {
        let probe = Probe::try_parse_from(["probe", "--uri", "grpc://h:1", "--token", " hunter2 "])
            .unwrap();
        assert_eq!(probe.server.uri, "grpc://h:1");
        assert_eq!(probe.server.token(), Some("hunter2"));
        let builder = format!("{:?}", probe.server.builder());
        assert!(builder.contains("authorization"), "{builder}");
        let shown = format!("{probe:?} {builder}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let anonymous = ServerArgs { uri: "grpc://h:1".into(), token: "  ".into() };
        assert_eq!(anonymous.token(), None);
        assert!(!format!("{:?}", anonymous.builder()).contains("authorization"));
    }
}
