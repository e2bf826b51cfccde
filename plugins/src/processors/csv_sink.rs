//! `csv_sink`: the result as one CSV file, written atomically.

use std::io::BufWriter;

use arrow::csv::{Writer, WriterBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use flightline_core::process::ProcessError;
use serde::Deserialize;

use super::sink::{FileSink, SinkFormat, SinkOutput};
use crate::error::PluginsError;

/// Options of `csv_sink`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvSinkOptions {
    /// The file path; may use `{begin}`, `{end}` and `{job}` (see [`super::PathTemplate`]).
    pub path: String,
    /// Replace an existing file (default: refuse).
    #[serde(default)]
    pub overwrite: bool,
    /// Write a header line (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// The field delimiter, one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: char,
}

fn yes() -> bool {
    true
}

fn comma() -> char {
    ','
}

/// The CSV format of a [`FileSink`].
#[derive(Debug, Clone)]
pub struct CsvFormat {
    header: bool,
    delimiter: u8,
}

/// A header line and `,` between fields.
impl Default for CsvFormat {
    fn default() -> Self {
        Self { header: true, delimiter: b',' }
    }
}

/// The `csv_sink` processor.
pub type CsvSink = FileSink<CsvFormat>;

impl CsvSink {
    /// A `csv_sink` with `options`.
    pub fn new(options: CsvSinkOptions) -> Result<Self, PluginsError> {
        let delimiter =
            u8::try_from(options.delimiter).ok().filter(u8::is_ascii).ok_or_else(|| {
                super::options_error(
                    "csv_sink",
                    format!("`delimiter` {:?} is not one ASCII character", options.delimiter),
                )
            })?;
        let format = CsvFormat { header: options.header, delimiter };
        FileSink::with_format("csv_sink", &options.path, options.overwrite, format)
    }
}

impl SinkFormat for CsvFormat {
    type Writer = Writer<BufWriter<SinkOutput>>;

    fn open(&self, out: SinkOutput, _schema: &SchemaRef) -> Result<Self::Writer, ProcessError> {
        Ok(WriterBuilder::new()
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .build(BufWriter::new(out)))
    }

    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError> {
        writer.write(batch).map_err(|err| ProcessError::with_source("cannot write CSV", err))
    }

    fn close(writer: Self::Writer) -> Result<SinkOutput, ProcessError> {
        writer
            .into_inner()
            .into_inner()
            .map_err(|err| ProcessError::with_source("cannot flush the CSV file", err.into_error()))
    }
}
