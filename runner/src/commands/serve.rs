//! `flightline serve`: the embedded Flight SQL server with demo telemetry.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_server::launch::{DEFAULT_SHUTDOWN_GRACE, Stopped};
use flightline_server::{ServerBuilder, UserTable, limits};

use crate::RunnerError;
use crate::shutdown::{EXIT_CUT, Signals};

/// Arguments of `flightline serve`.
#[derive(clap::Args)]
#[command(after_help = "Stopping: on Ctrl-C or SIGTERM the server stops accepting, queries in \
flight get --shutdown-grace, then they are cancelled; the process exits at most 10 s after the \
grace whatever they do. A second signal exits at once.\n\n\
Exit status: 0 stopped with every query finished; 2 an error; 4 a signal cut queries in flight.")]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Rows in the demo tables `log_entries` and `measures` each (0: no demo tables).
    #[arg(long, default_value_t = 100_000)]
    pub demo_rows: u64,
    /// Seed of the demo data generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// End of the demo data's 7-day window, RFC 3339 (default: now).
    #[arg(long)]
    pub demo_end: Option<DateTime<Utc>>,
    /// Accept this bearer token / API key; repeatable. With none, auth is off.
    #[arg(
        long = "token", value_parser = parse_token,
        env = "FLIGHTLINE_SERVE_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Accept this user, as NAME:PASSWORD (repeatable): the Flight handshake with HTTP Basic
    /// credentials issues a session token (what the ADBC driver's `username` / `password`
    /// options and `flightline --user` do). Prefer FLIGHTLINE_SERVE_USERS (comma-separated) to
    /// keep passwords out of the process list.
    #[arg(
        long = "user",
        value_name = "NAME:PASSWORD",
        env = "FLIGHTLINE_SERVE_USERS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub users: Vec<String>,
    /// Seconds a session token issued by the handshake stays valid; clients then handshake
    /// again.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl: u64,
    /// Serve a Parquet, CSV or NDJSON file as a table: `name=path`; repeatable.
    #[arg(long = "table", value_parser = parse_table)]
    pub tables: Vec<UserTable>,
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Read every --table into memory at start: faster scans, and the process holds each
    /// table's decoded size (outside --memory-limit).
    #[arg(long)]
    pub in_memory: bool,
    /// MiB of memory the running queries may hold together; past it, sorts and aggregations
    /// spill or fail with ResourceExhausted.
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub memory_limit: usize,
    /// Seconds a query may run before it is cancelled with an error naming this flag; 0: no limit.
    #[arg(long, default_value_t = limits::DEFAULT_QUERY_TIMEOUT.as_secs(), value_name = "SECS")]
    pub query_timeout: u64,
    /// Queries planned or run at once; more wait up to --queue-timeout, then get "server busy".
    #[arg(
        long, default_value_t = limits::DEFAULT_MAX_CONCURRENT_QUERIES as u64, value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_concurrent_queries: u64,
    /// Seconds a query waits for a free slot before "server busy, retry" (gRPC Unavailable).
    #[arg(long, default_value_t = limits::DEFAULT_QUEUE_TIMEOUT.as_secs(), value_name = "SECS")]
    pub queue_timeout: u64,
    /// Bytes of SQL one statement may hold; longer ones are refused before parsing.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_SQL_BYTES, value_name = "BYTES")]
    pub max_sql_bytes: usize,
    /// Bytes of the largest value (a string, a list) one function call may build; a call that
    /// would build more (`repeat`, `lpad`, `replace`, ...) is refused before it allocates.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_VALUE_BYTES, value_name = "BYTES")]
    pub max_value_bytes: usize,
    /// On Ctrl-C or SIGTERM, seconds in-flight queries get to finish before they are cancelled
    /// (exit status 4 then; a second signal exits at once, with 4).
    #[arg(long, default_value_t = DEFAULT_SHUTDOWN_GRACE.as_secs(), value_name = "SECS")]
    pub shutdown_grace: u64,
}

