//! `no_time_filter`.

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, Select, Statement, visit_relations};

use super::ast::{column_refs, cte_names, for_each_select, is_comparison, operands};
use super::codes;

/// Warns when a query reads tables with nothing restricting it in time: no time range sent with
/// it, and no `WHERE` (in the query, a CTE, a derived table or a subquery) that restricts a
/// time column.
///
/// A `WHERE` restricts time when its `AND`-chain holds a comparison (`<`, `<=`, `=`, `>=`, `>`),
/// a `BETWEEN` or an `IN` list between an expression of a time column (`time`,
/// `date_trunc('day', time)`) and an expression without columns (`now() - interval '1 day'`, a
/// literal, a scalar subquery); an `OR` restricts when both sides do. `NOT`, `<>` and
/// column-to-column comparisons do not. A time column is a timestamp or date column of the
/// result schema when it is known, or a column named `time`, `timestamp`, `ts`, `date`,
/// `datetime`, or ending in `_time`, `_timestamp`, `_ts`, `_date` or `_at`.
#[derive(Debug, Clone, Default)]
pub struct TimeFilterValidator {
    extra_time_columns: Vec<String>,
}

impl TimeFilterValidator {
    /// Also treats these column names (case-insensitive) as time columns.
    pub fn with_time_columns(columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { extra_time_columns: columns.into_iter().map(|c| c.into().to_lowercase()).collect() }
    }
}

/// Whether a column name looks like a time column (see [`TimeFilterValidator`]).
pub fn is_time_column_name(name: &str) -> bool {
    let name = name.to_lowercase();
    matches!(name.as_str(), "time" | "timestamp" | "ts" | "date" | "datetime")
        || ["_time", "_timestamp", "_ts", "_date", "_at"]
            .iter()
            .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

#[async_trait]
impl QueryValidator for TimeFilterValidator {
    fn name(&self) -> &str {
        "time-filter"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        if ctx.time_range().is_some() {
            return Vec::new();
        }
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        let time_columns = self.time_columns(ctx);
        let is_time =
            |name: &str| is_time_column_name(name) || time_columns.iter().any(|c| c == name);
        statements
            .iter()
            .filter(|s| matches!(s, Statement::Query(_)))
            .filter(|s| reads_a_table(s) && !restricts_time_anywhere(s, &is_time))
            .map(|_| finding())
            .collect()
    }
}

impl TimeFilterValidator {
    fn time_columns(&self, ctx: &ValidationContext) -> Vec<String> {
        let from_schema =
            ctx.schema().into_iter().flat_map(|s| s.temporal_columns()).map(str::to_lowercase);
        self.extra_time_columns.iter().cloned().chain(from_schema).collect()
    }
}

/// Whether `statement` names a relation other than its own CTEs (`SELECT 1`,
/// `SELECT * FROM (VALUES ...)` and `WITH x AS (SELECT 1) SELECT * FROM x` read nothing).
fn reads_a_table(statement: &Statement) -> bool {
    let ctes = cte_names(statement);
    visit_relations(statement, |name| {
        let last = name.0.last().and_then(|part| part.as_ident()).map(|i| i.value.to_lowercase());
        match last {
            Some(table) if ctes.contains(&table) && name.0.len() == 1 => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        }
    })
    .is_break()
}

fn restricts_time_anywhere(statement: &Statement, is_time: &dyn Fn(&str) -> bool) -> bool {
    let mut found = false;
    for_each_select(statement, |select: &Select| {
        found = found
            || select.selection.as_ref().is_some_and(|w| restricts_time(w, is_time))
            || select.prewhere.as_ref().is_some_and(|w| restricts_time(w, is_time));
    });
    found
}

/// Chains of `AND`/`OR` are flattened rather than recursed into, so recursion only follows
/// the alternation of `AND` and `OR`, which needs parentheses and is bounded by the parser's
/// nesting limit.
fn restricts_time(expr: &Expr, is_time: &dyn Fn(&str) -> bool) -> bool {
    operands(expr, &BinaryOperator::And).into_iter().any(|conjunct| {
        let disjuncts = operands(conjunct, &BinaryOperator::Or);
        if disjuncts.len() > 1 {
            disjuncts.into_iter().all(|d| restricts_time(d, is_time))
        } else {
            restricts_alone(conjunct, is_time)
        }
    })
}

/// A single predicate (not an `AND`/`OR` chain) restricting a time column.
fn restricts_alone(expr: &Expr, is_time: &dyn Fn(&str) -> bool) -> bool {
    match expr {
        Expr::BinaryOp { left, op, right } if is_comparison(op) && *op != BinaryOperator::NotEq => {
            bounds(left, &[right], is_time) || bounds(right, &[left], is_time)
        }
        Expr::Between { expr, negated: false, low, high } => bounds(expr, &[low, high], is_time),
        Expr::InList { expr, list, negated: false } => {
            bounds(expr, &list.iter().collect::<Vec<_>>(), is_time)
        }
        _ => false,
    }
}

/// `subject` is an expression of a time column and every `limit` is free of columns.
fn bounds(subject: &Expr, limits: &[&Expr], is_time: &dyn Fn(&str) -> bool) -> bool {
    column_refs(subject).iter().any(|c| is_time(&c.name))
        && limits.iter().all(|limit| column_refs(limit).is_empty())
}

fn finding() -> Finding {
    Finding::new(
        Severity::Warn,
        codes::NO_TIME_FILTER,
        "no time restriction: no time range is given and no WHERE clause restricts a time column, \
         so the server scans all of history",
        "pass a time range (--begin/--end or --last 1h; query_range_begin/query_range_end headers) \
         or add WHERE time >= now() - interval '1 day'",
    )
}
