//! Turning a Flight URI into a gRPC channel: scheme mapping, TLS, timeouts, message limits.

use std::fmt;
use std::time::Duration;

use arrow_flight::flight_service_client::FlightServiceClient;
use tonic::codegen::http::uri::Authority;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{Error, Result, with_causes};

/// The largest HTTP/2 frame this client accepts (hyper's default is 16 KiB).
const MAX_FRAME_BYTES: u32 = 256 << 10;
/// What a server may send on one result before the client has read it (hyper's: 2 MiB).
const STREAM_WINDOW_BYTES: u32 = 8 << 20;
/// What a server may send on the whole connection before the client has read it (hyper's: 5 MiB).
const CONNECTION_WINDOW_BYTES: u32 = 16 << 20;

/// Settings shared by the main connection and the connections to endpoint locations.
#[derive(Clone)]
pub(crate) struct ConnectSettings {
    /// CA certificates (PEM) to trust instead of the system roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Name to verify the main server's certificate against, when it differs from the host.
    pub(crate) domain: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message_size: usize,
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("domain", &self.domain)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message_size", &self.max_message_size)
            .finish()
    }
}

/// A Flight URI split into what tonic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `http://host:port` or `https://host:port`: the key under which connections are shared.
    pub(crate) http_uri: String,
    pub(crate) tls: bool,
    /// The host in lowercase (`[::1]` for IPv6), for the credential decision.
    pub(crate) host: String,
    /// The port, or the scheme's default.
    pub(crate) port: u16,
}

/// Maps `grpc://`, `grpc+tcp://`, `http://` to plain gRPC and `grpc+tls://`, `https://` to TLS.
pub(crate) fn parse_target(uri: &str) -> Result<Target> {
    let uri = uri.trim();
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        Error::Config(format!(
            "{uri:?} is not a URI; write it like grpc://host:50051 or grpc+tls://host:443"
        ))
    })?;
    let Some(tls) = scheme_tls(scheme) else {
        return Err(Error::Config(format!(
            "{uri:?} has the scheme {scheme:?}; use grpc://, grpc+tls://, http:// or https://"
        )));
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(Error::Config(format!(
            "{uri:?} must be a scheme, a host and a port only, like grpc://host:50051"
        )));
    }
    let http_scheme = if tls { "https" } else { "http" };
    let http_uri = format!("{http_scheme}://{authority}");
    let parsed: tonic::codegen::http::Uri = http_uri
        .parse()
        .map_err(|err| Error::Config(format!("{uri:?} is not a valid server address: {err}")))?;
    let Some((host, port)) = parsed.authority().and_then(host_and_port) else {
        return Err(Error::Config(format!(
            "{uri:?} must name a host and a numeric port (and no user), like grpc://host:50051"
        )));
    };
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    Ok(Target { http_uri, tls, host, port })
}

/// Whether `scheme` means TLS (`grpc+tls`, `https`) or plain gRPC (`grpc`, `grpc+tcp`,
/// `http`), case ignored; `None` for a scheme this client does not speak.
pub(crate) fn scheme_tls(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "grpc" | "grpc+tcp" | "http" => Some(false),
        "grpc+tls" | "https" => Some(true),
        _ => None,
    }
}

/// The host (lowercase) and port of an authority, `None` when it holds a user or a port that
/// is not a number (`Authority` accepts both; its `port` then quietly says "none").
pub(crate) fn host_and_port(authority: &Authority) -> Option<(String, Option<u16>)> {
    let text = authority.as_str();
    let host = authority.host();
    let port = match text.strip_prefix(host)? {
        "" => None,
        rest => Some(rest.strip_prefix(':')?.parse().ok()?),
    };
    (!host.is_empty() && !text.contains('@')).then(|| (host.to_ascii_lowercase(), port))
}

impl ConnectSettings {
    /// Builds the tonic endpoint. `main` says whether this is the server the user named (the
    /// domain override applies only there; endpoint locations are other hosts).
    pub(crate) fn endpoint(&self, uri: &str, target: &Target, main: bool) -> Result<Endpoint> {
        let mut endpoint = Endpoint::from_shared(target.http_uri.clone())
            .map_err(|err| Error::Config(format!("{uri:?} is not a valid server address: {err}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // Detects a peer that vanished without closing the connection, so a stream fails
            // instead of hanging forever.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            // A result arrives as messages of a few hundred KiB to a few MiB. hyper's defaults
            // (16 KiB frames, a 2 MiB stream window) cut each into dozens of frames; task
            // switches were a fifth of the client's profile. Measured side by side
            // (bench/results/2026-12-03-ab.md): 256 KiB frames alone took a third of the
            // client's CPU off the full scan, and of the larger settings compared in a second
            // run these windows did best. The windows bound what a server may send ahead of the
            // reader: 8 MiB per result, 16 MiB per connection.
            .max_frame_size(MAX_FRAME_BYTES)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES);
        if target.tls {
            endpoint = endpoint.tls_config(self.tls_config(main)).map_err(|err| {
                Error::Config(with_causes(
                    format!("cannot set up TLS for {uri}"),
                    std::error::Error::source(&err),
                ))
            })?;
        } else if main && (self.ca_pem.is_some() || self.domain.is_some()) {
            return Err(Error::Config(format!(
                "TLS options were given but {uri:?} is plain gRPC; use grpc+tls:// or https://"
            )));
        }
        Ok(endpoint)
    }

    fn tls_config(&self, main: bool) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        match (&self.domain, main) {
            (Some(domain), true) => config.domain_name(domain.clone()),
            _ => config,
        }
    }

    /// A Flight client on `channel` with this client's message limits.
    pub(crate) fn flight_client(&self, channel: Channel) -> FlightServiceClient<Channel> {
        FlightServiceClient::new(channel)
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_to_plain_or_tls() {
        for (uri, http_uri, tls, host, port) in [
            ("grpc://127.0.0.1:50051", "http://127.0.0.1:50051", false, "127.0.0.1", 50051),
            ("grpc+tcp://host:1", "http://host:1", false, "host", 1),
            ("http://Host:1/", "http://Host:1", false, "host", 1),
            ("grpc+tls://host:443", "https://host:443", true, "host", 443),
            ("HTTPS://host", "https://host", true, "host", 443),
            ("grpc://host", "http://host", false, "host", 80),
            ("grpc://[::1]:9", "http://[::1]:9", false, "[::1]", 9),
        ] {
            let expected = Target { http_uri: http_uri.into(), tls, host: host.into(), port };
            assert_eq!(parse_target(uri).unwrap(), expected, "{uri}");
        }
    }

    #[test]
    fn bad_uris_are_config_errors() {
        for uri in [
            "localhost:50051",
            "ftp://host:1",
            "grpc://",
            "grpc://host:1/path",
            "grpc://host:port",
            "grpc://user@host:1",
            "grpc://:1",
        ] {
            assert!(matches!(parse_target(uri), Err(Error::Config(m)) if m.contains(uri)), "{uri}");
        }
    }
}
