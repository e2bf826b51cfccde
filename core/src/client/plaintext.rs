//! The warning given when credentials travel in clear to another machine.
//!
//! Plain gRPC to `localhost` is common and harmless (a sidecar, a test server); to any other
//! host, whoever is on the network path can read the token. The client still sends it (the
//! user chose the URI), but says so once per place, so the log is not flooded by every query.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

use super::tls::Target;

/// The places this client has already warned about.
#[derive(Debug, Default)]
pub(crate) struct PlaintextWarnings {
    warned: Mutex<HashSet<(String, u16)>>,
}

impl PlaintextWarnings {
    /// Warns (once per host and port) when credentials are about to go to `target` without
    /// TLS and `target` is not this machine; true when this call warned. The message names the
    /// host and port only, never a header.
    pub(crate) fn credentials_sent_to(&self, target: &Target) -> bool {
        if target.tls || is_loopback(&target.host) {
            return false;
        }
        let place = (target.host.clone(), target.port);
        let mut warned = self.warned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !warned.insert(place) {
            return false;
        }
        tracing::warn!(
            host = %target.host,
            port = target.port,
            "credentials are sent in clear (no TLS) to {}:{}, which is not this machine: \
             anyone on the network path can read them; use grpc+tls:// (or https://)",
            target.host,
            target.port
        );
        true
    }
}

/// `localhost` (and names under it) or a loopback address, IPv6 in brackets as in a URI.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tls::parse_target;

    #[test]
    fn loopback_hosts_are_this_machine() {
        for host in ["localhost", "LOCALHOST.", "db.localhost", "127.0.0.1", "127.8.9.1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        assert!(is_loopback("[::ffff:127.0.0.1]"));
        for host in ["10.0.0.7", "example.com", "localhost.example.com", "[::2]", "0.0.0.0"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn one_warning_per_plaintext_place_off_this_machine() {
        let warnings = PlaintextWarnings::default();
        let remote = parse_target("grpc://10.0.0.7:50051").unwrap();
        assert!(warnings.credentials_sent_to(&remote));
        assert!(!warnings.credentials_sent_to(&remote), "warned twice");
        assert!(warnings.credentials_sent_to(&parse_target("grpc://10.0.0.7:50052").unwrap()));
        for quiet in ["grpc+tls://10.0.0.8:1", "grpc://127.0.0.1:1", "http://localhost:2"] {
            assert!(!warnings.credentials_sent_to(&parse_target(quiet).unwrap()), "{quiet}");
        }
    }
}
