use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::SchedulingType;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;

use super::preemptible;
use super::probe::{SLICE_PAIRS, SMALL_SLICE_PAIRS, slice_rows};

/// Tables `a` and `b`, each one batch of `v` = 1..=rows.
fn session(a_rows: i32, b_rows: i32) -> SessionContext {
    let ctx = SessionContext::new();
    for (name, rows) in [("a", a_rows), ("b", b_rows)] {
        let v: Arc<dyn Array> = Arc::new(Int32Array::from_iter_values(1..=rows));
        ctx.register_batch(name, RecordBatch::try_from_iter([("v", v)]).unwrap()).unwrap();
    }
    ctx
}

async fn physical(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap()
}

fn count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// Each node that does not spend task budget itself sits right under a `CooperativeExec`.
fn assert_every_output_yields(node: &Arc<dyn ExecutionPlan>, under_coop: bool) {
    let spends = node.properties().scheduling_type == SchedulingType::Cooperative;
    let tap = matches!(node.name(), "CountBuildRows" | "SliceProbe");
    assert!(spends || under_coop || tap, "{} does not yield", node.name());
    for child in node.children() {
        assert_every_output_yields(child, node.is::<CooperativeExec>());
    }
}

#[tokio::test]
async fn every_operator_of_a_rewritten_plan_yields() {
    let ctx = session(100, 100);
    for sql in [
        "SELECT a.v % 7 AS k, count(*) FROM a JOIN b ON a.v = b.v GROUP BY k ORDER BY k",
        "SELECT count(*) FROM a, b WHERE a.v + b.v > 10",
        "SELECT v, row_number() OVER (ORDER BY v) FROM a UNION ALL SELECT v, 1 FROM b",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
         SELECT count(*) FROM r",
        "SELECT count(*) FROM generate_series(1, 1000)",
    ] {
        let plan = preemptible(physical(&ctx, sql).await).unwrap();
        assert_every_output_yields(&plan, false);
    }
}

/// The nested loop joins of `plan`, by the names of their two children.
fn join_children(plan: &Arc<dyn ExecutionPlan>) -> Vec<Vec<String>> {
    let mut joins = Vec::new();
    let mut stack = vec![Arc::clone(plan)];
    while let Some(node) = stack.pop() {
        if node.is::<NestedLoopJoinExec>() {
            joins.push(node.children().iter().map(|c| c.name().to_string()).collect());
        }
        stack.extend(node.children().into_iter().cloned());
    }
    joins
}

#[tokio::test]
async fn a_sliced_nested_loop_join_gives_the_same_answer() {
    // 1,000 build rows: fast-path slices of 33,554 rows cut the 40,000-row probe batch in two;
    // 46,000 build rows: slow-path slices of 22 rows cut the 200-row probe batch in ten.
    for (build, probe) in [(1_000, 40_000), (46_000, 200)] {
        let ctx = session(build, probe);
        let sql = "SELECT count(*) FROM a, b WHERE a.v + b.v > 1000";
        let plain = physical(&ctx, sql).await;
        // A plan runs once: its repartitioning keeps state.
        let rewritten = preemptible(physical(&ctx, sql).await).unwrap();
        assert_eq!(join_children(&rewritten), [["CountBuildRows", "SliceProbe"]]);
        let task = ctx.task_ctx();
        let expected = count(&collect(plain, Arc::clone(&task)).await.unwrap());
        assert!(expected > 0);
        assert_eq!(count(&collect(rewritten, task).await.unwrap()), expected, "{build} x {probe}");
    }
}

#[test]
fn probe_slices_stay_on_the_fast_path_while_the_build_side_allows() {
    // 8,192-row batches: DataFusion's fast path needs slices of 745 rows or more.
    assert_eq!(slice_rows(0, 8_192), SLICE_PAIRS);
    assert_eq!(slice_rows(1_000, 8_192), SLICE_PAIRS / 1_000);
    assert_eq!(slice_rows(SLICE_PAIRS / 745, 8_192), 745);
    assert_eq!(
        slice_rows(SLICE_PAIRS / 745 + 1, 8_192),
        SMALL_SLICE_PAIRS / (SLICE_PAIRS / 745 + 1)
    );
    assert_eq!(slice_rows(300_000, 8_192), 3);
    assert_eq!(slice_rows(SMALL_SLICE_PAIRS * 3, 8_192), 1);
}

/// Runs `sql` over 300,000 by 300,000 rows (one batch each, so that one probe batch joined
/// with the build side is 90 billion pairs), aborts it after half a second and returns how
/// long until none of its tasks is left (DataFusion spawns some per partition), or `None` if
/// some still run after ten seconds. The clock is the test thread's: the runtime's own timers
/// only fire when one of its workers gets to them.
fn abort_latency(sql: &str) -> Option<Duration> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ctx = session(300_000, 300_000);
    let plan = runtime.block_on(physical(&ctx, sql));
    let plan = preemptible(plan).unwrap();
    let query = runtime.spawn(collect(plan, ctx.task_ctx()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!query.is_finished(), "the join ended before it was aborted");
    query.abort();
    let aborted = Instant::now();
    let metrics = runtime.metrics();
    while metrics.num_alive_tasks() > 0 && aborted.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let landed = (metrics.num_alive_tasks() == 0).then(|| aborted.elapsed());
    // A task that never yields would hold the runtime's drop for minutes.
    runtime.shutdown_background();
    landed
}

#[test]
fn an_aborted_join_that_emits_at_every_step_stops_within_seconds() {
    let took = abort_latency("SELECT count(*) FROM a, b WHERE a.v + b.v > 0");
    eprintln!("the abort landed after {took:?}");
    assert!(took.is_some(), "the join still ran 10 s after its abort");
}

#[test]
fn an_aborted_join_whose_filter_no_pair_passes_stops_within_seconds() {
    let took = abort_latency("SELECT count(*) FROM a, b WHERE a.v + b.v < 0");
    eprintln!("the abort landed after {took:?}");
    assert!(took.is_some(), "the join still ran 10 s after its abort");
}
