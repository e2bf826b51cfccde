//! The state database as one worker uses it: where it is, who this worker is, and one
//! connection, made again when it is lost.

use std::sync::Arc;
use std::time::Duration;

use flightline_plugins::postgres::PgConnection;
use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::lease::{LeaseError, Leases};
use super::migrate::migrate;
use crate::RunnerError;

/// A worker's handle on the shared state.
pub struct StateDb {
    connection: PgConnection,
    /// `user@host:port/database`, for messages and for the leases sinks compare with theirs.
    store: String,
    /// The `worker` metric label.
    worker: String,
    /// Unique per process: the label, the process id and a random suffix, so that a worker
    /// restarted under the same label is a new owner whose predecessor's leases it cannot
    /// renew or commit.
    owner: String,
    ttl: Duration,
    client: Mutex<Option<Arc<Client>>>,
}

impl StateDb {
    /// Connects as `worker` and brings the tables to the current schema: what a worker does
    /// before it runs anything. Fails when the database cannot be reached or used, so that a
    /// wrong password or address stops the worker at once with the reason.
    pub async fn open(
        connection: PgConnection,
        worker: &str,
        ttl: Duration,
    ) -> Result<Self, RunnerError> {
        let store = connection.describe();
        let refused = |message: String| RunnerError::StateDb { store: store.clone(), message };
        let mut client = connection.connect().await.map_err(&refused)?;
        let applied = migrate(&mut client).await.map_err(|e| refused(e.to_string()))?;
        if !applied.is_empty() {
            tracing::info!(state = %store, versions = ?applied, "state database migrated");
        }
        let owner = format!("{worker}/{}/{:08x}", std::process::id(), rand::random::<u32>());
        Ok(Self {
            connection,
            store,
            worker: worker.to_string(),
            owner,
            ttl,
            client: Mutex::new(Some(Arc::new(client))),
        })
    }

    /// This worker's leases, on the current connection (made again when it was lost).
    pub async fn leases(&self) -> Result<Leases, LeaseError> {
        let mut slot = self.client.lock().await;
        let client = match slot.as_ref() {
            Some(client) if !client.is_closed() => Arc::clone(client),
            _ => {
                *slot = None;
                let client =
                    Arc::new(self.connection.connect().await.map_err(LeaseError::Unreachable)?);
                *slot = Some(Arc::clone(&client));
                client
            }
        };
        Ok(Leases::new(client, self.owner.clone(), self.ttl).in_store(self.store.clone()))
    }

    /// Drops the connection, so that the next use makes a new one (after a failed statement,
    /// which may have left it unusable).
    pub async fn reset(&self) {
        *self.client.lock().await = None;
    }

    /// `user@host:port/database`.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The worker's label.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The owner its leases carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lasts without renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}
