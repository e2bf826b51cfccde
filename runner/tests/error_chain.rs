//! Every error the `flightline` command prints says each of its causes exactly once: messages
//! leave their sources out and the printer walks the chain, so neither a cause nor a hint is
//! lost or repeated. Driven through the real binary against a real server (or a closed port).

use std::path::Path;
use std::process::{Command, Output};

use flightline_server::ServerBuilder;

fn flightline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("start flightline")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// How often `needle` occurs in `text`.
fn count(text: &str, needle: &str) -> usize {
    assert!(!needle.is_empty());
    text.matches(needle).count()
}

/// What the operating system says when the directory `path` is made, as the sink will print it.
fn os_error(path: &Path) -> String {
    match std::fs::create_dir_all(path) {
        Ok(()) => panic!("{} could be made", path.display()),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_missing_job_file_is_named_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let os = std::fs::read_to_string(&missing).unwrap_err().to_string();
    let output = flightline(&["check", &missing.to_string_lossy()]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(count(&text, &os), 1, "the OS error once: {text}");
    assert_eq!(count(&text, &missing.to_string_lossy()), 1, "the path once: {text}");
    assert!(text.starts_with("error: "), "{text}");
}

#[test]
fn a_refused_connection_is_said_once_after_what_could_not_be_done() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("grpc://127.0.0.1:{port}");
    let output = flightline(&["validate", "--uri", &uri, "SELECT 1"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert_eq!(count(&text, "cannot validate against"), 1, "{text}");
    assert_eq!(count(&text, "transport error talking to"), 1, "the cause once: {text}");
    assert_eq!(count(&text.to_lowercase(), "connection refused"), 1, "{text}");
    assert_eq!(count(&text, "--offline"), 1, "the hint once: {text}");
    // The cause follows what failed, on its own line.
    let failed = text.find("cannot validate against").unwrap();
    let cause = text.find("caused by: transport error").unwrap_or_else(|| panic!("{text}"));
    assert!(failed < cause, "{text}");
}

#[test]
fn a_failing_processor_says_its_cause_once_in_each_line_that_reports_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(ServerBuilder::new().demo_rows(2_000).spawn(([127, 0, 0, 1], 0).into()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the sink needs a directory: opening the output fails in `open`.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "not a directory").unwrap();
    let os = os_error(&blocker);
    let jobs = dir.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            "[server]\nuri = \"grpc://{addr}\"\n[[job]]\nname = \"sink\"\n\
             sql = \"SELECT time, msg FROM log_entries\"\n\
             processors = [{{ name = \"csv_sink\", options = {{ path = \"{out}\" }} }}]\n",
            addr = server.local_addr(),
            out = blocker.join("out.csv").display(),
        ),
    )
    .unwrap();
    let output = flightline(&["run", &jobs.to_string_lossy(), "--once", "--progress", "never"]);
    runtime.block_on(server.shutdown()).unwrap();
    let (out, text) = (String::from_utf8_lossy(&output.stdout), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "a job failed: {out}\n{text}");
    let reports: Vec<&str> = out
        .lines()
        .chain(text.lines())
        .filter(|line| line.contains("processor `csv_sink` failed in open"))
        .collect();
    assert!(reports.len() >= 2, "the log and the summary report it: {out}\n{text}");
    for line in reports {
        assert_eq!(count(line, &os), 1, "the OS error once: {line}");
        assert_eq!(count(line, "(os error"), 1, "{line}");
        assert_eq!(count(line, "cannot write the output file"), 1, "{line}");
    }
}
