//! Ending a session: Flight's `CloseSession` action.

use arrow_flight::Action;
use bytes::Bytes;
use futures::TryStreamExt;
use prost::Message;

use super::FlightSqlClient;
use super::auth::HeaderSet;
use crate::error::{Error, Result};

/// The action type of Flight's `CloseSession` (Flight.proto, Arrow 16+).
const CLOSE_SESSION: &str = "CloseSession";

/// `arrow.flight.protocol.CloseSessionResult`, which arrow-flight 59 does not generate.
#[derive(Clone, PartialEq, Message)]
struct CloseSessionResult {
    /// 0 unspecified, 1 closed, 2 closing, 3 not closeable.
    #[prost(int32, tag = "1")]
    status: i32,
}

impl FlightSqlClient {
    /// Asks the server to end this client's session (Flight `CloseSession`, as ADBC sends on
    /// close) so it can free what it keeps per session, and forgets the handshake token.
    ///
    /// A server that does not implement `CloseSession` is fine (`Ok`). The client stays
    /// usable: a later call on a client with [`basic_auth`](super::ClientBuilder::basic_auth)
    /// handshakes again and starts a new session.
    pub async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        // An empty CloseSessionRequest encodes as no bytes.
        let action = Action::new(CLOSE_SESSION, Bytes::new());
        let what = "DoAction CloseSession";
        let outcome = match shared.do_action(action, &HeaderSet::default(), what).await {
            Ok(results) => results
                .map_err(|status| Error::from_status(&status, &shared.uri))
                .try_collect::<Vec<_>>()
                .await
                .map(|results| log_status(results.first().map(|r| &r.body))),
            Err(Error::Unimplemented { message }) => {
                tracing::debug!(uri = %shared.uri, reason = %message, "the server has no CloseSession");
                Ok(())
            }
            Err(err) => Err(err),
        };
        if let Some(session) = &shared.session {
            session.forget().await;
        }
        outcome
    }
}

fn log_status(body: Option<&Bytes>) {
    let status = body.and_then(|body| CloseSessionResult::decode(body.clone()).ok());
    match status.map(|result| result.status) {
        Some(1) | Some(2) => tracing::debug!("session closed"),
        other => tracing::debug!(status = ?other, "the server did not close the session"),
    }
}
