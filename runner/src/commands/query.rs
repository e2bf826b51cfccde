//! `flightline query`: run one SQL query and print it as a table or write CSV, JSON or
//! Parquet.
//!
//! The query runs through the executor ([`QueryExecutor`]) with one processor from
//! flightline-plugins: a [`WriteSink`] in the format asked for, the same writers the job file
//! sinks use, to standard output or to an [`AtomicFile`] that replaces `--output` only once the
//! whole result is written (a failed query leaves no file, and an existing one unchanged).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flightline_core::atomic_file::{AtomicFile, Publish};
use flightline_core::client::QueryOptions;
use flightline_core::exec::{CancellationToken, QueryExecutor, RunRequest};
use flightline_core::process::BatchProcessor;
use flightline_plugins::processors::{
    CsvFormat, JsonArrayFormat, ParquetCompression, ParquetFormat, SinkFormat, TableFormat,
    WriteSink,
};

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
    /// Send this `x-request-id` instead of a new one (the server's audit line and any error
    /// name it).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// A W3C `traceparent` to pass on to the server.
    #[arg(long, value_name = "TRACEPARENT")]
    pub traceparent: Option<String>,
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
        request_id: args.request_id,
        traceparent: args.traceparent,
    };
    // Cancelled only by the table once it holds --table-rows rows: the rest is not read.
    let full = CancellationToken::new();
    let sink = sink(args.format, args.table_rows, args.output.as_deref(), &full)?;
    let executor = QueryExecutor::new(client).job("query").query_options(options);
    let request = RunRequest::new(args.sql).range(range).processors(vec![sink]).cancel(full);
    let outcome = match executor.run(request).await {
        Ok(outcome) => outcome,
        Err(err) => return broken_pipe_is_success(err.into()),
    };
    let rows = if outcome.stats.cancelled {
        args.table_rows as u64
    } else {
        rows_written(&outcome.reports)
    };
    eprintln!("{rows} row{}", if rows == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

/// `flightline query ... | head` closing the pipe early is not a failure.
fn broken_pipe_is_success(err: RunnerError) -> Result<ExitCode, RunnerError> {
    if err.is_broken_pipe() { Ok(ExitCode::SUCCESS) } else { Err(err) }
}

/// The plugins' writer of `format`, to `output` or standard output.
fn sink(
    format: Format,
    table_rows: usize,
    output: Option<&Path>,
    full: &CancellationToken,
) -> Result<Box<dyn BatchProcessor>, RunnerError> {
    // Created before the query runs, so an unwritable path fails fast.
    let file = output.map(|path| AtomicFile::create(path, Publish::Replace)).transpose()?;
    Ok(match format {
        Format::Table => {
            let table = TableFormat::capped(table_rows, truncation_note(table_rows));
            Box::new(write_sink("table", table, file).stop_when_full(full.clone()))
        }
        Format::Csv => Box::new(write_sink("csv", CsvFormat::default(), file)),
        Format::Json => Box::new(write_sink("json", JsonArrayFormat, file)),
        // The writer's defaults: no compression.
        Format::Parquet => {
            let parquet = ParquetFormat::new(ParquetCompression::None);
            Box::new(write_sink("parquet", parquet, file))
        }
    })
}

fn write_sink<F: SinkFormat>(
    name: &'static str,
    format: F,
    file: Option<AtomicFile>,
) -> WriteSink<F> {
    match file {
        Some(file) => WriteSink::file(name, format, file),
        None => WriteSink::stdout(name, format),
    }
}

/// The rows the sink wrote, from its report.
fn rows_written(reports: &[(String, flightline_core::process::Report)]) -> u64 {
    reports.iter().filter_map(|(_, report)| report.counts.get("rows_written")).sum()
}

/// The line under a table that stopped at `cap` rows.
fn truncation_note(cap: usize) -> String {
    format!(
        "… more rows not shown: the table stops at {cap} rows (--table-rows); use --format csv, \
         json or parquet for the whole result"
    )
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use arrow::record_batch::RecordBatch;
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
                oidc_issuer: None,
                oidc_client_id: None,
                oidc_client_secret_env: None,
                oidc_client_secret_file: None,
                oidc_audience: None,
                oidc_scope: None,
                oidc_from_env: false,
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
            request_id: None,
            traceparent: None,
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
        let RunnerError::Core(flightline_core::Error::Processor { source, .. }) = &err else {
            panic!("{err:?}");
        };
        let file = std::error::Error::source(source)
            .and_then(|cause| cause.downcast_ref::<flightline_core::Error>());
        assert!(
            matches!(
                file,
                Some(flightline_core::Error::File { path: name, step, .. })
                    if name == &path && *step == flightline_core::atomic_file::FileStep::Publish
            ),
            "{err:?}"
        );
        let text = flightline_core::error::Chain(&err).to_string();
        assert!(text.contains("out.csv"), "{text}");
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
}
