//! `order_by_without_limit`.

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::{LimitClause, OrderByKind, Query, SetExpr};

use super::ast::result_query;
use super::codes;

/// Warns when the outermost query sorts its whole result with no `LIMIT` or `FETCH`: the
/// server must buffer every row before sending the first.
///
/// Only the `ORDER BY` that orders the result counts: not one in a window's `OVER (...)`, in a
/// subquery or CTE, or inside parentheses that an outer `LIMIT` bounds. `LIMIT ALL` and a lone
/// `OFFSET` do not bound anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderByLimitValidator;

#[async_trait]
impl QueryValidator for OrderByLimitValidator {
    fn name(&self) -> &str {
        "order-by-limit"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        statements
            .iter()
            .filter_map(result_query)
            .filter(|query| sorts_unbounded(query))
            .map(|_| finding())
            .collect()
    }
}

fn sorts_unbounded(query: &Query) -> bool {
    if is_bounded(query) {
        return false;
    }
    if query.order_by.as_ref().is_some_and(|o| sorts(&o.kind)) {
        return true;
    }
    // `(SELECT ... ORDER BY x)` with nothing after the parentheses is still the outermost sort.
    match query.body.as_ref() {
        SetExpr::Query(inner) => sorts_unbounded(inner),
        _ => false,
    }
}

fn sorts(kind: &OrderByKind) -> bool {
    match kind {
        OrderByKind::All(_) => true,
        OrderByKind::Expressions(exprs) => !exprs.is_empty(),
    }
}

fn is_bounded(query: &Query) -> bool {
    query.fetch.is_some()
        || matches!(
            query.limit_clause,
            Some(LimitClause::LimitOffset { limit: Some(_), .. })
                | Some(LimitClause::OffsetCommaLimit { .. })
        )
}

fn finding() -> Finding {
    Finding::new(
        Severity::Warn,
        codes::ORDER_BY_WITHOUT_LIMIT,
        "ORDER BY without LIMIT: the server sorts the whole result before sending the first row",
        "add a LIMIT (e.g. ORDER BY time DESC LIMIT 1000), or drop the ORDER BY and sort \
         in the processor if every row is needed",
    )
}
