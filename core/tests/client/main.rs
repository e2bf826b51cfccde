//! Integration tests of `flightline_core::client`.

mod credentials;
mod embedded;
mod scripted;
mod session;
mod support;
mod tls;
