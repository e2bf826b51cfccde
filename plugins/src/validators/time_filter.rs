//! `no_time_filter`.

use std::ops::ControlFlow;

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::{
    BinaryOperator, Expr, ObjectName, Query, Select, Statement, TableFactor, Visit, Visitor,
};

use super::ast::{column_refs, is_comparison, operands};
use super::codes;

/// Warns when a query reads a table with nothing restricting it in time: no time range is sent
/// with it, and some `SELECT` that reads a table (anywhere: the outer query, a CTE, a derived
/// table, a subquery in `WHERE`, a `UNION` branch) has no `WHERE` restricting a time column.
///
/// Each `SELECT` answers for the tables in its own `FROM`: one restricted `SELECT` does not
/// cover another, so `SELECT * FROM log_entries WHERE level IN (SELECT level FROM measures
/// WHERE time > ...)` warns, because `log_entries` is scanned over all time. A `SELECT` that
/// reads only CTEs, derived tables or no table at all answers for nothing: those are checked
/// where they read their tables. A filter written outside the `SELECT` that reads the table
/// (`WITH a AS (SELECT * FROM t) SELECT * FROM a WHERE time > ...`) does not count: write it
/// inside.
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
            .filter_map(|s| unrestricted_table(s, &is_time))
            .map(|table| finding(&table))
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

/// The first table that a `SELECT` of `statement` reads without restricting time itself.
fn unrestricted_table(statement: &Statement, is_time: &dyn Fn(&str) -> bool) -> Option<String> {
    let mut scan = Scan { ctes: Vec::new(), is_time, found: None };
    let _ = statement.visit(&mut scan);
    scan.found
}

/// Walks every `SELECT`, knowing which CTE names are in scope (those of the enclosing `WITH`s;
/// a CTE's body also sees its own name, which only matters for a CTE shadowing its table).
struct Scan<'a> {
    ctes: Vec<Vec<String>>,
    is_time: &'a dyn Fn(&str) -> bool,
    found: Option<String>,
}

impl Scan<'_> {
    fn is_cte(&self, name: &ObjectName) -> bool {
        match name.0.as_slice() {
            [part] => part.as_ident().is_some_and(|ident| {
                let name = ident.value.to_lowercase();
                self.ctes.iter().flatten().any(|cte| *cte == name)
            }),
            _ => false,
        }
    }

    /// The tables `factor` reads itself (not through a subquery, which is a `SELECT` of its
    /// own), other than CTEs.
    fn base_tables(&self, factor: &TableFactor, out: &mut Vec<String>) {
        match factor {
            TableFactor::Table { name, .. } if !self.is_cte(name) => out.push(display(name)),
            TableFactor::NestedJoin { table_with_joins, .. } => {
                self.base_tables(&table_with_joins.relation, out);
                for join in &table_with_joins.joins {
                    self.base_tables(&join.relation, out);
                }
            }
            TableFactor::Pivot { table, .. }
            | TableFactor::Unpivot { table, .. }
            | TableFactor::MatchRecognize { table, .. } => self.base_tables(table, out),
            _ => {}
        }
    }

    fn restricts(&self, select: &Select) -> bool {
        [&select.selection, &select.prewhere]
            .into_iter()
            .flatten()
            .any(|filter| restricts_time(filter, self.is_time))
    }
}

impl Visitor for Scan<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let names = query.with.iter().flat_map(|with| &with.cte_tables);
        self.ctes.push(names.map(|cte| cte.alias.name.value.to_lowercase()).collect());
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if self.restricts(select) {
            return ControlFlow::Continue(());
        }
        let mut tables = Vec::new();
        for from in &select.from {
            self.base_tables(&from.relation, &mut tables);
            for join in &from.joins {
                self.base_tables(&join.relation, &mut tables);
            }
        }
        match tables.into_iter().next() {
            Some(table) => {
                self.found = Some(table);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    }
}

/// `schema.table` as written, without quoting (a table function shows its name only).
fn display(name: &ObjectName) -> String {
    let parts: Vec<&str> =
        name.0.iter().filter_map(|part| part.as_ident()).map(|i| i.value.as_str()).collect();
    parts.join(".")
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

fn finding(table: &str) -> Finding {
    Finding::new(
        Severity::Warn,
        codes::NO_TIME_FILTER,
        format!(
            "no time restriction on {table}: no time range is given and the SELECT reading it \
             has no WHERE restricting a time column, so the server scans all of its history"
        ),
        "pass a time range (--begin/--end or --last 1h; query_range_begin/query_range_end headers) \
         or add WHERE time >= now() - interval '1 day' to every SELECT that reads a table",
    )
}
