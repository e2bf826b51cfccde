//! # top_targets — an example Flightline plugin in Rust
//!
//! The targets (modules) that logged the most errors in the window: rows of `log_entries` whose
//! `level` is at most `max_level` (Micromegas levels: 1 fatal, 2 error, 3 warn, 4 info, ...),
//! counted per `target`, the `top` largest reported as a table.
//!
//! The same type is a statically linked [`BatchProcessor`] (this crate's rlib) and, through
//! [`flightline_core::export_processor!`], a plugin (`libtop_targets.so`, the cdylib). A job loads
//! the plugin with
//!
//! ```toml
//! [[jobs.processors]]
//! plugin = "target/debug/libtop_targets.so"
//! sha256 = "…"            # optional: `flightline plugins inspect` prints it
//! options = { top = 5, max_level = 2 }
//! ```
#![warn(missing_docs)]

use std::collections::HashMap;

use arrow::array::{Array, AsArray, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use flightline_core::plugin::export::FromOptions;
use flightline_core::plugin::host;
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, Report, ReportTable, async_trait,
};
use serde::Deserialize;

/// The options of [`TopTargets`], from the job config's `options` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// How many targets to report.
    pub top: usize,
    /// Count rows with `level <= max_level`.
    pub max_level: i32,
    /// The target column (Utf8 or a Utf8 dictionary).
    pub target_column: String,
    /// The level column (Int32).
    pub level_column: String,
}

impl Default for Options {
    fn default() -> Self {
        Self { top: 10, max_level: 2, target_column: "target".into(), level_column: "level".into() }
    }
}

/// Counts error rows per target; reports the `top` targets.
#[derive(Debug, Default)]
pub struct TopTargets {
    options: Options,
    per_target: HashMap<String, u64>,
    rows: u64,
    matched: u64,
}

impl TopTargets {
    /// A processor with these options.
    pub fn new(options: Options) -> Self {
        Self { options, ..Self::default() }
    }

    fn columns<'a>(
        &self,
        batch: &'a RecordBatch,
    ) -> Result<(&'a Int32Array, &'a dyn Array), ProcessError> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                ProcessError::new(format!("top_targets: the result has no column `{name}`"))
            })
        };
        let levels = column(&self.options.level_column)?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| ProcessError::new("top_targets: the level column must be Int32"))?;
        Ok((levels, column(&self.options.target_column)?.as_ref()))
    }

    /// Counts per dictionary key first: one hash lookup per distinct target, not per row.
    fn count_dictionary(
        &mut self,
        levels: &Int32Array,
        targets: &dyn Array,
    ) -> Result<(), ProcessError> {
        let dict = targets
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| ProcessError::new("top_targets: dictionary keys must be Int32"))?;
        let values = dict
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| ProcessError::new("top_targets: dictionary values must be Utf8"))?;
        let mut per_key = vec![0u64; values.len()];
        for (i, key) in dict.keys().iter().enumerate() {
            if let Some(key) = key
                && levels.is_valid(i)
                && levels.value(i) <= self.options.max_level
                && let Some(slot) = per_key.get_mut(key as usize)
            {
                *slot += 1;
            }
        }
        for (key, rows) in per_key.into_iter().enumerate().filter(|(_, rows)| *rows > 0) {
            self.matched += rows;
            *self.per_target.entry(values.value(key).to_string()).or_default() += rows;
        }
        Ok(())
    }

    fn count_strings(
        &mut self,
        levels: &Int32Array,
        targets: &dyn Array,
    ) -> Result<(), ProcessError> {
        let targets = arrow::compute::cast(targets, &DataType::Utf8)?;
        let targets = targets.as_string::<i32>();
        for i in 0..levels.len() {
            if levels.is_valid(i)
                && levels.value(i) <= self.options.max_level
                && targets.is_valid(i)
            {
                self.matched += 1;
                *self.per_target.entry(targets.value(i).to_string()).or_default() += 1;
            }
        }
        Ok(())
    }
}

impl FromOptions for TopTargets {
    fn from_options(options: serde_json::Value) -> Result<Self, ProcessError> {
        serde_json::from_value(options)
            .map(Self::new)
            .map_err(|e| ProcessError::new(format!("top_targets options: {e}")))
    }
}

#[async_trait]
impl BatchProcessor for TopTargets {
    fn name(&self) -> &str {
        "top_targets"
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        for name in [&self.options.level_column, &self.options.target_column] {
            if schema.column_with_name(name).is_none() {
                return Err(ProcessError::new(format!(
                    "top_targets: the result has no column `{name}`"
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
        let (levels, targets) = self.columns(batch)?;
        self.rows += batch.num_rows() as u64;
        if matches!(targets.data_type(), DataType::Dictionary(..)) {
            self.count_dictionary(levels, targets)?;
        } else {
            self.count_strings(levels, targets)?;
        }
        host::counter("top_targets_rows_total", &[], batch.num_rows() as u64);
        Ok(())
    }

    async fn finish(&mut self, ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let mut ranked: Vec<(&String, &u64)> = self.per_target.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        ranked.truncate(self.options.top);
        let mut report = Report::default();
        report.counts.insert("rows".into(), self.rows);
        report.counts.insert("error_rows".into(), self.matched);
        report.counts.insert("targets".into(), self.per_target.len() as u64);
        report.tables.push(ReportTable {
            title: format!(
                "top {} targets with level <= {}",
                self.options.top, self.options.max_level
            ),
            columns: vec!["target".into(), "rows".into()],
            rows: ranked.iter().map(|(t, n)| vec![(*t).clone().into(), (**n).into()]).collect(),
        });
        if let Some(window) = &ctx.window {
            report.notes.push(format!("window {window}"));
        }
        host::log(
            tracing::Level::INFO,
            &format!(
                "top_targets: {} error rows in {} targets",
                self.matched,
                self.per_target.len()
            ),
        );
        Ok(report)
    }
}

flightline_core::export_processor!(TopTargets, name = "top_targets");
