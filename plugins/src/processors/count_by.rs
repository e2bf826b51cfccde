//! `count_by`: rows where a column is at or below a threshold, counted per group of columns:
//! the guide's `process_error_logs` (`level <= 2`, counted per level and target).

use arrow::array::{Array, ArrayRef, Datum, Float64Array, Int64Array, Scalar};
use arrow::compute::cast;
use arrow::compute::kernels::cmp::lt_eq;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, Report, ReportTable, async_trait,
};
use serde::Deserialize;

use super::cells::cell;
use super::grouping::{Grouper, column_list};
use crate::error::PluginsError;

/// Options of `count_by`. The defaults are the guide's: `level <= 2` per `level` and `target`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CountByOptions {
    /// The column compared with the threshold (numeric).
    pub column: String,
    /// Rows with `column <= threshold` are counted; NULLs never are.
    pub threshold: f64,
    /// The columns whose value combinations are counted separately (none: one total).
    pub group_by: Vec<String>,
}

impl Default for CountByOptions {
    fn default() -> Self {
        Self {
            column: "level".into(),
            threshold: 2.0,
            group_by: vec!["level".into(), "target".into()],
        }
    }
}

/// The `count_by` processor. See [`CountByOptions`].
pub struct CountBy {
    options: CountByOptions,
    threshold: Option<Scalar<ArrayRef>>,
    column: usize,
    grouper: Grouper,
    counts: Vec<u64>,
    rows_seen: u64,
    rows_matched: u64,
}

impl CountBy {
    /// A `count_by` with `options`.
    pub fn new(options: CountByOptions) -> Result<Self, PluginsError> {
        if !options.threshold.is_finite() {
            return Err(super::options_error("count_by", "`threshold` must be a finite number"));
        }
        let grouper = Grouper::new(options.group_by.clone());
        Ok(Self {
            options,
            threshold: None,
            column: 0,
            grouper,
            counts: Vec::new(),
            rows_seen: 0,
            rows_matched: 0,
        })
    }

    /// The threshold as a scalar of the column's type, so that the comparison kernel compares
    /// natively. For integer columns the threshold is floored: `x <= 2.5` is `x <= 2`.
    fn threshold_for(&self, data_type: &DataType) -> Result<Scalar<ArrayRef>, String> {
        let t = self.options.threshold;
        let source: ArrayRef = if data_type.is_integer() {
            std::sync::Arc::new(Int64Array::from(vec![t.floor() as i64]))
        } else {
            std::sync::Arc::new(Float64Array::from(vec![t]))
        };
        let scalar = cast(&source, data_type)
            .ok()
            .filter(|a| a.is_valid(0))
            .ok_or_else(|| format!("threshold {t} does not fit the column's type {data_type}"))?;
        Ok(Scalar::new(scalar))
    }
}

#[async_trait]
impl BatchProcessor for CountBy {
    fn name(&self) -> &str {
        "count_by"
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let name = &self.options.column;
        self.column = schema.index_of(name).map_err(|_| {
            ProcessError::new(format!(
                "no column `{name}` to compare with the threshold; the columns are: {}",
                column_list(schema)
            ))
        })?;
        let data_type = schema.field(self.column).data_type();
        if !data_type.is_numeric() {
            return Err(ProcessError::new(format!(
                "column `{name}` is {data_type}, not a number; pick a numeric column"
            )));
        }
        self.threshold = Some(self.threshold_for(data_type).map_err(ProcessError::new)?);
        self.grouper.open(schema).map_err(ProcessError::new)
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let threshold = self.threshold.as_ref().ok_or_else(|| ProcessError::new("not opened"))?;
        self.rows_seen += batch.num_rows() as u64;
        let column: &dyn Datum = batch.column(self.column);
        let mask = lt_eq(column, threshold)?;
        let ids = self.grouper.ids_where(batch, &mask)?;
        self.rows_matched += ids.len() as u64;
        for id in ids {
            let id = id as usize;
            if id >= self.counts.len() {
                self.counts.resize(id + 1, 0);
            }
            self.counts[id] += 1;
        }
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let (order, keys) = self.grouper.sorted_keys()?;
        let mut columns: Vec<String> = self.grouper.columns().to_vec();
        columns.push("rows".into());
        let rows = order
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut row: Vec<serde_json::Value> = keys.iter().map(|k| cell(k, i)).collect();
                row.push(self.counts.get(*id as usize).copied().unwrap_or(0).into());
                row
            })
            .collect();
        let mut report = Report::default();
        report.counts.insert("rows_seen".into(), self.rows_seen);
        report.counts.insert("rows_matched".into(), self.rows_matched);
        report.counts.insert("groups".into(), self.grouper.len() as u64);
        report.tables.push(ReportTable {
            title: format!(
                "rows with {} <= {} by {}",
                self.options.column,
                self.options.threshold,
                columns[..columns.len() - 1].join(", ")
            ),
            columns,
            rows,
        });
        Ok(report)
    }
}
