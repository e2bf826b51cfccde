//! Shared pieces of the runner's end-to-end tests: `flightline run` child processes (killed on
//! drop), job files in a temp dir, the Prometheus text format, and Parquet sink files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use arrow::array::{Array, RecordBatch, TimestampNanosecondArray};
use chrono::{DateTime, Utc};
use flightline_core::{FlightSqlClient, TimeRange};
use flightline_server::{RunningServer, ServerBuilder};

/// Generous bound on waits for things that happen in well under a second when healthy.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A `flightline run` process; killed when dropped, even when an assertion fails.
pub struct RunnerProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl RunnerProcess {
    /// Starts `flightline run JOBS ARGS...`, with log lines on stderr.
    pub fn start(jobs: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .arg("run")
            .arg(jobs)
            .args(["--progress", "never"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flightline run");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Self { child, lines, stdout: Vec::new(), stderr }
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no line starting with {prefix:?}; stdout so far: {:?}", self.stdout);
    }

    /// The address printed in `flightline: metrics on http://ADDR/metrics`.
    pub fn metrics_addr(&mut self) -> std::net::SocketAddr {
        let rest = self.wait_for_line("flightline: metrics on http://");
        rest.trim_end_matches("/metrics").parse().expect("a socket address")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (libc number) to the process.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the exit (bounded) and returns the status, stdout and stderr.
    pub fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "flightline run did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(line);
        }
        let stdout = self.stdout.join("\n");
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status, stdout, stderr.join().unwrap_or_default())
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` as `dir/jobs.toml`.
pub fn job_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).expect("write the job file");
    path
}

/// `GET path` on the runner's HTTP listener (HTTP/1.0, so the body is not chunked), with
/// `token` as a bearer token: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the listener");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: flightline\r\n{auth}\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// Samples of a Prometheus text page: `name{labels}` (labels as written) → value.
pub fn parse_metrics(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the sample of `name` whose labels include every `key="value"` of `labels`;
/// the sum when several match (other labels differ).
pub fn sample(metrics: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// Scrapes `addr` (blocking the test thread on a small runtime).
pub fn scrape(addr: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let page = rt.block_on(flightline_runner::metrics::scrape(addr)).expect("scrape /metrics");
    parse_metrics(&page)
}

/// Reads every batch of a Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).expect("open a sink file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    reader.map(|b| b.expect("a batch")).collect()
}

/// The `time` values (nanoseconds) of every row of `batches`.
pub fn times(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column_by_name("time").expect("a time column");
        let times = column
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .expect("time is Timestamp(ns)");
        out.extend((0..times.len()).map(|i| times.value(i)));
    }
    out
}

/// Polls `check` until it returns `Some` (bounded by [`PATIENCE`]).
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Parses `text` as the job file `file`, installs the Prometheus endpoint on a free port and
/// runs every job once in this process, as `flightline run --once` would.
pub async fn run_in_process(
    file: &str,
    text: &str,
) -> (flightline_runner::summary::RunSummary, flightline_runner::metrics::MetricsEndpoint) {
    use flightline_runner::progress::{ProgressDisplay, ProgressMode};
    let config =
        flightline_runner::config::Config::parse(Path::new(file), text, &|_| None).unwrap();
    let endpoint =
        flightline_runner::metrics::MetricsEndpoint::install(([127, 0, 0, 1], 0).into()).unwrap();
    let summary = flightline_runner::orchestrate::run(
        &config,
        flightline_runner::orchestrate::RunOptions::default(),
        ProgressDisplay::new(ProgressMode::Never),
        std::future::pending(),
    )
    .await
    .unwrap();
    (summary, endpoint)
}

/// Where the demo data of [`Server`] ends.
pub const DEMO_END: &str = "2024-06-01T00:00:00Z";

/// An embedded server on its own runtime, so the test thread can block on processes.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<RunningServer>,
    rows: u64,
    addr: SocketAddr,
}

impl Server {
    /// Starts a server with `rows` demo rows ending at [`DEMO_END`] on a free port.
    pub fn start(rows: u64) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let running = runtime.block_on(spawn(rows, ([127, 0, 0, 1], 0).into()));
        let addr = running.local_addr();
        Self { runtime, running: Some(running), rows, addr }
    }

    /// `grpc://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// Shuts it down (it can be restarted on the same port).
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown()).unwrap();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.running = Some(self.runtime.block_on(spawn(self.rows, self.addr)));
    }

    /// The rows `sql` returns over `range`.
    pub fn count(&self, sql: &str, range: TimeRange) -> u64 {
        self.runtime.block_on(async {
            let client = FlightSqlClient::builder(self.uri()).connect().await.unwrap();
            let batches = client.query(sql, Some(range)).await.unwrap();
            batches.iter().map(|b| b.num_rows() as u64).sum()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn spawn(rows: u64, addr: SocketAddr) -> RunningServer {
    ServerBuilder::new()
        .demo_rows(rows)
        .demo_end(DEMO_END.parse().unwrap())
        .spawn(addr)
        .await
        .unwrap()
}

/// An RFC 3339 instant.
pub fn instant(text: &str) -> DateTime<Utc> {
    flightline_core::time::parse_instant(text).unwrap()
}

/// Where the checkpoint of `job` stands, if it exists.
pub fn checkpoint(state: &Path, job: &str) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(state.join(format!("{job}.checkpoint.json"))).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["end"].as_str().map(instant)
}

/// Writes `password` to `dir/pgpass`, for a job file's `password_file` keys.
pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("pgpass");
    std::fs::write(&path, password).expect("write the password file");
    path
}

/// A job's `processors` line: one `postgres_sink` into `table` at `url`, its password read
/// from `password_file`.
pub fn postgres_sink(url: &str, table: &str, password_file: &Path) -> String {
    format!(
        r#"processors = [{{ name = "postgres_sink", options = {{ url = "{url}", table = "{table}", password_file = "{}" }} }}]"#,
        password_file.display()
    )
}
