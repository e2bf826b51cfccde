//! Constants copied into every row: a value under the cap can still exhaust memory once a
//! projection repeats it for each row of a batch.
//!
//! The planner folds `repeat('x', 60000000)` into one 60 MB constant (the capped function
//! checked it once, for one row); selecting it from a table then copies it into every row of
//! each batch, 8192 rows by default: 491 GB asked of the allocator at once. This rule refuses,
//! at planning, a projection over more than one row holding a constant whose copies for one
//! batch would pass the memory limit.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{EmptyRelation, Expr, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// Refuses projections that would copy a large constant into every row of a batch.
#[derive(Debug)]
pub struct BroadcastCheck {
    max_call_bytes: usize,
}

impl BroadcastCheck {
    /// A check against `max_call_bytes`, the most one expression may build for one batch.
    pub fn new(max_call_bytes: usize) -> Self {
        Self { max_call_bytes }
    }

    fn check(&self, projection: &[Expr], batch_rows: usize) -> Result<()> {
        let limit = self.max_call_bytes / batch_rows.max(1);
        for expr in projection {
            expr.apply(|e| match e {
                Expr::Literal(value, _) if bytes(value) > limit => {
                    Err(too_large(bytes(value), batch_rows, self.max_call_bytes))
                }
                _ => Ok(TreeNodeRecursion::Continue),
            })?;
        }
        Ok(())
    }
}

impl OptimizerRule for BroadcastCheck {
    fn name(&self) -> &str {
        "flightline_broadcast_check"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if let LogicalPlan::Projection(p) = &plan
            && !one_row(&p.input)
        {
            self.check(&p.expr, config.options().execution.batch_size.get())?;
        }
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

fn too_large(bytes: usize, rows: usize, max: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "a constant of {bytes} bytes would be copied into each of the {rows} rows of a batch, \
         more than the {max} bytes all queries may hold together (--memory-limit; values are \
         capped by --max-value-bytes): select it once (without FROM), or build a shorter value"
    ))
}
