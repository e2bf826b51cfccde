//! Aggregates whose one value grows with the rows they see: `string_agg` joins every row into one
//! string, `array_agg` every row into one list.
//!
//! `--memory-limit` bounds what all their groups hold together, not the one value a group
//! builds: `string_agg(repeat(msg, 2000), ',')` over 10,000 rows returned a single 625 MB
//! string under the default limit. Each is registered again, wrapped in a [`CappedAggregate`]
//! whose accumulators refuse, after each batch they take in, a value past `--max-value-bytes`.
//! The wrapper keeps one accumulator per group (no `GroupsAccumulator`, which reports the size
//! of all its groups together), so every group is held to the cap on its own.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::{
    AggregateFunction, AggregateFunctionParams, WindowFunctionParams,
};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Operator,
    ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};

/// Aggregates whose value is at most one input value, a number, or a fixed-size sketch; with
/// [`grows`], every built-in aggregate is in exactly one of the two lists (a test checks it
/// against the session's registry).
pub const BOUNDED: &[&str] = &[
    "any_value",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "covar_pop",
    "covar_samp",
    "first_value",
    "grouping",
    "last_value",
    "max",
    "median",
    "min",
    "nth_value",
    "percentile_cont",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "stddev",
    "stddev_pop",
    "sum",
    "var",
    "var_pop",
];

/// Whether the built-in aggregate `name` builds one value out of all its rows.
pub fn grows(name: &str) -> bool {
    matches!(name, "string_agg" | "array_agg")
}

/// The aggregates of `registry` that [`grow`](grows), each capped at `max_value_bytes`.
pub fn capped_aggregates(
    registry: &HashMap<String, Arc<AggregateUDF>>,
    max_value_bytes: usize,
) -> Vec<AggregateUDF> {
    super::one_per_name(registry, |udaf| udaf.name())
        .filter(|udaf| grows(udaf.name()))
        .map(|udaf| CappedAggregate::new(udaf.inner().clone(), max_value_bytes).into_udaf())
        .collect()
}

/// A built-in aggregate whose every value is held to `max_value_bytes` as it grows.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CappedAggregate {
    inner: UdfEq<Arc<dyn AggregateUDFImpl>>,
    max_value_bytes: usize,
}

impl CappedAggregate {
    /// `inner` under the cap.
    pub fn new(inner: Arc<dyn AggregateUDFImpl>, max_value_bytes: usize) -> Self {
        Self { inner: inner.into(), max_value_bytes }
    }

    fn into_udaf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(self)
    }

    fn rewrapped(&self, inner: Arc<dyn AggregateUDFImpl>) -> Arc<dyn AggregateUDFImpl> {
        Arc::new(Self::new(inner, self.max_value_bytes))
    }

    fn capped(&self, inner: Box<dyn Accumulator>) -> Box<dyn Accumulator> {
        Box::new(CappedAccumulator {
            inner,
            name: self.inner.name().to_string(),
            max_value_bytes: self.max_value_bytes,
        })
    }
}

// Delegates every method, so that the wrapper differs from the original only in its
// accumulators.
#[warn(clippy::missing_trait_methods)]
impl AggregateUDFImpl for CappedAggregate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.schema_name(params)
    }

    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.human_display(params)
    }

    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_schema_name(params)
    }

    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.display_name(params)
    }

    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_display_name(params)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.capped(self.inner.accumulator(acc_args)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        // See the module's documentation: one accumulator per group, each checked alone.
        false
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        datafusion::common::not_impl_err!("{} keeps one accumulator per group", self.name())
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.capped(self.inner.create_sliding_accumulator(args)?))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let inner = Arc::clone(&self.inner);
        Ok(inner.with_beneficial_ordering(beneficial_ordering)?.map(|i| self.rewrapped(i)))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.simplify()
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner.simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner.reverse_expr() {
            ReversedUDAF::Reversed(udaf) => ReversedUDAF::Reversed(Arc::new(
                CappedAggregate::new(udaf.inner().clone(), self.max_value_bytes).into_udaf(),
            )),
            other => other,
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner.is_descending()
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
}

/// An accumulator that refuses to hold a value past the cap.
#[derive(Debug)]
struct CappedAccumulator {
    inner: Box<dyn Accumulator>,
    name: String,
    max_value_bytes: usize,
}

impl CappedAccumulator {
    /// What the accumulator holds is what its value will be (and a little bookkeeping).
    fn check(&self) -> Result<()> {
        let held = self.inner.size();
        if held > self.max_value_bytes {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() holds {held} bytes for one value; this server allows at most {} bytes per \
                 value (--max-value-bytes): aggregate fewer or shorter rows (add a WHERE or a \
                 GROUP BY), or ask the operator to raise --max-value-bytes",
                self.name, self.max_value_bytes
            )));
        }
        Ok(())
    }
}

impl Accumulator for CappedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)?;
        self.check()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)?;
        self.check()
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}
