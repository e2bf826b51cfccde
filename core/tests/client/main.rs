//! Integration tests of `flightline_core::client`.

mod embedded;
mod scripted;
mod support;
mod tls;
