//! `flightline query`: run one SQL query and print it as a table or write CSV, JSON or
//! Parquet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use flightline_core::client::QueryOptions;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;

use crate::RunnerError;
use crate::connect::{ConnectArgs, RangeArgs};

/// Arguments of `flightline query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The SQL to run, e.g. "SELECT level, count(*) FROM log_entries GROUP BY level".
    pub sql: String,
    /// Time range.
    #[command(flatten)]
    pub range: RangeArgs,
    /// Server and credentials.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of standard output (required for parquet). The file
    /// appears only once the whole result is written.
    #[arg(long, short, value_name = "PATH", required_if_eq("format", "parquet"))]
    pub output: Option<PathBuf>,
    /// Ask the server for at most this many rows (the `limit` header).
    #[arg(long, value_name = "ROWS")]
    pub limit: Option<u64>,
    /// Keep dictionary-encoded columns as dictionaries.
    #[arg(long)]
    pub preserve_dictionary: bool,
    /// Fetch up to this many result endpoints at once (order is kept).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub parallel: usize,
    /// Use the Micromegas direct-ticket path (DoGet with the SQL) instead of GetFlightInfo.
    #[arg(long)]
    pub direct_ticket: bool,
}

/// How `flightline query` renders the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
    /// A Parquet file (needs --output).
    Parquet,
}

/// Runs the command.
pub async fn run(args: QueryArgs) -> Result<ExitCode, RunnerError> {
    let range = args.range.time_range()?;
    let client = args.connect.connect().await?;
    let options = QueryOptions {
        limit: args.limit,
        preserve_dictionary: args.preserve_dictionary,
        parallel_endpoints: args.parallel,
        direct_ticket: args.direct_ticket,
        headers: Vec::new(),
    };
    let mut stream = client.query_stream_with(&args.sql, range, &options).await?;
    let (target, out) = Target::open(args.output.as_deref())?;
    let mut sink = Sink::new(args.format, out, stream.schema().cloned());
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                target.discard();
                return Err(err.into());
            }
        };
        rows += batch.num_rows();
        if let Err(err) = sink.write(batch) {
            target.discard();
            return broken_pipe_is_success(err, &target.name);
        }
    }
    if let Err(err) = sink.finish().and_then(|()| target.commit()) {
        return broken_pipe_is_success(err, &target.name);
    }
    eprintln!("{rows} row{}", if rows == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

/// `flightline query ... | head` closing the pipe early is not a failure.
fn broken_pipe_is_success(err: io::Error, name: &str) -> Result<ExitCode, RunnerError> {
    if err.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(RunnerError::Io { path: name.to_string(), source: err })
}

/// Where the output goes: standard output, or a file written under a temporary name and
/// renamed when complete, so a failed query never leaves a truncated file behind.
struct Target {
    name: String,
    file: Option<(PathBuf, PathBuf)>,
}

impl Target {
    fn open(output: Option<&Path>) -> Result<(Self, Output), RunnerError> {
        let Some(path) = output else {
            let target = Self { name: "<stdout>".into(), file: None };
            return Ok((target, Box::new(BufWriter::new(io::stdout()))));
        };
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        // Created before the query runs, so an unwritable path fails fast.
        let file = File::create(&partial)
            .map_err(|source| RunnerError::Io { path: partial.display().to_string(), source })?;
        let target =
            Self { name: path.display().to_string(), file: Some((partial, path.to_path_buf())) };
        Ok((target, Box::new(BufWriter::new(file))))
    }

    fn commit(&self) -> io::Result<()> {
        match &self.file {
            Some((partial, path)) => std::fs::rename(partial, path),
            None => Ok(()),
        }
    }

    fn discard(&self) {
        if let Some((partial, _)) = &self.file {
            let _ = std::fs::remove_file(partial);
        }
    }
}

type Output = Box<dyn Write + Send>;

/// Renders batches as they arrive (the table needs them all to size its columns).
enum Sink {
    Table { out: Output, schema: Option<SchemaRef>, batches: Vec<RecordBatch> },
    Csv(arrow::csv::Writer<Output>),
    Json(arrow::json::ArrayWriter<Output>),
    Parquet { out: Option<Output>, schema: Option<SchemaRef>, writer: Option<ArrowWriter<Output>> },
}

impl Sink {
    fn new(format: Format, out: Output, schema: Option<SchemaRef>) -> Self {
        match format {
            Format::Table => Sink::Table { out, schema, batches: Vec::new() },
            Format::Csv => Sink::Csv(arrow::csv::Writer::new(out)),
            Format::Json => Sink::Json(arrow::json::ArrayWriter::new(out)),
            Format::Parquet => Sink::Parquet { out: Some(out), schema, writer: None },
        }
    }

    fn write(&mut self, batch: RecordBatch) -> io::Result<()> {
        match self {
            Sink::Table { batches, .. } => {
                batches.push(batch);
                Ok(())
            }
            Sink::Csv(writer) => writer.write(&batch).map_err(io::Error::other),
            Sink::Json(writer) => writer.write(&batch).map_err(io::Error::other),
            Sink::Parquet { out, writer, .. } => {
                if writer.is_none() {
                    *writer = Some(parquet_writer(out, batch.schema())?);
                }
                match writer {
                    Some(writer) => writer.write(&batch).map_err(io::Error::other),
                    None => Ok(()),
                }
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Table { mut out, schema, batches } => {
                let table = match (schema, batches.is_empty()) {
                    (Some(schema), true) => {
                        arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)
                            .map(|table| table.to_string())
                    }
                    _ => arrow::util::pretty::pretty_format_batches(&batches)
                        .map(|table| table.to_string()),
                }
                .map_err(io::Error::other)?;
                writeln!(out, "{table}")?;
                out.flush()
            }
            Sink::Csv(writer) => writer.into_inner().flush(),
            Sink::Json(mut writer) => {
                writer.finish().map_err(io::Error::other)?;
                writer.into_inner().flush()
            }
            Sink::Parquet { mut out, schema, writer } => {
                // An empty result still makes a valid Parquet file with the announced schema.
                let writer = match writer {
                    Some(writer) => writer,
                    None => parquet_writer(
                        &mut out,
                        schema.unwrap_or_else(|| std::sync::Arc::new(Schema::empty())),
                    )?,
                };
                writer.into_inner().map_err(io::Error::other)?.flush()
            }
        }
    }
}

fn parquet_writer(out: &mut Option<Output>, schema: SchemaRef) -> io::Result<ArrowWriter<Output>> {
    let out = out.take().ok_or_else(|| io::Error::other("the Parquet output was already used"))?;
    ArrowWriter::try_new(out, schema, None).map_err(io::Error::other)
}
