//! `print`: the first N rows of the result as a table on standard output.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use serde::Deserialize;

/// Options of `print`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrintOptions {
    /// How many rows to show (default 10).
    pub rows: usize,
}

impl Default for PrintOptions {
    fn default() -> Self {
        Self { rows: 10 }
    }
}

/// The `print` processor. Keeps at most `rows` rows (slices of the first batches).
pub struct Print {
    options: PrintOptions,
    kept: Vec<RecordBatch>,
    kept_rows: usize,
    total: u64,
}

impl Print {
    /// A `print` with `options`.
    pub fn new(options: PrintOptions) -> Self {
        Self { options, kept: Vec::new(), kept_rows: 0, total: 0 }
    }

    /// The table `finish` prints.
    pub fn render(&self) -> Result<String, ProcessError> {
        Ok(pretty_format_batches(&self.kept)?.to_string())
    }
}

#[async_trait]
impl BatchProcessor for Print {
    fn name(&self) -> &str {
        "print"
    }

    async fn open(
        &mut self,
        _schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        self.total += batch.num_rows() as u64;
        let wanted = self.options.rows.saturating_sub(self.kept_rows).min(batch.num_rows());
        if wanted > 0 {
            // A copy, not a slice: a slice would keep the whole batch's buffers alive.
            let slice = batch.slice(0, wanted);
            let columns = slice
                .columns()
                .iter()
                .map(|c| arrow::compute::concat(&[c.as_ref()]))
                .collect::<Result<Vec<_>, _>>()?;
            self.kept.push(RecordBatch::try_new(slice.schema(), columns)?);
            self.kept_rows += wanted;
        }
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let table = self.render()?;
        // `println!` panics when the reader went away (`flightline demo | head`); a closed
        // pipe only means nobody wants the table any more, which is not this job's failure.
        match flightline_core::console::print(&format!("{table}\n")) {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
            _ => {}
        }
        let mut report = Report::default();
        report.counts.insert("rows_printed".into(), self.kept_rows as u64);
        report.counts.insert("rows_seen".into(), self.total);
        Ok(report)
    }
}
