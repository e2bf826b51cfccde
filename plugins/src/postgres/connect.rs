//! Connecting to PostgreSQL: a URL without a password, the password from an environment
//! variable or a file (as libpq's `PGPASSWORD` and password files keep it out of
//! configuration), TLS from the URL's `sslmode` / `sslrootcert` ([`super::tls`]), and errors
//! that name the server but never the password.

use std::path::PathBuf;
use std::time::Duration;

use flightline_core::error::with_causes;
use serde::Deserialize;
use tokio_postgres::{Client, Config};

use super::tls::Tls;

/// Where a PostgreSQL connection goes and where its password comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgConnection {
    /// `postgres://user@host:port/database` (or libpq's `key=value` form), without a password.
    pub url: String,
    /// Environment variable holding the password (default `PGPASSWORD`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (one trailing newline ignored); wins over `password_env`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the connection (default 10).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
}

impl PgConnection {
    /// Checks the URL: it parses, holds no password, and its TLS settings are usable.
    pub fn config(&self) -> Result<Config, String> {
        let (url, tls) = Tls::split(&self.url).map_err(|e| format!("`url`: {e}"))?;
        let mut config: Config = url.parse().map_err(|e| {
            format!("`url` is not a PostgreSQL URL ({e}); write postgres://user@host:port/database")
        })?;
        config.ssl_mode(tls.pg_mode());
        if config.get_password().is_some() {
            return Err("`url` holds a password; keep it out of the configuration: put it in \
                        the environment variable named by `password_env` (default PGPASSWORD) \
                        or in the file named by `password_file`"
                .into());
        }
        if config.get_user().is_none() {
            return Err("`url` names no user; write postgres://user@host:port/database".into());
        }
        Ok(config)
    }

    /// `user@host:port/database`: what errors and logs name, never the password.
    pub fn describe(&self) -> String {
        let parsed = Tls::split(&self.url).ok().and_then(|(url, _)| url.parse::<Config>().ok());
        let Some(config) = parsed else {
            return "an unparsable PostgreSQL URL".into();
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{host}:{port}/{}",
            config.get_user().unwrap_or("?"),
            config.get_dbname().unwrap_or_else(|| config.get_user().unwrap_or("?"))
        )
    }

    fn password(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `password_file` {}: {e}", path.display()))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            return Ok(Some(text.strip_suffix('\r').unwrap_or(text).to_string()));
        }
        let var = self.password_env.as_deref().unwrap_or("PGPASSWORD");
        Ok(std::env::var(var).ok())
    }

    /// Connects; the connection is driven by a task of the current runtime until the client
    /// is dropped.
    pub async fn connect(&self) -> Result<Client, String> {
        let mut config = self.config()?;
        if let Some(password) = self.password()? {
            config.password(password);
        }
        let timeout = Duration::from_secs(self.connect_timeout_secs.unwrap_or(10));
        config.connect_timeout(timeout);
        let (_, tls) = Tls::split(&self.url)?;
        let connecting = config.connect(tls.connector()?);
        let (client, connection) =
            tokio::time::timeout(timeout + Duration::from_secs(1), connecting)
                .await
                .map_err(|_| {
                    format!("no answer from PostgreSQL at {} within {timeout:?}", self.describe())
                })?
                .map_err(|e| self.failure("cannot connect to", &e))?;
        let target = self.describe();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(postgres = %target, "PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// `error` in the user's terms: what was being done, where, and what PostgreSQL said.
    pub fn failure(&self, doing: &str, error: &tokio_postgres::Error) -> String {
        let said = match error.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => with_causes(error.to_string(), std::error::Error::source(error)),
        };
        let hint = match error.as_db_error().map(|db| db.code().code()) {
            Some("28P01") | Some("28000") => {
                "; check the user and the password (password_env / password_file)"
            }
            Some("3D000") => "; create the database or fix the URL",
            _ => "",
        };
        format!("{doing} PostgreSQL at {}: {said}{hint}", self.describe())
    }
}
