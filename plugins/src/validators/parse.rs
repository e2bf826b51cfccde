//! `parse_error`, `empty_query`, `multiple_statements`.

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};

use super::codes;

/// Refuses SQL that does not parse, holds no statement, or holds several.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseValidator;

#[async_trait]
impl QueryValidator for ParseValidator {
    fn name(&self) -> &str {
        "parse"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let statements = match ctx.statements() {
            Ok(statements) => statements,
            Err(error) => return vec![parse_error(&error.to_string(), ctx)],
        };
        match statements.len() {
            0 => vec![Finding::new(
                Severity::Deny,
                codes::EMPTY_QUERY,
                "the SQL holds no statement",
                "pass one SELECT statement",
            )],
            1 => Vec::new(),
            n => vec![Finding::new(
                Severity::Deny,
                codes::MULTIPLE_STATEMENTS,
                format!("the SQL holds {n} statements; a Flight SQL query runs exactly one"),
                "send each statement as its own query",
            )],
        }
    }
}

fn parse_error(message: &str, ctx: &ValidationContext) -> Finding {
    let position = ctx.parse_error_position();
    let recommendation = match position {
        Some(position) => format!("fix the SQL near {position}"),
        None => "fix the SQL syntax".to_string(),
    };
    Finding::new(Severity::Deny, codes::PARSE_ERROR, message, recommendation).at(position)
}
