//! The demo tables as a DataFusion [`TableProvider`] that prunes chunks by time.

use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;

use super::generator::{CHUNK_ROWS, Kind, Shared, make_chunk};

/// Partitions per table: lets DataFusion scan with both cores.
const PARTITIONS: u64 = 4;

/// A lazily generated demo table. Times grow with the row index, so a filter on `time` turns
/// into a range of rows and only the chunks that can match are generated (as Micromegas prunes
/// partitions by time): "the last hour" of a week of data costs an hour's worth of work.
#[derive(Debug)]
pub(super) struct DemoTable {
    shared: Arc<Shared>,
    kind: Kind,
    schema: SchemaRef,
}

impl DemoTable {
    pub(super) fn new(shared: Arc<Shared>, kind: Kind, schema: SchemaRef) -> Self {
        Self { shared, kind, schema }
    }
}

#[async_trait::async_trait]
impl TableProvider for DemoTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: DataFusion still applies the filter; we only skip chunks that cannot match.
        Ok(filters
            .iter()
            .map(|f| match time_bounds(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = filters
            .iter()
            .filter_map(time_bounds)
            .fold((i64::MIN, i64::MAX), |(lo, hi), (l, h)| (lo.max(l), hi.min(h)));
        let rows = self.shared.rows_between(lo, hi);
        let partitions = (0..PARTITIONS)
            .map(|partition| {
                Arc::new(DemoPartition {
                    shared: self.shared.clone(),
                    kind: self.kind,
                    schema: self.schema.clone(),
                    rows: rows.clone(),
                    partition,
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let table = StreamingTable::try_new(self.schema.clone(), partitions)?;
        table.scan(state, projection, &[], limit).await
    }
}

/// `[lo, hi]` in nanoseconds that a conjunct like `time >= t`, `t > time` or
/// `time BETWEEN a AND b` allows; `None` for anything else.
fn time_bounds(expr: &Expr) -> Option<(i64, i64)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (t, op) = match (is_time(left), is_time(right)) {
                (true, false) => (timestamp_ns(right)?, *op),
                (false, true) => (timestamp_ns(left)?, op.swap()?),
                _ => return None,
            };
            match op {
                Operator::Gt | Operator::GtEq => Some((t, i64::MAX)),
                Operator::Lt | Operator::LtEq => Some((i64::MIN, t)),
                Operator::Eq => Some((t, t)),
                _ => None,
            }
        }
        Expr::Between(b) if !b.negated && is_time(&b.expr) => {
            Some((timestamp_ns(&b.low)?, timestamp_ns(&b.high)?))
        }
        _ => None,
    }
}

fn is_time(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == "time")
}

fn timestamp_ns(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// Every `PARTITIONS`-th chunk that overlaps `rows`, starting at chunk `partition`.
#[derive(Debug)]
struct DemoPartition {
    shared: Arc<Shared>,
    kind: Kind,
    schema: SchemaRef,
    rows: Range<u64>,
    partition: u64,
}

impl PartitionStream for DemoPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let shared = self.shared.clone();
        let kind = self.kind;
        let (first, end) = (self.rows.start / CHUNK_ROWS, self.rows.end.div_ceil(CHUNK_ROWS));
        let chunks = (first + self.partition..end).step_by(PARTITIONS as usize);
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            make_chunk(&shared, kind, chunk)
                .map_err(|e| datafusion::error::DataFusionError::ArrowError(Box::new(e), None))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_read_comparisons_and_between() {
        use datafusion::logical_expr::{col, lit};
        let ts = |v: i64| lit(ScalarValue::TimestampNanosecond(Some(v), Some("+00:00".into())));
        assert_eq!(time_bounds(&col("time").gt_eq(ts(5))), Some((5, i64::MAX)));
        assert_eq!(time_bounds(&ts(9).gt(col("time"))), Some((i64::MIN, 9)));
        assert_eq!(time_bounds(&col("time").between(ts(1), ts(2))), Some((1, 2)));
        assert_eq!(time_bounds(&col("level").gt_eq(lit(3))), None);
        assert_eq!(time_bounds(&col("time").not_eq(ts(3))), None);
    }
}
