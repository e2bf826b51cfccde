//! `select_star_wide`.

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::SelectItem;

use super::ast::{result_query, result_selects};
use super::codes;

/// Flags `*` (or `t.*`) in the projection that becomes the result: `Warn` when the result
/// schema is known to have more columns than the limit, `Info` when the schema is unknown,
/// nothing when it is narrow. `SELECT *` inside a subquery whose outer query picks columns, and
/// `COUNT(*)`, are not flagged.
#[derive(Debug, Clone, Copy)]
pub struct SelectStarValidator {
    wide: usize,
}

impl SelectStarValidator {
    /// Flags results of more than `wide` columns.
    pub fn new(wide: usize) -> Self {
        Self { wide }
    }
}

impl Default for SelectStarValidator {
    fn default() -> Self {
        Self::new(super::ValidatorLimits::default().wide_select_star_columns)
    }
}

#[async_trait]
impl QueryValidator for SelectStarValidator {
    fn name(&self) -> &str {
        "select-star"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        let has_star = statements
            .iter()
            .filter_map(result_query)
            .flat_map(result_selects)
            .any(|select| select.projection.iter().any(is_wildcard));
        if !has_star {
            return Vec::new();
        }
        match ctx.schema() {
            Some(schema) if schema.column_count > self.wide => vec![Finding::new(
                Severity::Warn,
                codes::SELECT_STAR_WIDE,
                format!(
                    "SELECT * returns {} columns (more than {})",
                    schema.column_count, self.wide
                ),
                "list only the columns you need: less to scan, transfer and hold in memory",
            )],
            Some(_) => Vec::new(),
            None => vec![Finding::new(
                Severity::Info,
                codes::SELECT_STAR_WIDE,
                "SELECT * returns every column of the table, however many it has",
                "list only the columns you need",
            )],
        }
    }
}

fn is_wildcard(item: &SelectItem) -> bool {
    matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(_, _))
}
