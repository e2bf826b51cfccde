//! Nested loop join probes cut into slices of a bounded amount of work.
//!
//! `NestedLoopJoinExec` buffers its build (left) side, then joins each probe (right) batch with
//! every buffered row before it pulls the next probe batch. With 300,000 build rows, one probe
//! batch of 8,192 rows is 2.5 billion pairs: minutes in one poll when the join filter lets few
//! pairs through, since nothing is emitted meanwhile. Here the build side's rows are counted as
//! they stream in, the probe side hands the join slices of a bounded number of pairs, and the
//! join yields to the runtime after each slice.
//!
//! DataFusion joins a probe batch of at least a tenth of a batch one build row at a time, over
//! the whole probe batch (fast); a smaller one with many build rows at once, through per-pair
//! index arrays (about five times slower per pair in the dev profile: 100 million pairs took
//! 4.4 s instead of 0.8 s). Slices stay on the fast path while a slice of that size costs at
//! most [`SLICE_PAIRS`]; only larger build sides get smaller slices on the slow path.

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

/// Pairs (build rows times probe rows) one probe slice may cost on DataFusion's fast path:
/// a few hundred milliseconds in the dev profile.
pub(super) const SLICE_PAIRS: usize = 32 << 20;
/// Pairs one probe slice may cost on the slow path, about five times as dear per pair.
pub(super) const SMALL_SLICE_PAIRS: usize = 1 << 20;

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
    let build = Tap::wrap(build, Role::CountBuild, Arc::clone(&rows));
    let probe = Tap::wrap(probe, Role::SliceProbe, rows);
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
    fn wrap(
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
            Role::SliceProbe => write!(f, "SliceProbe: slice_pairs={SLICE_PAIRS}"),
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
        Ok(Tap::wrap(children.swap_remove(0), self.role, Arc::clone(&self.build_rows)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let batch_size = context.session_config().batch_size();
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
                Slices { input, build_rows: rows, batch_size, rest: None, pause: None },
            )),
        };
        Ok(stream)
    }
}

/// The probe stream in slices, with a yield before each slice but the first.
struct Slices {
    input: SendableRecordBatchStream,
    build_rows: Arc<AtomicUsize>,
    batch_size: usize,
    /// What is left of the current input batch.
    rest: Option<RecordBatch>,
    /// The yield in progress: `Some` from the first slice on.
    pause: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Stream for Slices {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(pause) = self.pause.as_mut() {
            // Yield as Tokio's own `yield_now` does (after the runtime polled its timers, so
            // that a query timeout fires), and let the runtime drop the task if it was
            // cancelled meanwhile.
            std::task::ready!(pause.as_mut().poll(cx));
        }
        let batch = match self.rest.take() {
            Some(batch) => batch,
            None => match std::task::ready!(self.input.poll_next_unpin(cx)) {
                Some(Ok(batch)) => batch,
                other => return Poll::Ready(other),
            },
        };
        let build = self.build_rows.load(Ordering::Relaxed);
        let (slice, rest) = split(batch, slice_rows(build, self.batch_size));
        self.rest = rest;
        self.pause = Some(Box::pin(tokio::task::yield_now()));
        Poll::Ready(Some(Ok(slice)))
    }
}

/// Probe rows per slice against `build` rows, for joins that work in batches of `batch_size`:
/// on the fast path when a slice there costs at most [`SLICE_PAIRS`], else at most
/// [`SMALL_SLICE_PAIRS`]; at least one row, so that the join always advances.
pub(super) fn slice_rows(build: usize, batch_size: usize) -> usize {
    let build = build.max(1);
    // DataFusion takes the slow path when `batch_size / probe rows > 10`.
    let fast = batch_size / 11 + 1;
    if build.saturating_mul(fast) <= SLICE_PAIRS {
        (SLICE_PAIRS / build).max(fast)
    } else {
        (SMALL_SLICE_PAIRS / build).max(1)
    }
}

/// The first `rows` rows of `batch`, and the rest if any.
fn split(batch: RecordBatch, rows: usize) -> (RecordBatch, Option<RecordBatch>) {
    let total = batch.num_rows();
    if total <= rows {
        return (batch, None);
    }
    (batch.slice(0, rows), Some(batch.slice(rows, total - rows)))
}
