//! `prometheus_gauges`: result rows become gauge samples through the `metrics` facade, in the
//! manner of sql_exporter. `key_labels` columns become labels, each `values` column becomes a
//! sample (labelled with `value_label` = the column name when there are several), static
//! labels are added, NULL values are skipped.
//!
//! With `metric = "log_rows"`, `key_labels = ["level"]`, `values = ["rows"]`, a result row
//! `level = 2, rows = 40` sets `log_rows{level="2"} 40`. The recorder (the runner's Prometheus
//! exporter) decides where samples go.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use flightline_core::metrics::{MetricKind, claim_metric_name};
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use serde::Deserialize;

use super::cells::text;
use super::grouping::column_list;
use crate::error::PluginsError;

/// Options of `prometheus_gauges`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusGaugesOptions {
    /// The gauge name (`[a-zA-Z_:][a-zA-Z0-9_:]*`, not starting with `flightline_`, which is the
    /// host's, and not used with another type by a plugin or another processor).
    pub metric: String,
    /// Columns whose values become labels (named after the column).
    #[serde(default)]
    pub key_labels: Vec<String>,
    /// Numeric columns whose values become samples.
    pub values: Vec<String>,
    /// The label naming the value column; required when `values` has more than one column.
    #[serde(default)]
    pub value_label: Option<String>,
    /// Labels added to every sample.
    #[serde(default)]
    pub static_labels: BTreeMap<String, String>,
    /// The gauge's help text.
    #[serde(default)]
    pub help: Option<String>,
}

/// The `prometheus_gauges` processor. See [`PrometheusGaugesOptions`].
pub struct PrometheusGauges {
    options: PrometheusGaugesOptions,
    keys: Vec<usize>,
    values: Vec<usize>,
    samples: u64,
    nulls: u64,
}

impl PrometheusGauges {
    /// A `prometheus_gauges` with `options`, checked as sql_exporter checks its collectors.
    pub fn new(options: PrometheusGaugesOptions) -> Result<Self, PluginsError> {
        let refuse = |m: String| super::options_error("prometheus_gauges", m);
        if !valid_name(&options.metric, true) {
            return Err(refuse(format!(
                "`metric` {:?} is not a Prometheus metric name",
                options.metric
            )));
        }
        // A name the host owns, or one another emitter records with another type, would give
        // the scrape two `# TYPE` lines and Prometheus would drop all of it.
        claim_metric_name(&options.metric, MetricKind::Gauge, "prometheus_gauges")
            .map_err(|err| refuse(format!("`metric`: {err}")))?;
        if options.values.is_empty() {
            return Err(refuse("`values` is empty; name at least one numeric column".into()));
        }
        if options.values.len() > 1 && options.value_label.is_none() {
            return Err(refuse(
                "several `values` columns need a `value_label` to tell their samples apart".into(),
            ));
        }
        let labels = options
            .key_labels
            .iter()
            .chain(options.value_label.iter())
            .chain(options.static_labels.keys());
        let mut seen = std::collections::HashSet::new();
        for label in labels {
            if !valid_name(label, false) {
                return Err(refuse(format!("{label:?} is not a Prometheus label name")));
            }
            if !seen.insert(label) {
                return Err(refuse(format!("the label {label:?} is given twice")));
            }
        }
        if let Some(help) = &options.help {
            metrics::describe_gauge!(options.metric.clone(), help.clone());
        }
        Ok(Self { options, keys: Vec::new(), values: Vec::new(), samples: 0, nulls: 0 })
    }

    fn emit(&mut self, keys: &[ArrayRef], values: &[ArrayRef], rows: usize) {
        let fixed: Vec<metrics::Label> = self
            .options
            .static_labels
            .iter()
            .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
            .collect();
        for row in 0..rows {
            let mut labels = fixed.clone();
            for (name, column) in self.options.key_labels.iter().zip(keys) {
                labels.push(metrics::Label::new(name.clone(), text(column, row)));
            }
            for (name, column) in self.options.values.iter().zip(values) {
                let column = column.as_primitive::<Float64Type>();
                if column.is_null(row) {
                    self.nulls += 1;
                    continue;
                }
                let mut labels = labels.clone();
                if let Some(value_label) = &self.options.value_label {
                    labels.push(metrics::Label::new(value_label.clone(), name.clone()));
                }
                metrics::gauge!(self.options.metric.clone(), labels).set(column.value(row));
                self.samples += 1;
            }
        }
    }
}

fn valid_name(name: &str, metric: bool) -> bool {
    let extra = |c: char| c == '_' || (metric && c == ':');
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || extra(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || extra(c))
}

fn resolve(schema: &SchemaRef, names: &[String], what: &str) -> Result<Vec<usize>, ProcessError> {
    names
        .iter()
        .map(|name| {
            schema.index_of(name).map_err(|_| {
                ProcessError::new(format!(
                    "no {what} column `{name}` in the result; the columns are: {}",
                    column_list(schema)
                ))
            })
        })
        .collect()
}

#[async_trait]
impl BatchProcessor for PrometheusGauges {
    fn name(&self) -> &str {
        "prometheus_gauges"
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        self.keys = resolve(schema, &self.options.key_labels, "key label")?;
        self.values = resolve(schema, &self.options.values, "value")?;
        for &i in &self.values {
            let field = schema.field(i);
            if !field.data_type().is_numeric() {
                return Err(ProcessError::new(format!(
                    "value column `{}` is {}, not a number",
                    field.name(),
                    field.data_type()
                )));
            }
        }
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let keys: Vec<ArrayRef> = self.keys.iter().map(|&i| batch.column(i).clone()).collect();
        let values = self
            .values
            .iter()
            .map(|&i| cast(batch.column(i), &DataType::Float64))
            .collect::<Result<Vec<_>, _>>()?;
        self.emit(&keys, &values, batch.num_rows());
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let mut report = Report::default();
        report.counts.insert("samples".into(), self.samples);
        report.counts.insert("nulls_skipped".into(), self.nulls);
        Ok(report)
    }
}
