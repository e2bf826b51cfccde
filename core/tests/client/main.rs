//! Integration tests of `flightline_core::client`.

mod embedded;
mod scripted;
mod session;
mod support;
mod tls;
