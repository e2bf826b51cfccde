//! The guide's query validation before execution, done on the parsed SQL instead of
//! substrings: the built-in validators, plus a validator of our own, run on the query and on
//! its result schema (from `prepare`, without executing it). The guide's
//! `'ORDER BY' in sql.upper()` would flag the window function below; these rules do not.
//!
//! ```text
//! flightline serve --demo-rows 10000 &
//! cargo run -p flightline-examples --example validate_query -- --uri grpc://127.0.0.1:50051
//! cargo run -p flightline-examples --example validate_query -- --token s3cret --last 1h "SELECT * FROM measures"
//! ```
//!
//! `--uri` and `--token` default to `FLIGHTLINE_URI` and `FLIGHTLINE_TOKEN`.
//! Exit status 1 when the query would be refused, 2 when the server could not be asked.

use std::process::ExitCode;

use arrow::datatypes::DataType;
use clap::Parser;
use flightline_core::TimeRange;
use flightline_core::schema::SizeOptions;
use flightline_core::validate::{
    Finding, Policy, QueryValidator, SchemaSource, Severity, ValidationContext, async_trait,
    validate_query,
};
use flightline_examples::ServerArgs;
use flightline_plugins::builtin_pipeline;

const DEFAULT_SQL: &str = "SELECT time, msg, row_number() OVER (ORDER BY time) AS n \
                           FROM log_entries ORDER BY time DESC";

#[derive(Debug, Parser)]
struct Args {
    /// Server and token.
    #[command(flatten)]
    server: ServerArgs,
    /// The time range the query would run with: 15m, 2h, 7d.
    #[arg(long)]
    last: Option<String>,
    /// The query to check.
    #[arg(default_value = DEFAULT_SQL)]
    sql: String,
}

/// A team rule the built-ins do not have: nested columns (lists, structs, maps) are costly to
/// flatten downstream, so say which ones the result carries.
struct NestedColumns;

#[async_trait]
impl QueryValidator for NestedColumns {
    fn name(&self) -> &str {
        "nested-columns"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Some(schema) = ctx.schema() else { return Vec::new() };
        let nested: Vec<&str> = schema
            .columns
            .iter()
            .filter(|c| {
                matches!(
                    c.data_type,
                    DataType::List(_)
                        | DataType::LargeList(_)
                        | DataType::Struct(_)
                        | DataType::Map(_, _)
                )
            })
            .map(|c| c.name.as_str())
            .collect();
        if nested.is_empty() {
            return Vec::new();
        }
        vec![Finding::new(
            Severity::Info,
            "nested_columns",
            format!("the result has nested columns: {}", nested.join(", ")),
            "select the nested fields you need, or unnest them in SQL",
        )]
    }
}

async fn run(args: Args) -> flightline_core::Result<bool> {
    let mut ctx = ValidationContext::new(args.sql.as_str());
    if let Some(span) = &args.last {
        ctx.set_time_range(Some(TimeRange::parse_relative(span)?));
    }
    let pipeline = builtin_pipeline(Policy::Deny).with_validator(NestedColumns);

    // The SQL text is checked first: a write never reaches the server, not even to be
    // prepared. A server that cannot be asked is an error, not a pass.
    let source = SchemaSource::Connect(args.server.builder());
    let report = validate_query(&pipeline, ctx, source, &SizeOptions::default()).await?;

    println!("Validating: {}\n", args.sql);
    if report.findings.is_empty() {
        println!("✔ no issues found");
    }
    for finding in &report.findings {
        println!(
            "{} {} [{}] {}",
            finding.severity.icon(),
            finding.severity,
            finding.code,
            finding.message
        );
        println!("   💡 {}", finding.recommendation);
    }
    let denied = report.is_denied();
    println!("\n{}", if denied { "refused: fix the deny findings" } else { "may run" });
    Ok(!denied)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
