//! The guide's authentication patterns with the Flightline client: a bearer token, an API
//! key, a tenant header, and a token provider that refreshes the token before each request.
//!
//! ```text
//! flightline serve --demo-rows 10000 --token s3cret &
//! cargo run -p flightline-examples --example auth_headers -- --uri grpc://127.0.0.1:PORT --token s3cret
//! ```
//!
//! Every pattern runs the same small query; the run fails if any of them is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::util::pretty::pretty_format_batches;
use clap::Parser;
use flightline_core::client::{ClientBuilder, FlightSqlClient, TokenProvider};
use flightline_core::{Result, TimeRange};
use flightline_examples::ServerArgs;
use futures::future::BoxFuture;

/// Connection options, defaulting to the same environment variables as `flightline`.
#[derive(Debug, Parser)]
struct Args {
    /// Server and the token it accepts (used as a bearer token and as an API key below).
    #[command(flatten)]
    server: ServerArgs,
    /// Tenant sent as `x-tenant-id` (the Flightline server ignores it; a gateway would route on it).
    #[arg(long, default_value = "production")]
    tenant: String,
}

const SQL: &str =
    "SELECT level, count(*) AS entries FROM log_entries GROUP BY level ORDER BY level";

/// A provider in the manner of Micromegas's `auth_provider`: asked before every request, so
/// it can return a fresh token when the old one expires. This one counts how often it is
/// asked; a real one would call an OAuth token endpoint or read a rotated file (see
/// `flightline_core::client::FileToken` and `EnvToken` for ready-made ones).
struct RefreshingToken {
    token: String,
    requests: AtomicUsize,
}

impl TokenProvider for RefreshingToken {
    fn token(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::Relaxed);
            Ok(self.token.clone())
        })
    }
}

async fn run_pattern(name: &str, builder: ClientBuilder) -> Result<()> {
    // `Debug` never shows secret header values.
    println!("== {name}\n   {builder:?}");
    let client = builder.connect().await?;
    let range = TimeRange::parse_relative("7d")?;
    let batches = client.query(SQL, Some(range)).await?;
    match pretty_format_batches(&batches) {
        Ok(table) => println!("{table}"),
        Err(err) => println!("   ({err})"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let ServerArgs { uri, token } = &args.server;
    // 1. Bearer token, exactly as the guide writes the header.
    run_pattern(
        "bearer token",
        FlightSqlClient::builder(uri).header("authorization", format!("Bearer {token}")),
    )
    .await?;

    // 2. API key header.
    run_pattern("API key", FlightSqlClient::builder(uri).api_key(token)).await?;

    // 3. Bearer token plus a tenant header: any header name travels with every request.
    run_pattern(
        "tenant header",
        FlightSqlClient::builder(uri).bearer_token(token).header("x-tenant-id", &args.tenant),
    )
    .await?;

    // 4. A token provider, asked before each request.
    let provider =
        Arc::new(RefreshingToken { token: token.clone(), requests: AtomicUsize::new(0) });
    run_pattern("token provider", FlightSqlClient::builder(uri).token_provider(provider.clone()))
        .await?;
    println!(
        "   the provider was asked {} times (once per gRPC request)",
        provider.requests.load(Ordering::Relaxed)
    );

    // 5. Everything from the environment, as every flightline command does.
    if std::env::var_os("FLIGHTLINE_URI").is_some() {
        run_pattern("from the environment", ClientBuilder::from_env()).await?;
    } else {
        println!("== from the environment: set FLIGHTLINE_URI (and FLIGHTLINE_TOKEN) to try it");
    }
    Ok(())
}
