//! The row estimate: `SELECT COUNT(*) FROM (sql)` over the same time range, run beside the
//! stream so that it never delays the first batch.

use std::time::Duration;

use arrow::array::{Array, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::{FlightSqlClient, QueryOptions};
use crate::error::{Error, Result};
use crate::process::RowEstimate;
use crate::time::TimeRange;

/// The counting query for `sql`: a trailing `;` would end the subquery early, so it goes.
pub(crate) fn count_sql(sql: &str) -> String {
    let inner = sql.trim().trim_end_matches(';').trim_end();
    // The newline ends a trailing `-- comment` before the closing parenthesis.
    format!("SELECT COUNT(*) AS flightline_rows FROM ({inner}\n) AS flightline_estimate")
}

/// Starts the estimate on its own task; the receiver yields it when it arrives. Failures and
/// timeouts are logged as warnings and yield nothing: the estimate stays unknown.
pub(crate) fn spawn(
    client: FlightSqlClient,
    sql: &str,
    range: Option<TimeRange>,
    options: QueryOptions,
    timeout: Duration,
) -> (JoinHandle<()>, oneshot::Receiver<RowEstimate>) {
    let (tx, rx) = oneshot::channel();
    let count = count_sql(sql);
    let task = tokio::spawn(async move {
        match tokio::time::timeout(timeout, fetch(&client, &count, range, &options)).await {
            Ok(Ok(rows)) => {
                let capped = options.limit.map_or(rows, |limit| rows.min(limit));
                let _ = tx.send(RowEstimate::Exact(capped));
            }
            Ok(Err(err)) => {
                tracing::warn!(
                    "row estimate failed, progress will show rows without a percentage: {err}"
                )
            }
            Err(_) => tracing::warn!(
                "row estimate did not arrive within {timeout:?}, progress will show rows without a percentage"
            ),
        }
    });
    (task, rx)
}

async fn fetch(
    client: &FlightSqlClient,
    count: &str,
    range: Option<TimeRange>,
    options: &QueryOptions,
) -> Result<u64> {
    // The count is one row: a row cap must not apply to it, only to the estimate afterwards.
    // Its own request id, named after the query's, so the audit log tells the two apart.
    let request_id = options.request_id.as_ref().map(|id| format!("{id}.estimate"));
    let request_id = request_id.filter(|id| crate::request_id::is_well_formed(id));
    let options = QueryOptions { limit: None, request_id, ..options.clone() };
    let batches = client.query_with(count, range, &options).await?;
    let column = batches
        .iter()
        .find(|b| b.num_rows() > 0 && b.num_columns() > 0)
        .map(|b| b.column(0).clone())
        .ok_or_else(|| Error::Protocol(format!("`{count}` returned no row")))?;
    let counts = cast(&column, &DataType::UInt64)
        .map_err(|err| Error::Protocol(format!("`{count}` returned a non-integer count: {err}")))?;
    let counts = counts
        .as_any()
        .downcast_ref::<UInt64Array>()
        .filter(|c| c.is_valid(0))
        .ok_or_else(|| Error::Protocol(format!("`{count}` returned a NULL count")))?;
    Ok(counts.value(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_sql_wraps_and_drops_trailing_semicolons() {
        assert_eq!(
            count_sql(" SELECT * FROM t WHERE level <= 2 ;\n"),
            "SELECT COUNT(*) AS flightline_rows FROM (SELECT * FROM t WHERE level <= 2\n) AS flightline_estimate"
        );
    }
}
