//! Plans that yield often, so that a cancelled query stops within a fraction of a second at any
//! data size.
//!
//! A query is cancelled (its client went away, `--query-timeout`, shutdown) by dropping its
//! tasks, and Tokio can drop a task only between two polls of it. DataFusion yields where a
//! leaf produces a batch (its `CooperativeExec` spends a unit of Tokio's task budget per batch),
//! which is enough while batches come from the leaves at a steady pace. It is not when an
//! operator makes many batches out of one input batch: an aggregate over a cross join of
//! 300,000 rows by 300,000 pulls billions of joined rows from one probe batch, never reaches a
//! leaf, and one poll runs until the query ends. Two measures bound the work between yields:
//!
//! 1. Every operator's output spends task budget ([`CooperativeExec`] above each node that does
//!    not already), so a task yields after at most 128 batches crossing any edge of its plan,
//!    whatever the operator: joins, aggregates, sorts, windows, unnest, recursive queries,
//!    table functions, and the tasks that repartitioning and merging spawn.
//! 2. A nested loop join joins each probe batch with its whole build side before it pulls the
//!    next one, and may emit nothing meanwhile (a filter that few pairs pass). Its probe side is
//!    cut into slices of a bounded number of pairs, with a yield after each ([`probe`]).
//!
//! What stays unbounded is work that DataFusion does in one call on data it already holds:
//! building a hash join's table, sorting one batch, or a window frame recomputed per row. Each
//! is bounded by the rows one partition holds, hence by `--memory-limit`, not by the query.

mod probe;

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::dataframe::DataFrame;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::SchedulingType;

/// Plans `df` with every operator yielding (see the module docs), and the context to execute
/// the plan in.
pub async fn plan(df: DataFrame) -> DfResult<(Arc<dyn ExecutionPlan>, Arc<TaskContext>)> {
    let task = Arc::new(df.task_ctx());
    Ok((preemptible(df.create_physical_plan().await?)?, task))
}

/// `plan` with a yield point above every operator and bounded nested loop join probes.
pub fn preemptible(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| Ok(Transformed::yes(yielding(probe::sliced(node)?)))).map(|t| t.data)
}

/// `node` with its output spending task budget, unless it already does.
fn yielding(node: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if node.properties().scheduling_type == SchedulingType::Cooperative {
        node
    } else {
        Arc::new(CooperativeExec::new(node))
    }
}

#[cfg(test)]
mod tests;
