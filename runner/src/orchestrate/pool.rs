//! The client pool: one connected client per server, shared by the jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use flightline_core::FlightSqlClient;
use tokio::sync::OnceCell;

use crate::RunnerError;
use crate::config::ServerConfig;
use crate::live::LiveStatus;

/// One client per server, connected on first use and kept (tonic reconnects by itself).
///
/// Each server has its own cell and no lock spans a connect: jobs on one server share a single
/// connect attempt (the others wait for it), while a server that does not answer delays only
/// its own jobs.
pub(super) struct Clients {
    servers: BTreeMap<String, (ServerConfig, OnceCell<FlightSqlClient>)>,
    /// Told when a server is reached, for `/readyz`.
    live: Arc<LiveStatus>,
}

impl Clients {
    pub(super) fn new(servers: BTreeMap<String, ServerConfig>, live: Arc<LiveStatus>) -> Self {
        let servers =
            servers.into_iter().map(|(name, config)| (name, (config, OnceCell::new()))).collect();
        Self { servers, live }
    }

    pub(super) async fn get(&self, name: &str) -> Result<FlightSqlClient, RunnerError> {
        let Some((server, cell)) = self.servers.get(name) else {
            return Err(flightline_core::Error::Config(format!("no server named {name:?}")).into());
        };
        // A failed connect leaves the cell empty: the next caller tries again.
        let client = cell.get_or_try_init(|| server.settings.connect()).await.cloned()?;
        self.live.server_reached(name);
        Ok(client)
    }
}
