//! A built-in function wrapped so that it refuses, before it runs, a call that would build a
//! value over the cap or run too long to be cancelled.

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

use super::growth::{self, Estimate, Growth};
use super::work::{MAX_CALL_STEPS, Work};
use super::{Guard, ValueCap};

/// A built-in function that refuses, before it runs, a call that would build a value over
/// the cap or take more steps than one call may ([`Guard`]). Everything else (name, aliases, signature, return type, simplification, ordering)
/// is the original's.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CappedFunction {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    guard: Guard,
    cap: ValueCap,
}

impl CappedFunction {
    /// `inner`, guarded as `guard` says, under `cap`.
    pub fn new(inner: Arc<dyn ScalarUDFImpl>, guard: Guard, cap: ValueCap) -> Self {
        Self { inner: inner.into(), guard, cap }
    }

    /// How the function is named in a refusal: an operator as written, a function as called.
    fn label(&self) -> String {
        match self.inner.name() {
            name if name.chars().all(|c| c.is_ascii_punctuation()) => {
                format!("the {name} operator")
            }
            name => format!("{name}()"),
        }
    }

    /// Refuses a call whose output could pass the cap, or whose work could not be cancelled.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        match self.guard {
            Guard::Size(growth) => self.check_size(growth, args),
            Guard::Time(work) => self.check_work(work, args),
        }
    }

    fn check_size(&self, growth: Growth, args: &ScalarFunctionArgs) -> Result<()> {
        let Estimate { largest, total } =
            growth.estimate(&args.args, args.number_rows, args.return_type());
        if largest > self.cap.max_value_bytes as u128 {
            return Err(
                self.over_value_cap(format!("would build a value of up to {largest} bytes"))
            );
        }
        if total > self.cap.max_call_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would build up to {total} bytes for one batch of {} rows, more than the {} \
                 bytes all queries may hold together (--memory-limit; each value is under \
                 --max-value-bytes): pass smaller arguments or select fewer rows",
                self.label(),
                args.number_rows,
                self.cap.max_call_bytes
            )));
        }
        Ok(())
    }

    fn check_work(&self, work: Work, args: &ScalarFunctionArgs) -> Result<()> {
        let steps = work.steps(&args.args, args.number_rows);
        if steps > MAX_CALL_STEPS {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would take up to {steps} steps for one batch of {} rows; one call may take \
                 at most {MAX_CALL_STEPS}, so that a cancelled or timed-out query stops within \
                 seconds: {}",
                self.label(),
                args.number_rows,
                work.advice()
            )));
        }
        Ok(())
    }

    fn over_value_cap(&self, what: String) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "{} {what}; this server allows at most {} bytes per value (--max-value-bytes): pass \
             smaller arguments, or ask the operator to raise --max-value-bytes",
            self.label(),
            self.cap.max_value_bytes
        ))
    }

    /// Refuses, at planning, a cast whose every value is wider than the cap (a
    /// `FixedSizeBinary` of two gigabytes holds that much even for a null).
    fn check_output_type(&self, output: &DataType) -> Result<()> {
        let width = growth::fixed_width(output);
        if matches!(self.guard, Guard::Size(Growth::Cast))
            && width > self.cap.max_value_bytes as u128
        {
            return Err(
                self.over_value_cap(format!("would build values of {width} bytes each ({output})"))
            );
        }
        Ok(())
    }

    fn rewrapped(&self, udf: &ScalarUDF) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self::new(udf.inner().clone(), self.guard, self.cap))
    }
}

// Delegates every method, so that the wrapper differs from the original only in `invoke` (and,
// for casts, in refusing at planning a type too wide for the cap).
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
        let field = self.inner.return_field_from_args(args)?;
        self.check_output_type(field.data_type())?;
        Ok(field)
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
