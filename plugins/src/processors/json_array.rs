//! The result as one JSON array of objects, one object per row (`flightline query --format
//! json`).

use std::io::BufWriter;

use arrow::datatypes::SchemaRef;
use arrow::json::ArrayWriter;
use arrow::record_batch::RecordBatch;
use flightline_core::process::ProcessError;

use super::sink::{SinkFormat, SinkOutput};

/// The JSON array format: `[{"n":1},{"n":2}]`, `[]` for no rows, no newline at the end.
#[derive(Debug, Clone, Default)]
pub struct JsonArrayFormat;

impl SinkFormat for JsonArrayFormat {
    type Writer = ArrayWriter<BufWriter<SinkOutput>>;

    fn open(&self, out: SinkOutput, _schema: &SchemaRef) -> Result<Self::Writer, ProcessError> {
        Ok(ArrayWriter::new(BufWriter::new(out)))
    }

    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError> {
        writer.write(batch).map_err(|err| ProcessError::with_source("cannot write JSON", err))
    }

    fn close(mut writer: Self::Writer) -> Result<SinkOutput, ProcessError> {
        writer.finish().map_err(|err| ProcessError::with_source("cannot finish JSON", err))?;
        writer
            .into_inner()
            .into_inner()
            .map_err(|err| ProcessError::with_source("cannot flush the JSON", err.into_error()))
    }
}
