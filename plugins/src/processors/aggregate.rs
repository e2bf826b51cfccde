//! `aggregate`: group by chosen columns with count / sum / min / max / mean of value columns.
//!
//! Each batch is sorted by group id (a kernel), the value columns are taken in that order, and
//! each group's run is aggregated with arrow's aggregate kernels on a zero-copy slice.

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::kernels::aggregate::{max, min, sum};
use arrow::compute::{cast, partition, sort_to_indices, take};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, Report, ReportTable, async_trait,
};
use serde::Deserialize;

use super::cells::{cell, float};
use super::grouping::{Grouper, column_list};
use crate::error::PluginsError;

/// One aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateFunction {
    /// Non-NULL values (`COUNT(column)`).
    Count,
    /// Sum of the non-NULL values (integers stay exact).
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean of the non-NULL values.
    Mean,
}

impl AggregateFunction {
    fn label(self) -> &'static str {
        match self {
            AggregateFunction::Count => "count",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Mean => "mean",
        }
    }
}

/// Options of `aggregate`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AggregateOptions {
    /// Group columns (none: one group for the whole result).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Numeric columns to aggregate.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Functions applied to each of `columns` (default: all five).
    #[serde(default = "all_functions")]
    pub functions: Vec<AggregateFunction>,
}

impl Default for AggregateOptions {
    fn default() -> Self {
        Self { group_by: Vec::new(), columns: Vec::new(), functions: all_functions() }
    }
}

fn all_functions() -> Vec<AggregateFunction> {
    use AggregateFunction::*;
    vec![Count, Sum, Min, Max, Mean]
}

/// Running aggregates of one value column in one group. Integer columns keep exact sums.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u64,
    int_sum: i128,
    float_sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    int_min: Option<i64>,
    int_max: Option<i64>,
}

/// The `aggregate` processor. See [`AggregateOptions`].
pub struct Aggregate {
    options: AggregateOptions,
    grouper: Grouper,
    values: Vec<(usize, bool)>,
    /// Rows per group.
    rows: Vec<u64>,
    /// `accs[group][value column]`.
    accs: Vec<Vec<Acc>>,
}

impl Aggregate {
    /// An `aggregate` with `options`.
    pub fn new(options: AggregateOptions) -> Result<Self, PluginsError> {
        if options.functions.is_empty() && options.columns.is_empty() && options.group_by.is_empty()
        {
            return Err(super::options_error(
                "aggregate",
                "nothing to compute: set `group_by` and/or `columns` (and `functions`)",
            ));
        }
        let grouper = Grouper::new(options.group_by.clone());
        Ok(Self { options, grouper, values: Vec::new(), rows: Vec::new(), accs: Vec::new() })
    }

    fn accumulate(&mut self, ids: Vec<u32>, batch: &RecordBatch) -> Result<(), ProcessError> {
        let groups = self.grouper.len();
        self.rows.resize(groups, 0);
        self.accs.resize(groups, vec![Acc::default(); self.values.len()]);
        let ids = UInt32Array::from(ids);
        let order = sort_to_indices(&ids, None, None)?;
        let sorted_ids = take(&ids, &order, None)?;
        let sorted_values = self
            .values
            .iter()
            .map(|(index, integer)| {
                let target = if *integer { DataType::Int64 } else { DataType::Float64 };
                Ok(take(&cast(batch.column(*index), &target)?, &order, None)?)
            })
            .collect::<Result<Vec<ArrayRef>, ProcessError>>()?;
        let sorted_id_values = sorted_ids.as_primitive::<arrow::datatypes::UInt32Type>();
        for range in partition(std::slice::from_ref(&sorted_ids))?.ranges() {
            let group = sorted_id_values.value(range.start) as usize;
            self.rows[group] += range.len() as u64;
            for (v, values) in sorted_values.iter().enumerate() {
                let part = values.slice(range.start, range.len());
                let acc = &mut self.accs[group][v];
                acc.count += (part.len() - part.null_count()) as u64;
                if self.values[v].1 {
                    let part = part.as_primitive::<Int64Type>();
                    acc.int_sum += sum(part).map_or(0, i128::from);
                    acc.int_min = opt(acc.int_min, min(part), i64::min);
                    acc.int_max = opt(acc.int_max, max(part), i64::max);
                } else {
                    let part = part.as_primitive::<Float64Type>();
                    acc.float_sum += sum(part).unwrap_or(0.0);
                    acc.min = opt(acc.min, min(part), f64::min);
                    acc.max = opt(acc.max, max(part), f64::max);
                }
            }
        }
        Ok(())
    }

    fn value(&self, acc: &Acc, integer: bool, function: AggregateFunction) -> serde_json::Value {
        use AggregateFunction::*;
        let null = serde_json::Value::Null;
        match (function, integer) {
            (Count, _) => acc.count.into(),
            (_, _) if acc.count == 0 => null,
            (Sum, true) => {
                i64::try_from(acc.int_sum).map_or_else(|_| float(acc.int_sum as f64), Into::into)
            }
            (Sum, false) => float(acc.float_sum),
            (Min, true) => acc.int_min.map_or(null, Into::into),
            (Max, true) => acc.int_max.map_or(null, Into::into),
            (Min, false) => acc.min.map_or(null, float),
            (Max, false) => acc.max.map_or(null, float),
            (Mean, true) => float(acc.int_sum as f64 / acc.count as f64),
            (Mean, false) => float(acc.float_sum / acc.count as f64),
        }
    }
}

fn opt<T: Copy>(current: Option<T>, next: Option<T>, pick: fn(T, T) -> T) -> Option<T> {
    match (current, next) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

#[async_trait]
impl BatchProcessor for Aggregate {
    fn name(&self) -> &str {
        "aggregate"
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        self.values = self
            .options
            .columns
            .iter()
            .map(|name| {
                let index = schema.index_of(name).map_err(|_| {
                    ProcessError::new(format!(
                        "no column `{name}` to aggregate; the columns are: {}",
                        column_list(schema)
                    ))
                })?;
                let data_type = schema.field(index).data_type();
                if !data_type.is_numeric() {
                    return Err(ProcessError::new(format!(
                        "column `{name}` is {data_type}, not a number; aggregate numeric columns"
                    )));
                }
                Ok((index, data_type.is_integer()))
            })
            .collect::<Result<_, _>>()?;
        self.grouper.open(schema).map_err(ProcessError::new)
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ids = self.grouper.ids(batch)?;
        self.accumulate(ids, batch)
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let (order, keys) = self.grouper.sorted_keys()?;
        let mut columns: Vec<String> = self.grouper.columns().to_vec();
        columns.push("rows".into());
        for name in &self.options.columns {
            for function in &self.options.functions {
                columns.push(format!("{}({name})", function.label()));
            }
        }
        let mut rows = Vec::with_capacity(order.len());
        for (i, id) in order.iter().enumerate() {
            let group = *id as usize;
            let mut row: Vec<serde_json::Value> = keys.iter().map(|k| cell(k, i)).collect();
            row.push(self.rows.get(group).copied().unwrap_or(0).into());
            for (v, (_, integer)) in self.values.iter().enumerate() {
                let acc = self.accs.get(group).and_then(|a| a.get(v)).copied().unwrap_or_default();
                for function in &self.options.functions {
                    row.push(self.value(&acc, *integer, *function));
                }
            }
            rows.push(row);
        }
        let mut report = Report::default();
        report.counts.insert("groups".into(), rows.len() as u64);
        report.counts.insert("rows".into(), self.rows.iter().sum());
        report.tables.push(ReportTable { title: "aggregate".into(), columns, rows });
        Ok(report)
    }
}
