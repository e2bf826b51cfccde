//! `not_read_only`.

use std::ops::ControlFlow;

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::{Select, Statement, Visit, Visitor};

use super::codes;

/// Refuses anything but reading: analytics jobs do not mutate. Allowed are queries, `EXPLAIN`
/// and `SHOW`; every statement is checked, also those nested in another (`EXPLAIN ANALYZE
/// DELETE ...`, a data-modifying CTE), and `SELECT ... INTO` (which creates a table) is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyValidator;

#[async_trait]
impl QueryValidator for ReadOnlyValidator {
    fn name(&self) -> &str {
        "read-only"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        let mut writes = Writes::default();
        for statement in statements {
            let _ = statement.visit(&mut writes);
        }
        writes.kinds.dedup();
        writes.kinds.into_iter().map(refusal).collect()
    }
}

#[derive(Default)]
struct Writes {
    kinds: Vec<String>,
}

impl Visitor for Writes {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !is_read_only(statement) {
            self.kinds.push(statement_kind(statement));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            self.kinds.push("SELECT INTO".to_string());
        }
        ControlFlow::Continue(())
    }
}

fn is_read_only(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
    )
}

/// The statement's leading keywords as the SQL spells them (`INSERT`, `DROP TABLE`, `COPY`).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .take(2)
        .collect();
    match words.as_slice() {
        [] => "a non-query".to_string(),
        [first, second] if is_object_keyword(second) => format!("{first} {second}"),
        [first, ..] => (*first).to_string(),
    }
}

fn is_object_keyword(word: &str) -> bool {
    matches!(
        word.to_ascii_uppercase().as_str(),
        "TABLE"
            | "VIEW"
            | "INDEX"
            | "SCHEMA"
            | "DATABASE"
            | "FUNCTION"
            | "EXTERNAL"
            | "INTO"
            | "FROM"
    )
}

fn refusal(kind: String) -> Finding {
    Finding::new(
        Severity::Deny,
        codes::NOT_READ_ONLY,
        format!("{kind} is not a read-only query: analytics jobs only read"),
        "run only SELECT queries (or EXPLAIN/SHOW); make changes to data outside Flightline",
    )
}
