//! `parquet_sink`: the result as one Parquet file, written atomically.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use flightline_core::process::ProcessError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

use super::sink::{FileSink, SinkFormat, SinkOutput};
use crate::error::PluginsError;

/// Parquet column compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Zstandard (default level).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// LZ4 (raw).
    Lz4,
    /// No compression.
    None,
}

/// Options of `parquet_sink`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkOptions {
    /// The file path; may use `{begin}`, `{end}` and `{job}` (see [`super::PathTemplate`]).
    pub path: String,
    /// Replace an existing file (default: refuse).
    #[serde(default)]
    pub overwrite: bool,
    /// Column compression (default `zstd`).
    #[serde(default)]
    pub compression: ParquetCompression,
}

/// The Parquet format of a [`FileSink`].
#[derive(Debug, Clone)]
pub struct ParquetFormat {
    compression: ParquetCompression,
}

impl ParquetFormat {
    /// Parquet with `compression` and the writer's defaults otherwise.
    pub fn new(compression: ParquetCompression) -> Self {
        Self { compression }
    }
}

/// The `parquet_sink` processor.
pub type ParquetSink = FileSink<ParquetFormat>;

impl ParquetSink {
    /// A `parquet_sink` with `options`.
    pub fn new(options: ParquetSinkOptions) -> Result<Self, PluginsError> {
        let format = ParquetFormat { compression: options.compression };
        FileSink::with_format("parquet_sink", &options.path, options.overwrite, format)
    }
}

impl SinkFormat for ParquetFormat {
    type Writer = ArrowWriter<SinkOutput>;

    fn open(&self, out: SinkOutput, schema: &SchemaRef) -> Result<Self::Writer, ProcessError> {
        let compression = match self.compression {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::None => Compression::UNCOMPRESSED,
        };
        let properties = WriterProperties::builder().set_compression(compression).build();
        ArrowWriter::try_new(out, schema.clone(), Some(properties))
            .map_err(|err| ProcessError::with_source("cannot start the Parquet file", err))
    }

    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError> {
        writer.write(batch).map_err(|err| ProcessError::with_source("cannot write Parquet", err))
    }

    fn close(writer: Self::Writer) -> Result<SinkOutput, ProcessError> {
        writer
            .into_inner()
            .map_err(|err| ProcessError::with_source("cannot finish the Parquet file", err))
    }
}
