//! `flightline query`: run one SQL query and print it as a table or write CSV, JSON or
//! Parquet.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use flightline_core::atomic_file::{AtomicFile, Publish};
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
    /// With --format table: show at most this many rows, then stop reading the result and
    /// say so below the table. The table is built in memory to size its columns; for large
    /// results use --format csv, json or parquet, which stream.
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_TABLE_ROWS)]
    pub table_rows: usize,
}

/// How many rows `--format table` shows by default.
pub const DEFAULT_TABLE_ROWS: usize = 1000;

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
    // Dropped on every early return below, which deletes the unfinished temporary file.
    let (target, out) = Target::open(args.output.as_deref())?;
    let mut sink = Sink::new(args.format, out, stream.schema().cloned(), args.table_rows);
    while let Some(batch) = stream.next().await {
        match sink.write(batch?) {
            Ok(Flow::More) => {}
            Ok(Flow::Stop) => break,
            Err(err) => return broken_pipe_is_success(target.io_error(err)),
        }
    }
    let rows = sink.rows();
    let finished = sink.finish().map_err(|err| target.io_error(err));
    if let Err(err) = finished.and_then(|()| target.commit()) {
        return broken_pipe_is_success(err);
    }
    eprintln!("{rows} row{}", if rows == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

/// `flightline query ... | head` closing the pipe early is not a failure.
fn broken_pipe_is_success(err: RunnerError) -> Result<ExitCode, RunnerError> {
    match &err {
        RunnerError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(err),
    }
}

/// Where the output goes: standard output, or an [`AtomicFile`] that replaces `--output` only
/// once the whole result is written, flushed to disk and renamed, so a failed query never
/// leaves a truncated file behind: until [`commit`](Self::commit) succeeds, dropping the target
/// deletes the temporary file.
struct Target {
    name: String,
    file: Option<AtomicFile>,
}

impl Target {
    fn open(output: Option<&Path>) -> Result<(Self, Output), RunnerError> {
        let Some(path) = output else {
            let target = Self { name: "<stdout>".into(), file: None };
            return Ok((target, Box::new(BufWriter::new(io::stdout()))));
        };
        // Created before any row is read, so an unwritable path fails fast.
        let file = AtomicFile::create(path, Publish::Replace)?;
        let out = file.try_clone_file()?;
        let target = Self { name: path.display().to_string(), file: Some(file) };
        Ok((target, Box::new(BufWriter::new(out))))
    }

    /// Flushes the finished file to disk and renames it into place; on failure it is removed.
    fn commit(mut self) -> Result<(), RunnerError> {
        if let Some(file) = self.file.take() {
            file.commit()?;
        }
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> RunnerError {
        RunnerError::Io { path: self.name.clone(), source }
    }
}

type Output = Box<dyn Write + Send>;

/// Whether the sink wants more batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    More,
    Stop,
}

/// The rows kept for `--format table`, at most `cap`.
struct TableRows {
    out: Output,
    schema: Option<SchemaRef>,
    batches: Vec<RecordBatch>,
    rows: usize,
    cap: usize,
    truncated: bool,
}

impl TableRows {
    fn write(&mut self, batch: RecordBatch) -> Flow {
        let room = self.cap - self.rows;
        if batch.num_rows() > room {
            self.truncated = true;
        }
        let kept = batch.num_rows().min(room);
        if kept > 0 {
            self.batches.push(batch.slice(0, kept));
            self.rows += kept;
        }
        if self.truncated { Flow::Stop } else { Flow::More }
    }

    fn finish(mut self) -> io::Result<()> {
        let table = match (self.schema, self.batches.is_empty()) {
            (Some(schema), true) => {
                arrow::util::pretty::pretty_format_batches_with_schema(schema, &self.batches)
                    .map(|table| table.to_string())
            }
            _ => arrow::util::pretty::pretty_format_batches(&self.batches)
                .map(|table| table.to_string()),
        }
        .map_err(io::Error::other)?;
        writeln!(self.out, "{table}")?;
        if self.truncated {
            writeln!(self.out, "{}", truncation_note(self.cap))?;
        }
        self.out.flush()
    }
}

/// The line under a table that stopped at `cap` rows.
fn truncation_note(cap: usize) -> String {
    format!(
        "… more rows not shown: the table stops at {cap} rows (--table-rows); use --format csv, \
         json or parquet for the whole result"
    )
}

/// Renders batches as they arrive (the table keeps up to its cap to size its columns).
enum Sink {
    Table(TableRows),
    Csv(arrow::csv::Writer<Output>, usize),
    Json(arrow::json::ArrayWriter<Output>, usize),
    Parquet {
        out: Option<Output>,
        schema: Option<SchemaRef>,
        writer: Option<ArrowWriter<Output>>,
        rows: usize,
    },
}

impl Sink {
    fn new(format: Format, out: Output, schema: Option<SchemaRef>, table_rows: usize) -> Self {
        match format {
            Format::Table => Sink::Table(TableRows {
                out,
                schema,
                batches: Vec::new(),
                rows: 0,
                cap: table_rows,
                truncated: false,
            }),
            Format::Csv => Sink::Csv(arrow::csv::Writer::new(out), 0),
            Format::Json => Sink::Json(arrow::json::ArrayWriter::new(out), 0),
            Format::Parquet => Sink::Parquet { out: Some(out), schema, writer: None, rows: 0 },
        }
    }

    /// Rows written (for the table: rows kept).
    fn rows(&self) -> usize {
        match self {
            Sink::Table(table) => table.rows,
            Sink::Csv(_, rows) | Sink::Json(_, rows) | Sink::Parquet { rows, .. } => *rows,
        }
    }

    fn write(&mut self, batch: RecordBatch) -> io::Result<Flow> {
        let count = batch.num_rows();
        match self {
            Sink::Table(table) => return Ok(table.write(batch)),
            Sink::Csv(writer, rows) => {
                writer.write(&batch).map_err(io::Error::other)?;
                *rows += count;
            }
            Sink::Json(writer, rows) => {
                writer.write(&batch).map_err(io::Error::other)?;
                *rows += count;
            }
            Sink::Parquet { out, writer, rows, .. } => {
                if writer.is_none() {
                    *writer = Some(parquet_writer(out, batch.schema())?);
                }
                if let Some(writer) = writer {
                    writer.write(&batch).map_err(io::Error::other)?;
                }
                *rows += count;
            }
        }
        Ok(Flow::More)
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Table(table) => table.finish(),
            Sink::Csv(writer, _) => writer.into_inner().flush(),
            Sink::Json(mut writer, _) => {
                writer.finish().map_err(io::Error::other)?;
                writer.into_inner().flush()
            }
            Sink::Parquet { mut out, schema, writer, .. } => {
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

#[cfg(test)]
mod tests {
    use std::fs::File;

    use flightline_server::{RunningServer, ServerBuilder};

    use super::*;

    async fn server() -> RunningServer {
        ServerBuilder::new()
            .demo_rows(500)
            .seed(7)
            .spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    fn args(server: &RunningServer, sql: &str, format: Format, output: &Path) -> QueryArgs {
        QueryArgs {
            sql: sql.into(),
            range: RangeArgs { last: Some("7d".into()), ..RangeArgs::default() },
            connect: ConnectArgs {
                uri: server.uri(),
                token: None,
                token_file: None,
                user: None,
                password_file: None,
                cookies: false,
                headers: vec!["x-tenant-id=test".into()],
                tls_ca: None,
                tls_domain: None,
                allow_insecure_locations: false,
                credential_hosts: Vec::new(),
                connect_timeout: 10,
                request_timeout: None,
            },
            format,
            output: Some(output.to_path_buf()),
            limit: Some(25),
            preserve_dictionary: false,
            parallel: 1,
            direct_ticket: false,
            table_rows: DEFAULT_TABLE_ROWS,
        }
    }

    const SQL: &str = "SELECT time, target, level, msg FROM log_entries";

    #[tokio::test]
    async fn writes_csv_json_and_parquet_files() {
        let server = server().await;
        let dir = tempfile::tempdir().unwrap();

        let csv = dir.path().join("out.csv");
        run(args(&server, SQL, Format::Csv, &csv)).await.unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(text.lines().next(), Some("time,target,level,msg"));
        assert_eq!(text.lines().count(), 26);

        let json = dir.path().join("out.json");
        run(args(&server, SQL, Format::Json, &json)).await.unwrap();
        let rows: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 25);
        assert!(rows[0]["level"].is_number() && rows[0]["target"].is_string());

        let parquet = dir.path().join("out.parquet");
        run(args(&server, SQL, Format::Parquet, &parquet)).await.unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&parquet).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 25);
        assert_eq!(batches[0].schema().field(2).name(), "level");

        let table = dir.path().join("out.txt");
        run(args(&server, "SELECT count(*) AS n FROM processes", Format::Table, &table))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&table).unwrap();
        assert!(text.contains("| n ") && text.contains("| 8 "), "{text}");
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_empty_result_still_writes_a_valid_parquet_file() {
        let server = server().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        let sql = "SELECT level FROM log_entries WHERE level > 100";
        run(args(&server, sql, Format::Parquet, &path)).await.unwrap();
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(builder.schema().field(0).name(), "level");
        assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_query_leaves_no_file() {
        let server = server().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let err = run(args(&server, "SELECT * FROM missing_table", Format::Csv, &path))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RunnerError::Core(flightline_core::Error::InvalidQuery { .. })),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_rename_leaves_no_partial_file() {
        let server = server().await;
        let dir = tempfile::tempdir().unwrap();
        // A directory that is not empty where the file should go: the rename fails.
        let path = dir.path().join("out.csv");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let err = run(args(&server, SQL, Format::Csv, &path)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                RunnerError::Core(flightline_core::Error::File { path: name, step, .. })
                    if name == &path && *step == flightline_core::atomic_file::FileStep::Publish
            ),
            "{err:?}"
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["out.csv"]);
        assert!(path.join("keep").exists());
        server.shutdown().await.unwrap();
    }

    fn table_lines(text: &str) -> usize {
        // The header line and one line per row start with '|'.
        text.lines().filter(|line| line.starts_with('|')).count() - 1
    }

    #[tokio::test]
    async fn the_table_stops_at_its_row_cap_and_says_so() {
        let server = server().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.txt");
        let mut capped = args(&server, SQL, Format::Table, &path);
        capped.table_rows = 5;
        run(capped).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(table_lines(&text), 5, "{text}");
        assert!(text.trim_end().ends_with(&truncation_note(5)), "{text}");
        assert!(text.contains("--format csv"), "{text}");

        // Under the cap: every row, no note.
        run(args(&server, SQL, Format::Table, &path)).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(table_lines(&text), 25, "{text}");
        assert!(!text.contains("more rows"), "{text}");
        server.shutdown().await.unwrap();
    }

    #[test]
    fn the_table_keeps_exactly_cap_rows_across_batches() {
        use arrow::array::Int32Array;
        let schema =
            std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
                "n",
                arrow::datatypes::DataType::Int32,
                false,
            )]));
        let batch = |n: i32| {
            RecordBatch::try_new(
                schema.clone(),
                vec![std::sync::Arc::new(Int32Array::from((0..n).collect::<Vec<_>>()))],
            )
            .unwrap()
        };
        let out: Output = Box::new(io::sink());
        let mut sink = Sink::new(Format::Table, out, None, 7);
        assert_eq!(sink.write(batch(4)).unwrap(), Flow::More);
        assert_eq!(sink.write(batch(3)).unwrap(), Flow::More);
        assert_eq!(sink.rows(), 7);
        assert_eq!(sink.write(batch(0)).unwrap(), Flow::More);
        assert_eq!(sink.write(batch(2)).unwrap(), Flow::Stop);
        assert_eq!(sink.rows(), 7);
        assert!(matches!(&sink, Sink::Table(table) if table.truncated));
    }
}
