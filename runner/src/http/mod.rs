//! The runner's HTTP listener: `/metrics` for Prometheus, and for people and orchestrators the
//! status page `/`, its data `/status.json`, `/healthz` and `/readyz`.
//!
//! One small axum router on the address of `[http] listen` (formerly `[metrics]`). With a token
//! configured, every route but the two probes wants it, as `authorization: Bearer TOKEN` or as
//! `?token=TOKEN` (the page passes its own on to its fetches); the probes say nothing an
//! attacker could use, and orchestrators call them without credentials.

mod access;
mod page;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use metrics_exporter_prometheus::PrometheusHandle;

pub use access::AccessToken;

use crate::metrics::Serving;

/// What the listener serves.
#[derive(Clone)]
pub(crate) struct Served {
    pub metrics: PrometheusHandle,
    /// The status (`None`: a listener that only exports metrics) and the token.
    pub serving: Serving,
}

/// Serves `served` on `listener` until the process ends; errors are logged.
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    served: Served,
) -> std::io::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = accepting(tokio::net::TcpListener::from_std(listener)?);
    let token = served.serving.token.clone();
    let guarded = Router::new()
        .route("/", get(page::page))
        .route("/status.json", get(status_json))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(token, access::require));
    let app =
        guarded.route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(served);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, %addr, "the HTTP listener stopped");
        }
    });
    Ok(addr)
}

/// `listener`, with Nagle's algorithm off on every connection it accepts: axum leaves it on, and
/// a response written in pieces (a long `/metrics` page) would wait for the scraper's delayed
/// ACK before its last piece.
fn accepting(
    listener: tokio::net::TcpListener,
) -> impl Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set on an HTTP connection");
        }
    })
}

async fn metrics(State(served): State<Served>) -> Response {
    let body = served.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn status_json(State(served): State<Served>) -> Response {
    let Some(live) = &served.serving.live else {
        return (StatusCode::NOT_FOUND, "this listener serves metrics only\n").into_response();
    };
    match serde_json::to_string_pretty(&live.snapshot()) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Answers while the process lives and its runtime turns.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once every server a job uses was reached and the checkpoint state is writable, 503
/// with what is missing otherwise.
async fn readyz(State(served): State<Served>) -> Response {
    let Some(live) = &served.serving.live else {
        return (StatusCode::OK, "ready\n").into_response();
    };
    let snapshot = live.snapshot();
    if snapshot.ready {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let mut missing: Vec<String> = snapshot
        .servers
        .iter()
        .filter(|(_, reached)| !**reached)
        .map(|(name, _)| format!("server {name:?} not reached yet"))
        .collect();
    if snapshot.state_writable == Some(false) {
        missing.push("the checkpoint state is not writable".into());
    }
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", missing.join("; ")))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = accepting(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = accepted.accept().await;
        assert!(server_side.nodelay().unwrap(), "Nagle's algorithm is still on");
    }
}
