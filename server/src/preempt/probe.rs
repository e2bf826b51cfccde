//! Nested loop join probes cut into slices of a bounded amount of work.
//!
//! `NestedLoopJoinExec` buffers its build (left) side, then joins each probe (right) batch with
//! every buffered row before it pulls the next probe batch. With 300,000 build rows, one probe
//! batch of 8,192 rows is 2.5 billion pairs: minutes in one poll when the join filter lets few
//! pairs through, since nothing is emitted meanwhile. Here the build side's rows are counted as
//! they stream in, and the probe side hands the join slices of `PAIRS_PER_YIELD / build rows`
//! rows (at least one), yielding to the runtime after each such amount of work.
//!
//! The join itself is unchanged, and so is its speed: DataFusion joins a small probe batch with
//! as many build rows at once as fill a batch, so a slice is still joined in batch-sized steps.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

/// Joined pairs (build rows times probe rows) a probe slice may cost before the join yields:
/// a few tens of milliseconds of filter evaluation in the dev profile.
pub(super) const PAIRS_PER_YIELD: usize = 1 << 20;

/// `node` with its probe side sliced if it is a nested loop join; any other node unchanged.
pub(super) fn sliced(node: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    if !node.is::<NestedLoopJoinExec>() {
        return Ok(node);
    }
    let (build, probe) = match node.children().as_slice() {
        [build, probe] => (Arc::clone(build), Arc::clone(probe)),
        _ => return Ok(node),
    };
    let rows = Arc::new(AtomicUsize::new(0));
    let build = Tap::new(build, Role::CountBuild, Arc::clone(&rows));
    let probe = Tap::new(probe, Role::SliceProbe, rows);
    replace_children_if_necessary(node, vec![build, probe])
}

/// What a [`Tap`] does to the batches passing through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Adds the rows of the build side to the shared count.
    CountBuild,
    /// Cuts the probe side into slices sized by the shared count.
    SliceProbe,
}

/// A pass-through node on one side of a nested loop join. Both sides share the count of build
/// rows seen. It only grows (a recursive query re-runs its join): a larger count means smaller
/// slices, never longer polls.
#[derive(Debug)]
struct Tap {
    input: Arc<dyn ExecutionPlan>,
    role: Role,
    build_rows: Arc<AtomicUsize>,
    properties: Arc<PlanProperties>,
}

impl Tap {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        role: Role,
        build_rows: Arc<AtomicUsize>,
    ) -> Arc<dyn ExecutionPlan> {
        let properties = Arc::clone(input.properties());
        Arc::new(Self { input, role, build_rows, properties })
    }
}

impl DisplayAs for Tap {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.role {
            Role::CountBuild => write!(f, "CountBuildRows"),
            Role::SliceProbe => write!(f, "SliceProbe: pairs_per_yield={PAIRS_PER_YIELD}"),
        }
    }
}

impl ExecutionPlan for Tap {
    fn name(&self) -> &str {
        match self.role {
            Role::CountBuild => "CountBuildRows",
            Role::SliceProbe => "SliceProbe",
        }
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!(
                "{} takes one child, got {}",
                self.name(),
                children.len()
            );
        }
        Ok(Tap::new(children.swap_remove(0), self.role, Arc::clone(&self.build_rows)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let rows = Arc::clone(&self.build_rows);
        let stream: SendableRecordBatchStream = match self.role {
            Role::CountBuild => Box::pin(RecordBatchStreamAdapter::new(
                schema,
                input.inspect(move |item| {
                    if let Ok(batch) = item {
                        rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
                    }
                }),
            )),
            Role::SliceProbe => Box::pin(RecordBatchStreamAdapter::new(
                schema,
                Slices { input, build_rows: rows, rest: None, owed: 0, pause: None },
            )),
        };
        Ok(stream)
    }
}

/// The probe stream in slices, yielding once `PAIRS_PER_YIELD` pairs were handed out.
struct Slices {
    input: SendableRecordBatchStream,
    build_rows: Arc<AtomicUsize>,
    /// What is left of the current input batch.
    rest: Option<RecordBatch>,
    /// Pairs handed to the join since the last yield.
    owed: usize,
    /// The yield in progress.
    pause: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Stream for Slices {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        if self.owed >= PAIRS_PER_YIELD {
            // The join worked through the last slices within this poll: yield as Tokio's own
            // `yield_now` does (after the runtime polled its timers, so that a query timeout
            // fires), and let the runtime drop the task if it was cancelled meanwhile.
            self.owed = 0;
            let mut pause = Box::pin(tokio::task::yield_now());
            if pause.as_mut().poll(cx).is_pending() {
                self.pause = Some(pause);
                return Poll::Pending;
            }
        }
        let batch = match self.rest.take() {
            Some(batch) => batch,
            None => match std::task::ready!(self.input.poll_next_unpin(cx)) {
                Some(Ok(batch)) => batch,
                other => return Poll::Ready(other),
            },
        };
        let build = self.build_rows.load(Ordering::Relaxed).max(1);
        let (slice, rest) = split(batch, slice_rows(build));
        self.rest = rest;
        self.owed = self.owed.saturating_add(slice.num_rows().saturating_mul(build));
        Poll::Ready(Some(Ok(slice)))
    }
}

/// Probe rows per slice against `build` rows: at least one, so that the join always advances.
pub(super) fn slice_rows(build: usize) -> usize {
    (PAIRS_PER_YIELD / build.max(1)).max(1)
}

/// The first `rows` rows of `batch`, and the rest if any.
fn split(batch: RecordBatch, rows: usize) -> (RecordBatch, Option<RecordBatch>) {
    let total = batch.num_rows();
    if total <= rows {
        return (batch, None);
    }
    (batch.slice(0, rows), Some(batch.slice(rows, total - rows)))
}
