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
    /// Accept this bearer token / API key; repeat the flag for more (a value is never split at
    /// commas, which may be part of a token). FLIGHTLINE_SERVE_TOKENS holds one token per
    /// line. With none, auth is off.
    #[arg(
        long = "token", value_name = "TOKEN", value_parser = parse_token,
        env = "FLIGHTLINE_SERVE_TOKENS",
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Accept this user, as NAME:PASSWORD (repeat the flag for more; the password may hold
    /// `:` and `,`): the Flight handshake with HTTP Basic credentials issues a session token
    /// (what the ADBC driver's `username` / `password` options and `flightline --user` do).
    /// Prefer FLIGHTLINE_SERVE_USERS, one NAME:PASSWORD per line, to keep passwords out of the
    /// process list.
    #[arg(
        long = "user",
        value_name = "NAME:PASSWORD",
        env = "FLIGHTLINE_SERVE_USERS",
        hide_env_values = true
    )]
    pub users: Vec<String>,
    /// Seconds a session token issued by the handshake stays valid; clients then handshake
    /// again.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl: u64,
    /// Accept OIDC access tokens of this issuer (`authorization: Bearer <JWT>`): the signature is
    /// checked against the keys the issuer publishes (its JWKS, found by OIDC discovery and
    /// fetched again when a token names a new key), and so are `exp`, `iss` and --audience.
    /// The token's `sub` is the user. Static tokens and users keep working beside it.
    #[arg(long, value_name = "URL", requires = "audience")]
    pub oidc_issuer: Option<String>,
    /// The audience (`aud`) an OIDC token must be for (with --oidc-issuer).
    #[arg(long, value_name = "AUD", requires = "oidc_issuer")]
    pub audience: Option<String>,
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
    /// Queries one user (or static token; or client address when auth is off) may plan or run
    /// at once; more wait up to --queue-timeout, then get "server busy" naming this flag.
    /// Default: a quarter of --max-concurrent-queries, at least 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queries_per_user: Option<u64>,
    /// Seconds a result may wait on a client that stopped reading it; the query is then
    /// cancelled and its slot freed. 0: wait (until --query-timeout).
    #[arg(long, default_value_t = limits::DEFAULT_SEND_STALL_TIMEOUT.as_secs(), value_name = "SECS")]
    pub send_stall_timeout: u64,
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
            .field(
                "users",
                &entries(&self.users).map(|u| user_name(u).unwrap_or("?")).collect::<Vec<_>>(),
            )
            .field("session_ttl", &self.session_ttl)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("audience", &self.audience)
            .field("tables", &self.tables)
            .field("tls_cert", &self.tls_cert)
            .field("in_memory", &self.in_memory)
            .field("memory_limit", &self.memory_limit)
            .field("query_timeout", &self.query_timeout)
            .field("max_concurrent_queries", &self.max_concurrent_queries)
            .field("max_queries_per_user", &self.max_queries_per_user)
            .field("send_stall_timeout", &self.send_stall_timeout)
            .field("queue_timeout", &self.queue_timeout)
            .field("max_sql_bytes", &self.max_sql_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// The entries of a list of secrets: one per flag, and one per line of a value (how the
/// environment variables hold several); blank lines are skipped. Never split at commas: a
/// comma may be part of a password or a token, and splitting there would both break it and
/// turn its pieces into entries of their own.
fn entries(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().flat_map(|v| v.lines()).filter(|line| !line.trim().is_empty())
}

/// The part of a `--user` value that is not a secret: the name before the first `:`. A value
/// with no `:` has no name, and may be nothing but a password: none of it is shown.
fn user_name(spec: &str) -> Option<&str> {
    spec.split_once(':').map(|(name, _)| name.trim()).filter(|name| !name.is_empty())
}

/// Parsed here rather than by clap, whose errors would echo the value, password included.
/// `position` (from 1) names a value that has no name to show.
fn parse_user(position: usize, spec: &str) -> Result<(String, String), RunnerError> {
    flightline_server::session::parse_user(spec).map_err(|why| {
        let which = user_name(spec).map_or_else(|| format!("#{position}"), |n| format!("{n:?}"));
        RunnerError::Server(flightline_server::ServerError::User(format!(
            "{which} in --user / FLIGHTLINE_SERVE_USERS: {why} (one NAME:PASSWORD per --user \
             flag, or per line of FLIGHTLINE_SERVE_USERS)"
        )))
    })
}

fn parse_table(s: &str) -> Result<UserTable, String> {
    s.parse()
}

/// A blank token would be no protection at all: refuse it rather than serve without auth.
fn parse_token(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("a token must not be empty (check --token and FLIGHTLINE_SERVE_TOKENS)".into()),
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
            .send_stall_timeout(
                (self.send_stall_timeout > 0).then(|| Duration::from_secs(self.send_stall_timeout)),
            )
            .max_sql_bytes(self.max_sql_bytes)
            .max_value_bytes(self.max_value_bytes)
            .shutdown_grace(Duration::from_secs(self.shutdown_grace));
        if let Some(end) = self.demo_end {
            b = b.demo_end(end);
        }
        if let Some(n) = self.max_queries_per_user {
            b = b.max_queries_per_user(usize::try_from(n).unwrap_or(usize::MAX));
        }
        for token in entries(&self.tokens) {
            b = b.token(token.trim());
        }
        for (name, password) in self.user_list()? {
            b = b.user(name, password);
        }
        b = b.session_ttl(std::time::Duration::from_secs(self.session_ttl));
        if let (Some(issuer), Some(audience)) = (&self.oidc_issuer, &self.audience) {
            b = b.oidc(issuer, audience);
        }
        for t in &self.tables {
            b = b.user_table(t.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            b = b.tls(read(cert)?, read(key)?);
        }
        Ok(b)
    }
}

impl ServeArgs {
    /// The users of `--user` / FLIGHTLINE_SERVE_USERS as (name, password).
    fn user_list(&self) -> Result<Vec<(String, String)>, RunnerError> {
        entries(&self.users).enumerate().map(|(i, spec)| parse_user(i + 1, spec)).collect()
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap().serve
    }

    fn redacted_tokens(args: &ServeArgs) -> String {
        let shown = format!("{:?}", args.builder().unwrap());
        let at = shown.find("tokens: [").unwrap();
        shown[at..].split(']').next().unwrap().to_string()
    }

    #[test]
    fn a_comma_in_a_token_or_a_password_is_part_of_it() {
        let args = parse(&["--token", "abc,def", "--user", "alice:pa,ss", "--user", "bob:x:y,z"]);
        assert_eq!(redacted_tokens(&args), "tokens: [1 redacted");
        let users = args.user_list().unwrap();
        assert_eq!(users, [("alice".into(), "pa,ss".into()), ("bob".into(), "x:y,z".into())]);
    }

    #[test]
    fn the_environment_lists_one_secret_per_line() {
        // What clap hands over from FLIGHTLINE_SERVE_TOKENS / FLIGHTLINE_SERVE_USERS: the
        // variable's whole value as one string.
        let mut args = parse(&[]);
        args.tokens = vec!["abc,def\r\n\n  ghi  \n".into()];
        args.users = vec!["alice:pa,ss\n\nbob:b, c\r\n".into()];
        assert_eq!(redacted_tokens(&args), "tokens: [2 redacted");
        let users = args.user_list().unwrap();
        assert_eq!(users, [("alice".into(), "pa,ss".into()), ("bob".into(), "b, c".into())]);
    }

    #[test]
    fn a_bad_user_value_is_refused_without_echoing_any_part_of_its_secret() {
        for (value, shown) in [
            ("s3cr3t,pw", "#1"),
            (":s3cr3t,pw", "#1"),
            ("carol:", "\"carol\""),
            ("  :s3cr3t", "#1"),
        ] {
            let err = parse(&["--user", value]).user_list().unwrap_err().to_string();
            assert!(err.contains(shown) && err.contains("NAME:PASSWORD"), "{value}: {err}");
            assert!(!err.contains("s3cr3t") && !err.contains("pw"), "{value}: {err}");
        }
        let mut args = parse(&[]);
        args.users = vec!["alice:ok\nno-colon-s3cr3t".into()];
        let err = args.user_list().unwrap_err().to_string();
        assert!(err.contains("#2") && !err.contains("s3cr3t"), "{err}");
        let shown = format!("{args:?}");
        assert!(shown.contains("[\"alice\", \"?\"]") && !shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn fairness_flags_reach_the_server_limits() {
        let args = parse(&["--max-queries-per-user", "3", "--send-stall-timeout", "0"]);
        let shown = format!("{:?}", args.builder().unwrap());
        assert!(shown.contains("max_per_caller: Some(3)"), "{shown}");
        assert!(shown.contains("send_stall_timeout: None"), "{shown}");
        let shown = format!("{:?}", parse(&[]).builder().unwrap());
        assert!(shown.contains("max_per_caller: None, send_stall_timeout: Some(30s)"), "{shown}");
    }
}
