//! `ndjson_sink`: the result as newline-delimited JSON, one object per row, written atomically.

use std::io::BufWriter;

use arrow::datatypes::SchemaRef;
use arrow::json::LineDelimitedWriter;
use arrow::record_batch::RecordBatch;
use flightline_core::process::ProcessError;
use serde::Deserialize;

use super::sink::{FileSink, SinkFormat, SinkOutput};
use crate::error::PluginsError;

/// Options of `ndjson_sink`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSinkOptions {
    /// The file path; may use `{begin}`, `{end}` and `{job}` (see [`super::PathTemplate`]).
    pub path: String,
    /// Replace an existing file (default: refuse).
    #[serde(default)]
    pub overwrite: bool,
}

/// The NDJSON format of a [`FileSink`].
#[derive(Debug, Clone, Default)]
pub struct NdjsonFormat;

/// The `ndjson_sink` processor.
pub type NdjsonSink = FileSink<NdjsonFormat>;

impl NdjsonSink {
    /// An `ndjson_sink` with `options`.
    pub fn new(options: NdjsonSinkOptions) -> Result<Self, PluginsError> {
        FileSink::with_format("ndjson_sink", &options.path, options.overwrite, NdjsonFormat)
    }
}

impl SinkFormat for NdjsonFormat {
    type Writer = LineDelimitedWriter<BufWriter<SinkOutput>>;

    fn open(&self, out: SinkOutput, _schema: &SchemaRef) -> Result<Self::Writer, ProcessError> {
        Ok(LineDelimitedWriter::new(BufWriter::new(out)))
    }

    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError> {
        writer.write(batch).map_err(|err| ProcessError::with_source("cannot write NDJSON", err))
    }

    fn close(mut writer: Self::Writer) -> Result<SinkOutput, ProcessError> {
        writer.finish().map_err(|err| ProcessError::with_source("cannot finish NDJSON", err))?;
        writer.into_inner().into_inner().map_err(|err| {
            ProcessError::with_source("cannot flush the NDJSON file", err.into_error())
        })
    }
}
