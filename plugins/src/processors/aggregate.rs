//! `aggregate`: group by chosen columns with count / sum / min / max / mean of value columns.
//!
//! Each batch is sorted by group id (a kernel), the value columns are taken in that order, and
//! each group's run is aggregated on a zero-copy slice. Integer sums are exact: every value is
//! widened to `i128` before it is added (arrow's `sum` kernel wraps at the 64-bit bounds), and
//! a total that no 64-bit integer can hold is an error naming the column, never a rounded or
//! wrapped number.

use arrow::array::PrimitiveArray;
use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::kernels::aggregate::{max, min, sum};
use arrow::compute::{cast, partition, sort_to_indices, take};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int64Type, SchemaRef, UInt64Type,
};
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

/// How a value column is read: integers stay exact (signed as `Int64`, unsigned as `UInt64`, so
/// that no value above `i64::MAX` becomes NULL in a cast), other numbers as `Float64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Signed,
    Unsigned,
    Float,
}

impl ValueKind {
    fn of(data_type: &DataType) -> Self {
        if data_type.is_signed_integer() {
            ValueKind::Signed
        } else if data_type.is_unsigned_integer() {
            ValueKind::Unsigned
        } else {
            ValueKind::Float
        }
    }

    fn arrow_type(self) -> DataType {
        match self {
            ValueKind::Signed => DataType::Int64,
            ValueKind::Unsigned => DataType::UInt64,
            ValueKind::Float => DataType::Float64,
        }
    }
}

/// Running aggregates of one value column in one group. Integer columns keep exact sums.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u64,
    int_sum: i128,
    float_sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    int_min: Option<i128>,
    int_max: Option<i128>,
}

impl Acc {
    /// Adds a slice of integers, each widened to `i128` first: no partial sum wraps.
    fn add_integers<T>(&mut self, part: &PrimitiveArray<T>) -> Option<()>
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i128>,
    {
        let mut total: i128 = 0;
        for value in part.iter().flatten() {
            total = total.checked_add(value.into())?;
        }
        self.int_sum = self.int_sum.checked_add(total)?;
        self.int_min = opt(self.int_min, min(part).map(Into::into), i128::min);
        self.int_max = opt(self.int_max, max(part).map(Into::into), i128::max);
        Some(())
    }
}

/// The `aggregate` processor. See [`AggregateOptions`].
pub struct Aggregate {
    options: AggregateOptions,
    grouper: Grouper,
    values: Vec<(usize, ValueKind)>,
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
            .map(|(index, kind)| {
                Ok(take(&cast(batch.column(*index), &kind.arrow_type())?, &order, None)?)
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
                let added = match self.values[v].1 {
                    ValueKind::Signed => acc.add_integers(part.as_primitive::<Int64Type>()),
                    ValueKind::Unsigned => acc.add_integers(part.as_primitive::<UInt64Type>()),
                    ValueKind::Float => {
                        let part = part.as_primitive::<Float64Type>();
                        acc.float_sum += sum(part).unwrap_or(0.0);
                        acc.min = opt(acc.min, min(part), f64::min);
                        acc.max = opt(acc.max, max(part), f64::max);
                        Some(())
                    }
                };
                added.ok_or_else(|| self.overflow(v))?;
            }
        }
        Ok(())
    }

    /// The error of a sum of value column `v` that no integer type here can hold.
    fn overflow(&self, v: usize) -> ProcessError {
        let name = self.options.columns.get(v).map_or("?", String::as_str);
        ProcessError::new(format!(
            "sum({name}) overflows: the sum of column `{name}` is beyond the 64-bit integer \
             range, so it cannot be reported exactly; aggregate `mean` instead, or cast `{name}` \
             to DOUBLE in the SQL for an approximate sum"
        ))
    }

    fn value(
        &self,
        acc: &Acc,
        v: usize,
        function: AggregateFunction,
    ) -> Result<serde_json::Value, ProcessError> {
        use AggregateFunction::*;
        let null = serde_json::Value::Null;
        let integer = self.values[v].1 != ValueKind::Float;
        Ok(match (function, integer) {
            (Count, _) => acc.count.into(),
            (_, _) if acc.count == 0 => null,
            (Sum, true) => exact(acc.int_sum).ok_or_else(|| self.overflow(v))?,
            (Sum, false) => float(acc.float_sum),
            (Min, true) => acc.int_min.and_then(exact).unwrap_or(null),
            (Max, true) => acc.int_max.and_then(exact).unwrap_or(null),
            (Min, false) => acc.min.map_or(null, float),
            (Max, false) => acc.max.map_or(null, float),
            (Mean, true) => float(acc.int_sum as f64 / acc.count as f64),
            (Mean, false) => float(acc.float_sum / acc.count as f64),
        })
    }
}

/// An integer as an exact JSON number, when a 64-bit integer (signed or not) holds it.
fn exact(value: i128) -> Option<serde_json::Value> {
    i64::try_from(value).map(Into::into).or_else(|_| u64::try_from(value).map(Into::into)).ok()
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
                Ok((index, ValueKind::of(data_type)))
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
            for v in 0..self.values.len() {
                let acc = self.accs.get(group).and_then(|a| a.get(v)).copied().unwrap_or_default();
                for function in &self.options.functions {
                    row.push(self.value(&acc, v, *function)?);
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