impl std::fmt::Debug for ServeArgs {
    // The tokens are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("demo_rows", &self.demo_rows)
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("users", &self.users.iter().map(|u| user_name(u)).collect::<Vec<_>>())
            .field("session_ttl", &self.session_ttl)
            .field("tables", &self.tables)
            .field("tls_cert", &self.tls_cert)
            .field("in_memory", &self.in_memory)
            .field("memory_limit", &self.memory_limit)
            .field("query_timeout", &self.query_timeout)
            .field("max_concurrent_queries", &self.max_concurrent_queries)
            .field("queue_timeout", &self.queue_timeout)
            .field("max_sql_bytes", &self.max_sql_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// The part of a `--user` value that is not a secret.
fn user_name(spec: &str) -> &str {
    spec.split(':').next().unwrap_or_default()
}

/// Parsed here rather than by clap, whose errors would echo the value, password included.
fn parse_user(spec: &str) -> Result<(String, String), RunnerError> {
    flightline_server::session::parse_user(spec).map_err(|why| {
        let name = user_name(spec);
        RunnerError::Server(flightline_server::ServerError::User(format!(
            "{name:?} in --user / FLIGHTLINE_SERVE_USERS: {why} (look for a stray comma)"
        )))
    })
}

fn parse_table(s: &str) -> Result<UserTable, String> {
    s.parse()
}

/// A blank token would be no protection at all: refuse it rather than serve without auth.
fn parse_token(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => {
            Err("a token must not be empty (check for a stray comma in FLIGHTLINE_SERVE_TOKENS)"
                .into())
        }
        t => Ok(t.to_string()),
    }
}

impl ServeArgs {
    /// The server these arguments describe.
    pub fn builder(&self) -> Result<ServerBuilder, RunnerError> {
        let mut b = ServerBuilder::new()
            .demo_rows(self.demo_rows)
            .seed(self.seed)
            .memory_limit(self.memory_limit.saturating_mul(1 << 20))
            .tables_in_memory(self.in_memory)
            .query_timeout(
                (self.query_timeout > 0).then(|| Duration::from_secs(self.query_timeout)),
            )
            .max_concurrent_queries(
                usize::try_from(self.max_concurrent_queries).unwrap_or(usize::MAX),
            )
            .queue_timeout(Duration::from_secs(self.queue_timeout))
            .max_sql_bytes(self.max_sql_bytes)
            .max_value_bytes(self.max_value_bytes)
            .shutdown_grace(Duration::from_secs(self.shutdown_grace));
        if let Some(end) = self.demo_end {
            b = b.demo_end(end);
        }
        for t in &self.tokens {
            b = b.token(t.clone());
        }
        for spec in &self.users {
            let (name, password) = parse_user(spec)?;
            b = b.user(name, password);
        }
        b = b.session_ttl(std::time::Duration::from_secs(self.session_ttl));
        for t in &self.tables {
            b = b.user_table(t.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            b = b.tls(read(cert)?, read(key)?);
        }
        Ok(b)
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, RunnerError> {
    std::fs::read(path)
        .map_err(|source| RunnerError::Io { path: path.display().to_string(), source })
}

/// Runs the server until Ctrl-C or SIGTERM. Exit status 0 when the queries in flight
/// finished within the grace, [`EXIT_CUT`] when some were cancelled (see
/// [`crate::shutdown`]).
pub async fn run(args: ServeArgs) -> Result<ExitCode, RunnerError> {
    let signals = Signals::watch(Duration::from_secs(args.shutdown_grace))?;
    let mut server = args.builder()?.spawn(args.listen).await?;
    // Scripts and tests read this line to learn the port.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "flightline: listening on {}", server.uri());
    let _ = out.flush();
    tokio::select! {
        () = signals.first() => {}
        // The server only ends by itself on an error: report it instead of idling.
        ended = server.wait() => {
            ended?;
            return Ok(ExitCode::FAILURE);
        }
    }
    match server.shutdown().await? {
        Stopped::Drained => Ok(ExitCode::SUCCESS),
        Stopped::Cut => {
            eprintln!("flightline: queries still running after the grace were cancelled");
            Ok(ExitCode::from(EXIT_CUT))
        }
    }
}
