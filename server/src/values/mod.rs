//! The size of the values a query builds, and the time one call may take: a cap that every
//! built-in function, aggregate and operator whose output can outgrow its input checks before
//! it allocates.
//!
//! `--memory-limit` accounts for what operators hold (sorts, joins, aggregates), not for the
//! values scalar functions build: `repeat('x', 100000000000)` asks the allocator for 100 GB at
//! once, and the process aborts. So each such function is registered in every session again,
//! wrapped in a [`CappedFunction`] that estimates, from the arguments alone, the largest value
//! and the whole batch the call could build ([`growth`]; the worst case, so `lpad` counts four
//! bytes per character of a non-ASCII fill), and refuses with `ResourcesExhausted` naming the
//! limit and the function before the original runs. The other functions are left as they are,
//! so their plans, names and results cannot change; [`growth::classify`] and
//! [`work::classify`] sort every built-in function into one kind or the other, and a test
//! fails when a DataFusion upgrade brings a function nobody sorted.
//!
//! The same cap reaches what is not a function of the registry: the `||` operator
//! ([`concat_operator`]), aggregates that join their rows into one value ([`aggregate`]), and
//! values whose size per batch is known at planning, constants and casts ([`batch`]). A
//! function whose time grows faster than its input (`levenshtein`) is held to a number of steps
//! per call instead ([`work`]), since no cancellation interrupts a call that has begun.

pub mod aggregate;
mod args;
pub mod batch;
pub mod concat_operator;
mod function;
pub mod growth;
pub mod work;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use function::CappedFunction;
use growth::Growth;
use work::Work;

/// Bytes one value (one string, one binary, one list) may hold, unless told otherwise: far above
/// any text a report shows, far below what one call may ask the allocator for at once.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 << 20;

/// What one function call may build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueCap {
    /// Bytes of the largest single value (`--max-value-bytes`).
    pub max_value_bytes: usize,
    /// Bytes of all the values of one call over a batch (`--memory-limit`: a column larger
    /// than what all queries may hold together can never be held).
    pub max_call_bytes: usize,
}

/// What a [`CappedFunction`] checks before the function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// The bytes the call may build.
    Size(Growth),
    /// The steps the call may take.
    Time(Work),
}

/// How the built-in function `name` is guarded, or `None` when it needs no guard (see
/// [`growth::BOUNDED`]).
pub fn guard(name: &str) -> Option<Guard> {
    growth::classify(name).map(Guard::Size).or_else(|| work::classify(name).map(Guard::Time))
}

/// Everything a session needs to hold its queries to a [`ValueCap`], built once per server
/// and installed in each call's session.
#[derive(Debug, Clone)]
pub struct ValueGuards {
    functions: Vec<ScalarUDF>,
    aggregates: Vec<AggregateUDF>,
    concat: Arc<concat_operator::ConcatOperatorRule>,
    batch: Arc<batch::BatchCheck>,
}

impl ValueGuards {
    /// The guards for `cap`, over DataFusion's built-in functions.
    pub fn new(cap: ValueCap) -> Self {
        let defaults = SessionContext::new();
        let state = defaults.state();
        Self {
            functions: capped_functions(state.scalar_functions(), cap),
            aggregates: aggregate::capped_aggregates(
                state.aggregate_functions(),
                cap.max_value_bytes,
            ),
            concat: Arc::new(concat_operator::ConcatOperatorRule::new(cap)),
            batch: Arc::new(batch::BatchCheck::new(cap)),
        }
    }

    /// Replaces `ctx`'s growing functions and aggregates with their capped forms and adds the
    /// rules for the operator, constants and casts.
    pub fn install(&self, ctx: &SessionContext) {
        for function in &self.functions {
            ctx.register_udf(function.clone());
        }
        for aggregate in &self.aggregates {
            ctx.register_udaf(aggregate.clone());
        }
        ctx.add_analyzer_rule(self.concat.clone());
        ctx.add_optimizer_rule(self.batch.clone());
    }
}

/// The functions of `registry` whose output can outgrow their input, each wrapped to check
/// `cap` first; registering them in a session replaces the originals (and their aliases).
pub fn capped_functions(
    registry: &HashMap<String, Arc<ScalarUDF>>,
    cap: ValueCap,
) -> Vec<ScalarUDF> {
    one_per_name(registry, |udf| udf.name())
        .filter_map(|udf| {
            let guard = guard(udf.name())?;
            Some(ScalarUDF::new_from_impl(CappedFunction::new(udf.inner().clone(), guard, cap)))
        })
        .collect()
}

