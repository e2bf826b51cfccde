//! What a validator is given.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, SetExpr, Statement, Value, VisitMut, VisitorMut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};

use super::finding::Position;
use crate::schema::SchemaAnalysis;
use crate::time::TimeRange;

/// Parses `sql` the way validation does: sqlparser's `GenericDialect`, the dialect DataFusion's
/// own SQL front end starts from, so DataFusion-style SQL (`now() - interval '1 day'`,
/// `x::timestamp`, table functions such as `view_instance('log_entries', 'p')`) parses.
pub fn parse_sql(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::parse_sql(&GenericDialect {}, sql)
}

/// Everything a [`QueryValidator`](super::QueryValidator) may look at. Built once per query and
/// shared by every validator of a pipeline.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    sql: String,
    statements: Result<Vec<Statement>, ParserError>,
    schema: Option<SchemaAnalysis>,
    time_range: Option<TimeRange>,
}

impl ValidationContext {
    /// Parses `sql` (see [`parse_sql`]); a parse error is kept for the validators to report.
    pub fn new(sql: impl Into<String>) -> Self {
        let sql = sql.into();
        let statements = parse_sql(&sql);
        Self { sql, statements, schema: None, time_range: None }
    }

    /// Adds the analysis of the query's result schema (from `prepare`).
    pub fn with_schema(mut self, schema: SchemaAnalysis) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Adds the time range the query will be sent with.
    pub fn with_time_range(mut self, range: TimeRange) -> Self {
        self.time_range = Some(range);
        self
    }

    /// Sets or clears the time range.
    pub fn set_time_range(&mut self, range: Option<TimeRange>) {
        self.time_range = range;
    }

    /// The SQL text as given.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The parsed statements, or the parser's error.
    pub fn statements(&self) -> Result<&[Statement], &ParserError> {
        self.statements.as_deref()
    }

    /// The parser's error, when the SQL does not parse.
    pub fn parse_error(&self) -> Option<&ParserError> {
        self.statements.as_ref().err()
    }

    /// Where the parser stopped: read from sqlparser's `at Line: L, Column: C` suffix, or the
    /// end of the text when the parser ran out of input (it gives no position for `EOF`).
    pub fn parse_error_position(&self) -> Option<Position> {
        let message = self.parse_error()?.to_string();
        position_in(&message).or_else(|| message.ends_with("found: EOF").then(|| end_of(&self.sql)))
    }

    /// The analysis of the result schema, when the server was asked.
    pub fn schema(&self) -> Option<&SchemaAnalysis> {
        self.schema.as_ref()
    }

    /// The time range the query will be sent with, if any.
    pub fn time_range(&self) -> Option<&TimeRange> {
        self.time_range.as_ref()
    }
}

/// The position just after the last character of `text`.
fn end_of(text: &str) -> Position {
    let line = text.split('\n').count().max(1);
    let last = text.rsplit('\n').next().unwrap_or("");
    Position { line: line as u64, column: last.chars().count() as u64 + 1 }
}

/// Dropping a parsed statement recurses once per level of the tree, and generated SQL (a
/// filter of 100 000 `OR`ed ids, thousands of `UNION ALL` branches) parses into chains deep
/// enough to overflow the stack on drop. Unchain them first, without recursion.
impl Drop for ValidationContext {
    fn drop(&mut self) {
        if let Ok(statements) = &mut self.statements {
            for statement in statements.iter_mut() {
                let _ = statement.visit(&mut Unchain);
            }
        }
    }
}

/// Replaces each operator chain by a leaf and frees the chain's links one at a time.
struct Unchain;

impl VisitorMut for Unchain {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if matches!(expr, Expr::BinaryOp { .. } | Expr::Nested(_) | Expr::UnaryOp { .. }) {
            let mut pending = vec![std::mem::replace(expr, Expr::Value(Value::Null.into()))];
            while let Some(link) = pending.pop() {
                match link {
                    Expr::BinaryOp { left, right, .. } => pending.extend([*left, *right]),
                    Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => pending.push(*inner),
                    // Any other node is dropped normally; its own chains were not reached by the
                    // visitor, but a chain hanging off a leaf of another chain is rare.
                    other => drop(other),
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if matches!(query.body.as_ref(), SetExpr::SetOperation { .. }) {
            let placeholder = SetExpr::Values(sqlparser::ast::Values {
                explicit_row: false,
                value_keyword: false,
                rows: Vec::new(),
            });
            let mut pending = vec![std::mem::replace(query.body.as_mut(), placeholder)];
            while let Some(link) = pending.pop() {
                if let SetExpr::SetOperation { left, right, .. } = link {
                    pending.extend([*left, *right]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Reads sqlparser's `at Line: L, Column: C` suffix.
fn position_in(message: &str) -> Option<Position> {
    let (_, tail) = message.rsplit_once("at Line: ")?;
    let (line, rest) = tail.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Position { line: line.trim().parse().ok()?, column: column.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_position_is_read_from_the_parser_message() {
        let ctx = ValidationContext::new("SELECT a\nFROM t WHERE x = = 1");
        assert_eq!(ctx.parse_error_position(), Some(Position { line: 2, column: 18 }));
    }

    #[test]
    fn running_out_of_input_points_at_the_end_of_the_text() {
        let ctx = ValidationContext::new("SELECT a\nFROM t WHERE");
        assert!(ctx.parse_error().is_some_and(|e| e.to_string().ends_with("found: EOF")));
        assert_eq!(ctx.parse_error_position(), Some(Position { line: 2, column: 13 }));
    }

    #[test]
    fn valid_sql_has_no_parse_error() {
        let ctx = ValidationContext::new(
            "SELECT time FROM log_entries WHERE time > now() - interval '1 day'",
        );
        assert!(ctx.parse_error().is_none());
        assert_eq!(ctx.statements().map(<[Statement]>::len), Ok(1));
    }

    #[test]
    fn position_parser_ignores_messages_without_one() {
        assert_eq!(position_in("recursion limit exceeded"), None);
        assert_eq!(
            position_in("Expected: x, found: y at Line: 3, Column: 14"),
            Some(Position { line: 3, column: 14 })
        );
    }
}
