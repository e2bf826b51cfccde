//! One id for one query, from the SDK to the server's log: a query's `x-request-id` (made by
//! the SDK or set by the caller) is in the error the caller gets, in the runner's log line
//! for the run, and in the audit line of a real `flightline serve` process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{RunnerProcess, eventually, job_file};
use flightline_core::{FlightSqlClient, QueryOptions};
use futures::TryStreamExt;
use sha2::Digest;

/// A `flightline serve` process writing its log to a file; killed when dropped.
struct Serve {
    child: Child,
    uri: String,
    log: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(dir: &Path) -> Self {
        let log = dir.join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "5000"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start flightline serve");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let line = stdout.lines().map_while(Result::ok).next().unwrap_or_default();
        let uri = line.strip_prefix("flightline: listening on ").expect("a listening line").into();
        Self { child, uri, log }
    }

    /// The audit lines naming `id`, once there are `count`.
    fn audit(&self, id: &str, count: usize) -> Vec<String> {
        eventually(&format!("{count} audit line(s) for {id}"), || {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<String> = text
                .lines()
                .filter(|l| {
                    l.contains("flightline::audit") && l.contains(&format!("request_id={id} "))
                })
                .map(str::to_string)
                .collect();
            (lines.len() >= count).then_some(lines)
        })
    }
}

#[test]
fn the_sdk_sends_one_id_per_query_that_the_error_and_the_audit_line_carry() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = FlightSqlClient::builder(server.uri.clone()).connect().await.unwrap();

        let stream = client.query_stream("SELECT level FROM log_entries", None).await.unwrap();
        let made = stream.request_id().to_string();
        let rows: usize =
            stream.try_collect::<Vec<_>>().await.unwrap().iter().map(|b| b.num_rows()).sum();
        let line = &server.audit(&made, 1)[0];
        assert!(line.contains("status=ok") && line.contains(&format!("rows={rows} ")), "{line}");

        let again = client.query_stream("SELECT 1", None).await.unwrap();
        assert_ne!(again.request_id(), made, "a new id per query");

        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let options = QueryOptions::new().request_id("sdk-chosen-1").traceparent(traceparent);
        let err = client
            .query_stream_with("SELECT * FROM no_such_table", None, &options)
            .await
            .expect_err("an unknown table is refused");
        assert_eq!(err.request_id(), Some("sdk-chosen-1"), "{err}");
        assert!(err.to_string().contains("(request id: sdk-chosen-1)"), "{err}");
        let line = &server.audit("sdk-chosen-1", 1)[0];
        assert!(line.contains("status=invalidargument"), "{line}");
        assert!(line.contains(traceparent), "the traceparent reaches the audit line: {line}");
        assert!(!line.contains("SELECT"), "the SQL itself is never logged: {line}");
        let digest = hex::encode(sha2::Sha256::digest(b"SELECT * FROM no_such_table"));
        assert!(line.contains(&format!("sql_sha256={digest}")), "{line}");
    });
}

#[test]
fn a_failed_run_shows_the_same_id_in_the_runner_log_its_error_and_the_server_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path());
    let jobs = job_file(
        dir.path(),
        &format!(
            "[server]\nuri = \"{}\"\n[[job]]\nname = \"broken\"\nsql = \"SELECT * FROM no_such_table\"\n\
             retries = {{ max = 0 }}\nprocessors = [{{ name = \"count_by\" }}]\n",
            server.uri
        ),
    );
    let runner = RunnerProcess::start(&jobs, &["--once"]);
    let (status, stdout, stderr) = runner.finish();
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let failed =
        stderr.lines().find(|l| l.contains("run failed")).unwrap_or_else(|| panic!("{stderr}"));
    let id = failed
        .split("request_id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no request_id in {failed}"))
        .trim_matches('"');
    assert!(stdout.contains(&format!("(request id: {id})")), "the summary's error: {stdout}");
    let line = &server.audit(id, 1)[0];
    assert!(line.contains("status=invalidargument"), "{line}");
}
