//! Integration tests of `flightline_core::client`.

mod credentials;
mod embedded;
mod scripted;
mod support;
mod tls;
