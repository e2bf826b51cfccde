//! `flightline schema`: the result schema of a query and its estimated row size, from the
//! server's prepared statement, without running the query.

use super::print_stdout;
use std::process::ExitCode;

use flightline_core::schema::{SchemaAnalysis, SizeOptions};

use crate::RunnerError;
use crate::connect::ConnectArgs;

/// Arguments of `flightline schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The query to analyse; it is prepared, never executed.
    pub sql: String,
    /// Server connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Size assumptions for variable-width columns.
    #[command(flatten)]
    pub size: SizeArgs,
    /// Print the analysis as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The assumptions behind the size estimates (see `flightline_core::schema`).
#[derive(Debug, Clone, clap::Args)]
pub struct SizeArgs {
    /// Average bytes of a string value.
    #[arg(long, value_name = "BYTES", default_value_t = SizeOptions::default().string_bytes)]
    pub string_bytes: usize,
    /// Average bytes of a binary value.
    #[arg(long, value_name = "BYTES", default_value_t = SizeOptions::default().binary_bytes)]
    pub binary_bytes: usize,
    /// Average number of elements of a list or map.
    #[arg(long, value_name = "N", default_value_t = SizeOptions::default().list_length)]
    pub list_length: usize,
}

impl SizeArgs {
    /// The options these flags describe.
    pub fn options(&self) -> SizeOptions {
        SizeOptions {
            string_bytes: self.string_bytes,
            binary_bytes: self.binary_bytes,
            list_length: self.list_length,
        }
    }
}

/// Runs the command: prints the analysis table (or JSON); exit status 0.
pub async fn run(args: SchemaArgs) -> Result<ExitCode, RunnerError> {
    let client = args.connect.connect().await?;
    let prepared = client.prepare(&args.sql).await?;
    let analysis = SchemaAnalysis::from_prepared(&prepared, &args.size.options());
    let text = if args.json {
        serde_json::to_string_pretty(&analysis).map_err(|e| RunnerError::Io {
            path: "stdout".into(),
            source: std::io::Error::other(e),
        })?
    } else {
        analysis.to_string()
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
