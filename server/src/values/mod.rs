//! The size of the values a query builds: a cap that every built-in function whose output can
//! outgrow its input checks before it allocates.
//!
//! `--memory-limit` accounts for what operators hold (sorts, joins, aggregates), not for the
//! values scalar functions build: `repeat('x', 100000000000)` asks the allocator for 100 GB at
//! once, and the process aborts. So each such function is registered in every session again,
//! wrapped in a [`CappedFunction`] that estimates, from the arguments alone, the largest value
//! and the whole batch the call could build ([`growth`]; the worst case, so `lpad` counts four
//! bytes per character of a non-ASCII fill), and refuses with `ResourcesExhausted` naming the
//! limit and the function before the original runs. The other functions are left as they are,
//! so their plans, names and results cannot change; [`growth::classify`] sorts every built-in
//! function into one kind or the other, and a test fails when a DataFusion upgrade brings a
//! function nobody sorted.

mod args;
pub mod broadcast;
pub mod growth;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{ExprSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, StructFieldMapping,
};

use growth::{Estimate, Growth};

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

/// The functions of `registry` whose output can outgrow their input, each wrapped to check
/// `cap` first; registering them in a session replaces the originals (and their aliases).
pub fn capped_functions(
    registry: &HashMap<String, Arc<ScalarUDF>>,
    cap: ValueCap,
) -> Vec<ScalarUDF> {
    // The registry holds each function under its name and each alias: keep one per name.
    let by_name: BTreeMap<&str, &Arc<ScalarUDF>> =
        registry.values().map(|udf| (udf.name(), udf)).collect();
    by_name
        .into_values()
        .filter_map(|udf| {
            let growth = growth::classify(udf.name())?;
            Some(ScalarUDF::new_from_impl(CappedFunction::new(udf.inner().clone(), growth, cap)))
        })
        .collect()
}

/// A built-in function that refuses, before it runs, a call that would build a value over
/// the cap. Everything else (name, aliases, signature, return type, simplification, ordering)
/// is the original's.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CappedFunction {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    growth: Growth,
    cap: ValueCap,
}

impl CappedFunction {
    /// `inner`, whose output grows with its arguments as `growth` says, under `cap`.
    pub fn new(inner: Arc<dyn ScalarUDFImpl>, growth: Growth, cap: ValueCap) -> Self {
        Self { inner: inner.into(), growth, cap }
    }

    /// Refuses a call whose output could pass the cap.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let Estimate { largest, total } =
            self.growth.estimate(&args.args, args.number_rows, args.return_type());
        let name = self.inner.name();
        if largest > self.cap.max_value_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{name}() would build a value of up to {largest} bytes; this server allows at \
                 most {} bytes per value (--max-value-bytes): pass smaller arguments, or ask the \
                 operator to raise --max-value-bytes",
                self.cap.max_value_bytes
            )));
        }
        if total > self.cap.max_call_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{name}() would build up to {total} bytes for one batch of {} rows, more than \
                 the {} bytes all queries may hold together (--memory-limit; each value is under \
                 --max-value-bytes): pass smaller arguments or select fewer rows",
                args.number_rows, self.cap.max_call_bytes
            )));
        }
        Ok(())
    }

    fn rewrapped(&self, udf: &ScalarUDF) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self::new(udf.inner().clone(), self.growth, self.cap))
    }
}

// Delegates every method, so that the wrapper differs from the original only in `invoke`.
#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for CappedFunction {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner.display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        // A function rebuilt for new settings (a time zone, say) stays capped.
        self.inner.with_updated_config(config).map(|udf| self.rewrapped(&udf))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        #[expect(deprecated)]
        self.inner.is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.inner.preimage(args, lit_expr, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<StructFieldMapping> {
        self.inner.struct_field_mapping(literal_args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.placement(args)
    }
}

/// Whether `udf` is a [`CappedFunction`] (what the server registers for growing functions).
pub fn is_capped(udf: &ScalarUDF) -> bool {
    udf.inner().is::<CappedFunction>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use datafusion::prelude::SessionContext;

    const CAP: ValueCap = ValueCap { max_value_bytes: 1 << 20, max_call_bytes: 64 << 20 };

    fn capped_session() -> SessionContext {
        let ctx = SessionContext::new();
        for function in capped_functions(ctx.state().scalar_functions(), CAP) {
            ctx.register_udf(function);
        }
        ctx.add_optimizer_rule(Arc::new(broadcast::BroadcastCheck::new(CAP.max_call_bytes)));
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
            .filter(|name| growth::classify(name).is_none() && !growth::BOUNDED.contains(name))
            .map(|name| {
                // Leaked only in this test, to return names that outlive the session.
                &*Box::leak(name.to_string().into_boxed_str())
            })
            .collect();
        unsorted.sort_unstable();
        unsorted.dedup();
        assert!(unsorted.is_empty(), "classify these in values::growth: {unsorted:?}");
        for name in growth::BOUNDED {
            assert!(growth::classify(name).is_none(), "{name} is in both lists");
        }
    }

    #[test]
    fn every_name_and_alias_of_a_growing_function_is_capped_and_nothing_else() {
        let ctx = capped_session();
        let state = ctx.state();
        for (key, udf) in state.scalar_functions() {
            let grows = growth::classify(udf.name()).is_some();
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
}
