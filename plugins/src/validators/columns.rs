//! `too_many_columns` and `row_size_too_large`: rules on the result schema.

use async_trait::async_trait;
use flightline_core::schema::format_bytes;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};

use super::codes;

/// Warns when the result has more columns than the limit. Silent without a schema analysis.
#[derive(Debug, Clone, Copy)]
pub struct ColumnCountValidator {
    max_columns: usize,
}

impl ColumnCountValidator {
    /// Warns above `max_columns` columns.
    pub fn new(max_columns: usize) -> Self {
        Self { max_columns }
    }
}

impl Default for ColumnCountValidator {
    fn default() -> Self {
        Self::new(super::ValidatorLimits::default().max_columns)
    }
}

#[async_trait]
impl QueryValidator for ColumnCountValidator {
    fn name(&self) -> &str {
        "column-count"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        match ctx.schema() {
            Some(schema) if schema.column_count > self.max_columns => vec![Finding::new(
                Severity::Warn,
                codes::TOO_MANY_COLUMNS,
                format!(
                    "the result has {} columns (limit {})",
                    schema.column_count, self.max_columns
                ),
                "select only the columns the job uses, or split the query",
            )],
            _ => Vec::new(),
        }
    }
}

/// Warns when the estimated row size exceeds the limit. Silent without a schema analysis.
#[derive(Debug, Clone, Copy)]
pub struct RowSizeValidator {
    max_row_bytes: f64,
}

impl RowSizeValidator {
    /// Warns above `max_row_bytes` estimated bytes per row.
    pub fn new(max_row_bytes: f64) -> Self {
        Self { max_row_bytes }
    }
}

impl Default for RowSizeValidator {
    fn default() -> Self {
        Self::new(super::ValidatorLimits::default().max_row_bytes)
    }
}

#[async_trait]
impl QueryValidator for RowSizeValidator {
    fn name(&self) -> &str {
        "row-size"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        match ctx.schema() {
            Some(schema) if schema.estimated_row_bytes > self.max_row_bytes => {
                vec![Finding::new(
                    Severity::Warn,
                    codes::ROW_SIZE_TOO_LARGE,
                    format!(
                        "estimated row size is {} bytes (limit {}): a large result will not fit \
                         in memory at once",
                        format_bytes(schema.estimated_row_bytes),
                        format_bytes(self.max_row_bytes)
                    ),
                    "stream the result batch by batch (query_stream, or a job with processors) \
                     instead of collecting it, and drop wide columns you do not need",
                )]
            }
            _ => Vec::new(),
        }
    }
}
