//! `flightline query` output, byte for byte, against a real server: every format to standard
//! output and to `--output`, the `N rows` line, the `--table-rows` cap and its note, and what a
//! failed or killed query leaves (no output file).
//!
//! The expected bytes are in `tests/golden/query/`, recorded from `flightline query` as it was
//! before it ran through the executor. After an intended change of the output, rewrite them with
//! `FLIGHTLINE_BLESS=1 cargo test -p flightline-runner --test query_output` and review the diff.
//! The Parquet files carry the writer's version (`created_by`): a parquet upgrade changes them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use flightline_server::{RunningServer, ServerBuilder};

/// Two rows that need no table.
const VALUES: &str = "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(n, s)";
/// Demo rows: a timestamp, strings and an integer, in a fixed order.
const DEMO: &str =
    "SELECT time, target, level, msg FROM log_entries ORDER BY time, target, msg LIMIT 12";
/// No rows, but a schema.
const EMPTY: &str = "SELECT level, target FROM log_entries WHERE level > 100";
/// A query that never ends on its own.
const NEVER_ENDING: &str =
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r";

/// The embedded server with fixed demo data, on its own runtime.
struct Server {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let end = Utc.with_ymd_and_hms(2024, 1, 8, 0, 0, 0).unwrap();
        let server = runtime.block_on(async {
            ServerBuilder::new()
                .demo_rows(300)
                .seed(7)
                .demo_end(end)
                .spawn("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap()
        });
        Self { runtime, server: Some(server) }
    }

    fn uri(&self) -> String {
        self.server.as_ref().unwrap().uri()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.runtime.block_on(server.shutdown());
        }
    }
}

/// `flightline query SQL --uri URI ARGS...`.
fn query(server: &Server, sql: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["query", sql, "--uri", &server.uri()])
        .args(args)
        .output()
        .unwrap()
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/query").join(name)
}

/// Compares `actual` with the golden file `name` (or writes it when blessing).
fn assert_golden(name: &str, actual: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("FLIGHTLINE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        actual == expected.as_slice(),
        "{name} differs from {}:\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

/// The last line on stderr: the row count.
fn rows_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().last().unwrap_or_default().to_string()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "{:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every format of `sql` to stdout and to a file: the same golden bytes, and `rows` rows.
fn check_every_format(server: &Server, sql: &str, name: &str, rows: &str) {
    let dir = tempfile::tempdir().unwrap();
    for (format, ext) in [("table", "txt"), ("csv", "csv"), ("json", "json")] {
        let golden = format!("{name}.{ext}");
        let printed = query(server, sql, &["--format", format]);
        assert_ok(&printed);
        assert_golden(&golden, &printed.stdout);
        assert_eq!(rows_line(&printed), rows, "{golden} on stdout");

        let path = dir.path().join(&golden);
        let written = query(server, sql, &["--format", format, "--output", path.to_str().unwrap()]);
        assert_ok(&written);
        assert!(written.stdout.is_empty(), "{golden}: stdout with --output");
        assert_golden(&golden, &std::fs::read(&path).unwrap());
        assert_eq!(rows_line(&written), rows, "{golden} to a file");
    }
    let golden = format!("{name}.parquet");
    let path = dir.path().join(&golden);
    let written = query(server, sql, &["--format", "parquet", "--output", path.to_str().unwrap()]);
    assert_ok(&written);
    assert_golden(&golden, &std::fs::read(&path).unwrap());
    assert_eq!(rows_line(&written), rows, "{golden}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let expected = ["csv", "json", "parquet", "txt"].map(|ext| format!("{name}.{ext}"));
    assert_eq!(left, expected, "a temporary file was left");
}

#[test]
fn every_format_of_a_values_query_is_unchanged() {
    let server = Server::start();
    check_every_format(&server, VALUES, "values", "2 rows");
}

#[test]
fn every_format_of_demo_rows_is_unchanged() {
    let server = Server::start();
    check_every_format(&server, DEMO, "demo", "12 rows");
}

#[test]
fn every_format_of_an_empty_result_is_unchanged() {
    let server = Server::start();
    check_every_format(&server, EMPTY, "empty", "0 rows");
}

#[test]
fn the_table_stops_at_its_cap_with_the_note_on_stdout_and_in_a_file() {
    let server = Server::start();
    let printed = query(&server, DEMO, &["--table-rows", "5"]);
    assert_ok(&printed);
    assert_golden("demo.capped.txt", &printed.stdout);
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(text.contains("the table stops at 5 rows (--table-rows)"), "{text}");
    assert_eq!(rows_line(&printed), "5 rows");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.txt");
    let written = query(&server, DEMO, &["--table-rows", "5", "-o", path.to_str().unwrap()]);
    assert_ok(&written);
    assert_golden("demo.capped.txt", &std::fs::read(&path).unwrap());
    assert_eq!(rows_line(&written), "5 rows");

    // Exactly at the cap: every row, no note.
    let exact = query(&server, DEMO, &["--table-rows", "12"]);
    assert_ok(&exact);
    assert_golden("demo.txt", &exact.stdout);
    assert_eq!(rows_line(&exact), "12 rows");
}

#[test]
fn parquet_needs_an_output_file() {
    let server = Server::start();
    let refused = query(&server, VALUES, &["--format", "parquet"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--output"), "{refused:?}");
}

#[test]
fn a_failed_query_leaves_no_output_file_and_an_existing_one_unchanged() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let failed = query(&server, "SELECT * FROM missing_table", &["-o", path.to_str().unwrap()]);
    assert!(!failed.status.success(), "{failed:?}");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("missing_table"), "{failed:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a file was left");

    std::fs::write(&path, "before").unwrap();
    let failed = query(&server, "SELECT * FROM missing_table", &["-o", path.to_str().unwrap()]);
    assert!(!failed.status.success(), "{failed:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "before");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a file was left");
}

#[test]
fn a_killed_query_leaves_no_output_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["query", NEVER_ENDING, "--uri", &server.uri(), "--format", "csv", "-o"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The temporary file appears once the result stream is open: the query is in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(dir.path()).unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "the query never started");
        assert!(child.try_wait().unwrap().is_none(), "the query ended on its own");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!path.exists(), "the output file appeared");
}

#[test]
fn the_table_cap_stops_reading_a_never_ending_result() {
    let server = Server::start();
    let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r";
    let started = Instant::now();
    let capped = query(&server, endless, &["--table-rows", "3"]);
    assert_ok(&capped);
    let text = String::from_utf8_lossy(&capped.stdout);
    assert!(text.contains("| 3 |") && !text.contains("| 4 |"), "{text}");
    assert!(text.trim_end().ends_with("for the whole result"), "{text}");
    assert_eq!(rows_line(&capped), "3 rows");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn a_reader_that_goes_away_is_not_an_error_in_any_format() {
    let server = Server::start();
    // Bigger than every buffer on the way, so the closed pipe is met mid-stream.
    let sql = "SELECT * FROM log_entries";
    for format in ["table", "csv", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(["query", sql, "--uri", &server.uri(), "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("error") && !stderr.contains("panicked"), "{format}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{format}: {stderr}");
    }
}