/// The functions of a session's `registry`, which holds each under its name and each alias,
/// once each, in name order.
pub(crate) fn one_per_name<F>(
    registry: &HashMap<String, Arc<F>>,
    name: impl Fn(&F) -> &str,
) -> impl Iterator<Item = &Arc<F>> {
    let by_name: BTreeMap<&str, &Arc<F>> =
        registry.values().map(|function| (name(function), function)).collect();
    by_name.into_values()
}

/// Whether `udf` is a [`CappedFunction`] (what the server registers for growing functions).
pub fn is_capped(udf: &ScalarUDF) -> bool {
    udf.inner().is::<CappedFunction>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::DataType;
    use datafusion::common::Result;
    use datafusion::error::DataFusionError;

    const CAP: ValueCap = ValueCap { max_value_bytes: 1 << 20, max_call_bytes: 64 << 20 };

    fn capped_session() -> SessionContext {
        let ctx = SessionContext::new();
        ValueGuards::new(CAP).install(&ctx);
        ctx
    }

    fn hundred_rows(ctx: &SessionContext) {
        let v = Int64Array::from_iter_values(0..100);
        let batch = arrow::array::RecordBatch::try_from_iter([("v", Arc::new(v) as _)]).unwrap();
        ctx.register_batch("hundred", batch).unwrap();
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        ctx.sql(sql).await?.collect().await
    }

    fn refusal(result: Result<Vec<arrow::array::RecordBatch>>) -> String {
        let error = result.expect_err("expected ResourcesExhausted");
        match error.find_root() {
            DataFusionError::ResourcesExhausted(message) => message.clone(),
            other => panic!("expected ResourcesExhausted, got {other}"),
        }
    }

    #[test]
    fn every_function_of_the_registry_is_sorted_into_growing_or_bounded() {
        let ctx = SessionContext::new();
        let mut unsorted: Vec<&str> = ctx
            .state()
            .scalar_functions()
            .values()
            .map(|udf| udf.name())
            .filter(|name| guard(name).is_none() && !growth::BOUNDED.contains(name))
            .map(|name| {
                // Leaked only in this test, to return names that outlive the session.
                &*Box::leak(name.to_string().into_boxed_str())
            })
            .collect();
        unsorted.sort_unstable();
        unsorted.dedup();
        assert!(unsorted.is_empty(), "classify these in values::growth or work: {unsorted:?}");
        for name in growth::BOUNDED {
            assert!(guard(name).is_none(), "{name} is in both lists");
        }
    }

    #[test]
    fn every_name_and_alias_of_a_growing_function_is_capped_and_nothing_else() {
        let ctx = capped_session();
        let state = ctx.state();
        for (key, udf) in state.scalar_functions() {
            let grows = guard(udf.name()).is_some();
            assert_eq!(is_capped(udf), grows, "{key} ({})", udf.name());
        }
        assert!(is_capped(&state.scalar_functions()["date_format"]), "to_char's alias");
    }

    #[tokio::test]
    async fn a_call_over_the_cap_is_refused_before_it_allocates() {
        let ctx = capped_session();
        for (sql, function) in [
            ("SELECT length(repeat(arrow_cast('x', 'LargeUtf8'), 100000000000))", "repeat()"),
            ("SELECT lpad('x', 2000000000)", "lpad()"),
            ("SELECT rpad('x', 300000, 'é')", "rpad()"),
            ("SELECT replace(repeat('x', 1000), '', repeat('y', 2000))", "replace()"),
        ] {
            let message = refusal(run(&ctx, sql).await);
            assert!(message.contains(function), "{sql}: {message}");
            assert!(message.contains("--max-value-bytes"), "{sql}: {message}");
        }
    }

    #[tokio::test]
    async fn a_call_over_the_memory_limit_for_one_batch_is_refused() {
        let ctx = capped_session();
        hundred_rows(&ctx);
        // 100 rows of 1 MiB each: every value fits, the batch (100 MiB) does not.
        let sql = "SELECT repeat('x', 1048576 + v - v) FROM hundred";
        let message = refusal(run(&ctx, sql).await);
        assert!(message.contains("repeat()") && message.contains("--memory-limit"), "{message}");
    }

    #[tokio::test]
    async fn calls_under_the_cap_answer_as_the_originals_do() {
        let capped = capped_session();
        let plain = SessionContext::new();
        let sql = "SELECT repeat('ab', 3) AS r, lpad('x', 5, '-') AS l, date_format(\
                   arrow_cast(0, 'Timestamp(Second, None)'), '%Y') AS y, upper('straße') AS u, \
                   concat_ws('-', 'a', 'b') AS c, repeat('x', 1048576) = repeat('x', 1048576) AS big";
        let got = run(&capped, sql).await.unwrap();
        assert_eq!(got, run(&plain, sql).await.unwrap());
        assert_eq!(got[0].column(0).as_string::<i32>().value(0), "ababab");
        assert_eq!(got[0].column(1).as_string::<i32>().value(0), "----x");
        // Same plan text (names, simplification) with and without the cap.
        let explain = |ctx: SessionContext| async move {
            let plan = ctx.sql(&format!("EXPLAIN {sql}")).await.unwrap().collect().await.unwrap();
            arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string()
        };
        assert_eq!(explain(capped_session()).await, explain(SessionContext::new()).await);
    }

    #[tokio::test]
    async fn columns_are_checked_row_by_row() {
        let ctx = capped_session();
        let n = Int64Array::from(vec![1, 2, 3]);
        let batch = arrow::array::RecordBatch::try_from_iter([("n", Arc::new(n) as _)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        let got = run(&ctx, "SELECT length(repeat('ab', n)) FROM t ORDER BY n").await.unwrap();
        let lengths: Vec<i32> =
            got[0].column(0).as_primitive::<arrow::datatypes::Int32Type>().values().to_vec();
        assert_eq!(lengths, [2, 4, 6]);
        let sql = "SELECT repeat('ab', n * 1000000) FROM t";
        assert!(refusal(run(&ctx, sql).await).contains("--max-value-bytes"));
    }

    #[tokio::test]
    async fn a_constant_copied_into_every_row_of_a_batch_over_the_memory_limit_is_refused() {
        let ctx = capped_session();
        hundred_rows(&ctx);
        // Folded into a 10 kB constant; 8192 copies of it pass the 64 MiB of CAP.
        let message = refusal(run(&ctx, "SELECT v, repeat('x', 10000) FROM hundred").await);
        assert!(message.contains("--memory-limit") && message.contains("8192 rows"), "{message}");
        let once = run(&ctx, "SELECT repeat('x', 10000)").await.unwrap();
        assert_eq!(once[0].column(0).as_string::<i32>().value(0).len(), 10000);
        let small = run(&ctx, "SELECT v, repeat('x', 100) FROM hundred").await.unwrap();
        assert_eq!(small.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
    }

    #[test]
    fn every_aggregate_of_the_registry_is_sorted_into_growing_or_bounded() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let mut unsorted: Vec<&str> = state
            .aggregate_functions()
            .values()
            .map(|udaf| udaf.name())
            .filter(|name| !aggregate::grows(name) && !aggregate::BOUNDED.contains(name))
            .collect();
        unsorted.sort_unstable();
        unsorted.dedup();
        assert!(unsorted.is_empty(), "classify these in values::aggregate: {unsorted:?}");
        assert!(aggregate::BOUNDED.iter().all(|name| !aggregate::grows(name)));
    }

    fn strings(batches: &[arrow::array::RecordBatch], column: usize) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for batch in batches {
            let column = arrow::compute::cast(batch.column(column), &DataType::Utf8).unwrap();
            out.extend(column.as_string::<i32>().iter().map(|v| v.map(str::to_string)));
        }
        out
    }

    #[tokio::test]
    async fn the_concat_operator_answers_as_before_under_the_cap_and_is_refused_over_it() {
        let capped = capped_session();
        let plain = SessionContext::new();
        for ctx in [&capped, &plain] {
            let t = arrow::array::StringArray::from(vec![Some("a"), None, Some("ccc")]);
            let batch = arrow::array::RecordBatch::try_from_iter([("s", Arc::new(t) as _)]);
            ctx.register_batch("t", batch.unwrap()).unwrap();
        }
        let sql = "SELECT s || s || 'x', 'k' || s, NULL || s, s || 1 FROM t ORDER BY s";
        let (got, want) = (run(&capped, sql).await.unwrap(), run(&plain, sql).await.unwrap());
        assert_eq!(got[0].schema(), want[0].schema(), "same names and types");
        for column in 0..4 {
            assert_eq!(strings(&got, column), strings(&want, column), "column {column}");
        }
        assert_eq!(strings(&got, 0), [Some("aax".into()), Some("ccccccx".into()), None]);
        let constant = run(&capped, "SELECT 'ab' || 'cd' AS v").await.unwrap();
        assert_eq!(strings(&constant, 0), [Some("abcd".to_string())]);

        // Doubling a 0.6 MiB string twice passes the 1 MiB of CAP: refused, whether folded
        // into a constant at planning or built from a column.
        let doubled = "WITH a AS (SELECT repeat('x', 600000) AS s), b AS (SELECT s || s AS s \
                       FROM a) SELECT length(s || s) FROM b";
        let message = refusal(run(&capped, doubled).await);
        assert!(message.contains("the || operator") && message.contains("--max-value-bytes"));
        let column = "SELECT length(repeat(s, 300000) || repeat(s, 300000)) FROM t";
        assert!(refusal(run(&capped, column).await).contains("the || operator"));
    }

    #[tokio::test]
    async fn string_agg_and_array_agg_are_held_to_the_cap_per_value() {
        let ctx = capped_session();
        hundred_rows(&ctx);
        // 100 rows of 20 kB: 2 MB in one value, over the 1 MiB of CAP.
        for sql in [
            "SELECT length(string_agg(repeat('x', 20000 + v - v), ',')) FROM hundred",
            "SELECT array_agg(repeat('x', 20000 + v - v)) FROM hundred",
            "SELECT v % 2, length(string_agg(repeat('x', 20000 + v - v), ',')) FROM hundred \
             GROUP BY v % 2",
        ] {
            let message = refusal(run(&ctx, sql).await);
            assert!(message.contains("_agg()") && message.contains("--max-value-bytes"), "{sql}");
        }
        // Ten groups of 10 rows: 200 kB each, every one under the cap.
        let sql = "SELECT v % 10 AS g, length(string_agg(repeat('x', 20000 + v - v), '')) AS n \
                   FROM hundred GROUP BY v % 10 ORDER BY g";
        let got = run(&ctx, sql).await.unwrap();
        let lengths = got[0].column(1).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(lengths.values().to_vec(), vec![200_000; 10]);
        let plain = SessionContext::new();
        hundred_rows(&plain);
        let sql = "SELECT v % 3 AS g, string_agg(CAST(v AS VARCHAR), ',' ORDER BY v) AS s \
                   FROM hundred GROUP BY v % 3 ORDER BY g";
        let (got, want) = (run(&ctx, sql).await.unwrap(), run(&plain, sql).await.unwrap());
        assert_eq!(strings(&got, 1), strings(&want, 1));
    }

    #[tokio::test]
    async fn levenshtein_is_held_to_a_number_of_steps_per_call() {
        let ctx = capped_session();
        let got = run(&ctx, "SELECT levenshtein('kitten', 'sitting')").await.unwrap();
        assert_eq!(got[0].column(0).as_primitive::<arrow::datatypes::Int32Type>().value(0), 3);
        // 10^4 × 10^4 steps pass, one more doubling of each side does not.
        let sql = "SELECT levenshtein(repeat('a', 20000), repeat('b', 20000))";
        let message = refusal(run(&ctx, sql).await);
        assert!(message.contains("levenshtein()") && message.contains("steps"), "{message}");
        hundred_rows(&ctx);
        let sql = "SELECT levenshtein(repeat('a', 1000 + v), repeat('b', 1000 + v)) FROM hundred";
        assert!(refusal(run(&ctx, sql).await).contains("levenshtein()"));
    }

    #[tokio::test]
    async fn a_cast_to_a_type_wider_than_the_cap_is_refused_at_planning() {
        let ctx = capped_session();
        hundred_rows(&ctx);
        let started = std::time::Instant::now();
        let sql = "SELECT arrow_cast(NULL, 'FixedSizeBinary(2000000000)')";
        let message = refusal(run(&ctx, sql).await);
        assert!(message.contains("arrow_cast()") && message.contains("--max-value-bytes"));
        // 100 kB per row is under the cap; 8192 rows of it are not under the 64 MiB per call.
        let sql = "SELECT arrow_cast(CASE WHEN v > 1000 THEN arrow_cast('x', 'Binary') END, \
                   'FixedSizeBinary(100000)') IS NULL FROM hundred";
        let message = refusal(run(&ctx, sql).await);
        assert!(message.contains("FixedSizeBinary(100000)") && message.contains("--memory-limit"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused before building");
        let small =
            "SELECT arrow_cast(arrow_cast('ab', 'Binary'), 'FixedSizeBinary(2)') FROM hundred";
        assert_eq!(
            run(&ctx, small).await.unwrap().iter().map(|b| b.num_rows()).sum::<usize>(),
            100
        );
    }
}
