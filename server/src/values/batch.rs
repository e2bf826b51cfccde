//! Values whose size for a whole batch is known at planning: constants copied into every row,
//! and casts to a type whose every value has a fixed width.
//!
//! The planner folds `repeat('x', 60000000)` into one 60 MB constant (the capped function
//! checked it once, for one row); selecting it from a table then copies it into every row of
//! each batch, 8192 rows by default: 491 GB asked of the allocator at once. Likewise a cast to
//! `FixedSizeBinary(2000000000)` (what `arrow_cast` becomes once simplified) allocates its width
//! for every row, nulls included: 16 TB for one batch, and the process aborts. This rule
//! refuses both at planning, in every plan node.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Cast, EmptyRelation, Expr, LogicalPlan, TryCast};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::ValueCap;
use super::growth::fixed_width;

/// Refuses plans whose values would pass the cap for one batch.
#[derive(Debug)]
pub struct BatchCheck {
    cap: ValueCap,
}

impl BatchCheck {
    /// A check against `cap`.
    pub fn new(cap: ValueCap) -> Self {
        Self { cap }
    }

    /// A constant selected from a table is copied into every row.
    fn check_constants(&self, projection: &[Expr], batch_rows: usize) -> Result<()> {
        let limit = self.cap.max_call_bytes / batch_rows.max(1);
        for expr in projection {
            expr.apply(|e| match e {
                Expr::Literal(value, _) if bytes(value) > limit => {
                    Err(constant_too_large(bytes(value), batch_rows, self.cap.max_call_bytes))
                }
                _ => Ok(TreeNodeRecursion::Continue),
            })?;
        }
        Ok(())
    }

    /// A fixed-width type holds its width in every row, whatever the value.
    fn check_casts(&self, plan: &LogicalPlan, batch_rows: usize) -> Result<()> {
        plan.apply_expressions(|expr| {
            expr.apply(|e| match e {
                Expr::Cast(Cast { field, .. }) | Expr::TryCast(TryCast { field, .. }) => {
                    self.check_width(field.data_type(), batch_rows)?;
                    Ok(TreeNodeRecursion::Continue)
                }
                _ => Ok(TreeNodeRecursion::Continue),
            })
        })?;
        Ok(())
    }

    fn check_width(&self, data_type: &DataType, batch_rows: usize) -> Result<()> {
        let width = fixed_width(data_type);
        let batch = width.saturating_mul(batch_rows as u128);
        if width > self.cap.max_value_bytes as u128 || batch > self.cap.max_call_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "a cast to {data_type} holds {width} bytes in every row, {batch} bytes for a \
                 batch of {batch_rows} rows; this server allows at most {} bytes per value \
                 (--max-value-bytes) and {} bytes for all queries together (--memory-limit): \
                 cast to a narrower type",
                self.cap.max_value_bytes, self.cap.max_call_bytes
            )));
        }
        Ok(())
    }
}

impl OptimizerRule for BatchCheck {
    fn name(&self) -> &str {
        "flightline_batch_check"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let batch_rows = config.options().execution.batch_size.get();
        if let LogicalPlan::Projection(p) = &plan
            && !one_row(&p.input)
        {
            self.check_constants(&p.expr, batch_rows)?;
        }
        self.check_casts(&plan, batch_rows)?;
        Ok(Transformed::no(plan))
    }
}

/// `SELECT <constants>` with no FROM: the constant is built once.
fn one_row(input: &LogicalPlan) -> bool {
    matches!(input, LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: true, .. }))
}

fn bytes(value: &ScalarValue) -> usize {
    value.size()
}

fn constant_too_large(bytes: usize, rows: usize, max: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "a constant of {bytes} bytes would be copied into each of the {rows} rows of a batch, \
         more than the {max} bytes all queries may hold together (--memory-limit; values are \
         capped by --max-value-bytes): select it once (without FROM), or build a shorter value"
    ))
}
