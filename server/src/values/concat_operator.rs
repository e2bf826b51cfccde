//! The `||` operator under the cap.
//!
//! `||` is an operator, not a function of the registry, so wrapping functions does not reach
//! it: `s || s || s || s`, nested five times over a 60 MB string, asks the allocator for 61 GB
//! and the process aborts. [`ConcatOperatorRule`] rewrites every `a || b`, once types are
//! coerced, into a call of [`ConcatOperator`] guarded like `concat` ([`CappedFunction`]); the
//! call evaluates with the same kernel as the operator and keeps its column name.

use std::sync::Arc;

use arrow::compute::kernels::concat_elements::concat_elements_dyn;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::function::CappedFunction;
use super::growth::Growth;
use super::{Guard, ValueCap};

/// `a || b` as a function: null when either side is null, else the two joined.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConcatOperator {
    signature: Signature,
}

impl ConcatOperator {
    fn new() -> Self {
        // The rule rewrites only coerced operators, so any two types it sees are valid.
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ConcatOperator {
    fn name(&self) -> &str {
        "||"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        // The operator's own name, so that no column is renamed.
        match args {
            [a, b] => Ok(format!("{} || {}", a.schema_name(), b.schema_name())),
            _ => Ok("||".to_string()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [a, b] => BinaryTypeCoercer::new(a, &Operator::StringConcat, b).get_result_type(),
            _ => datafusion::common::plan_err!("|| takes two operands, got {}", arg_types.len()),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), self.return_type(&types)?, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let one_value = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [a, b] = arrays.as_slice() else {
            return datafusion::common::exec_err!("|| takes two operands, got {}", arrays.len());
        };
        let joined = concat_elements_dyn(a, b)?;
        if one_value {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&joined, 0)?));
        }
        Ok(ColumnarValue::Array(joined))
    }
}

/// Rewrites `a || b` into the capped [`ConcatOperator`] everywhere in a plan, subqueries too.
#[derive(Debug)]
pub struct ConcatOperatorRule {
    function: Arc<ScalarUDF>,
}

impl ConcatOperatorRule {
    /// The rule for `cap`.
    pub fn new(cap: ValueCap) -> Self {
        let capped =
            CappedFunction::new(Arc::new(ConcatOperator::new()), Guard::Size(Growth::Concat), cap);
        Self { function: Arc::new(ScalarUDF::new_from_impl(capped)) }
    }

    fn rewrite_expr(&self, expr: Expr) -> Result<Transformed<Expr>> {
        expr.transform_up(|e| match e {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right }) => {
                let call = ScalarFunction::new_udf(self.function.clone(), vec![*left, *right]);
                Ok(Transformed::yes(Expr::ScalarFunction(call)))
            }
            other => Ok(Transformed::no(other)),
        })
    }

    fn rewrite_plan(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        let names = NamePreserver::new(&plan);
        let rewritten = plan.map_expressions(|expr| {
            let name = names.save(&expr);
            Ok(self.rewrite_expr(expr)?.update_data(|e| name.restore(e)))
        })?;
        if !rewritten.transformed {
            return Ok(rewritten);
        }
        rewritten.map_data(|plan| plan.recompute_schema())
    }
}

impl AnalyzerRule for ConcatOperatorRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan.transform_up_with_subqueries(|plan| self.rewrite_plan(plan))?.data)
    }

    fn name(&self) -> &str {
        "flightline_concat_operator"
    }
}
