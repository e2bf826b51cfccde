//! The whole check of one query: the local rules, then the server's result schema, then the
//! schema rules. `flightline validate` and the `validate_query` example both run it.

use super::context::ValidationContext;
use super::finding::{Finding, Severity};
use super::pipeline::{ValidationPipeline, ValidationReport};
use crate::client::{ClientBuilder, FlightSqlClient};
use crate::error::{Error, Result};
use crate::schema::{SchemaAnalysis, SizeOptions};

/// The code of the finding made when the server refuses to prepare the query.
pub const SERVER_REJECTED: &str = "server_rejected";

/// Where [`validate_query`] learns the query's result schema.
// Built once per validation and moved into it: boxing the builder would only cost callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SchemaSource {
    /// Nowhere: only the rules that read the SQL text run.
    Offline,
    /// The server of this client.
    Client(FlightSqlClient),
    /// The server this builder connects to, connected only when the local rules let the
    /// query through.
    Connect(ClientBuilder),
}

/// Runs `pipeline` on the query of `ctx`: first on the SQL text; then, unless the text is
/// already refused or `source` is [`SchemaSource::Offline`], again with the result schema the
/// server reports for the prepared (never executed) query.
///
/// A query the server refuses to prepare (`InvalidQuery`) gets a `Deny` finding
/// [`SERVER_REJECTED`] (subject to the pipeline's overrides). Every other failure to ask the
/// server (unreachable, TLS, credentials refused, internal error) is returned as the error:
/// validation fails closed rather than pass a query nobody could check.
pub async fn validate_query(
    pipeline: &ValidationPipeline,
    ctx: ValidationContext,
    source: SchemaSource,
    size: &SizeOptions,
) -> Result<ValidationReport> {
    let local = pipeline.run(&ctx).await;
    // A refused text never reaches the server: preparing DDL can run it.
    if local.is_denied() {
        return Ok(local);
    }
    let client = match source {
        SchemaSource::Offline => return Ok(local),
        SchemaSource::Client(client) => client,
        SchemaSource::Connect(builder) => builder.connect().await?,
    };
    match client.prepare(ctx.sql()).await {
        Ok(prepared) => {
            let analysis = SchemaAnalysis::from_prepared(&prepared, size);
            Ok(pipeline.run(&ctx.with_schema(analysis)).await)
        }
        Err(Error::InvalidQuery { message }) => {
            let mut report = local;
            report.findings.extend(pipeline.adjust(Finding::new(
                Severity::Deny,
                SERVER_REJECTED,
                format!("the server refused the query: {message}"),
                "fix the query: check table and column names and the functions used",
            )));
            Ok(report)
        }
        Err(err) => Err(err),
    }
}
