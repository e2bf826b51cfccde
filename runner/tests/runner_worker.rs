//! The worker as operators run it: a `flightline run` process against the embedded server,
//! killed with SIGKILL, stopped with SIGTERM, started twice on one state directory, and left
//! running while its server goes away and comes back.

mod common;

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flightline_core::TimeRange;
use flightline_runner::shutdown::{EXIT_CUT, STOP_DEADLINE};

use common::{
    DEMO_END, RunnerProcess, Server, checkpoint, eventually, instant, job_file, read_parquet,
    sample, scrape, times,
};

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The `runs` column of `job`'s line in the summary table `flightline run` prints.
fn runs_in_summary(stdout: &str, job: &str) -> u64 {
    let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(job));
    let runs = line.and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok());
    runs.unwrap_or_else(|| panic!("no summary line for {job}: {stdout}"))
}

/// The committed sink files in `dir` (temporary files start with a dot).
fn sink_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files
}

#[test]
fn a_killed_worker_resumes_and_writes_every_window_exactly_once() {
    let server = Server::start(200_000);
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (dir.path().join("state"), dir.path().join("out"));
    let jobs = job_file(
        dir.path(),
        &format!(
            r#"
[server]
uri = "{uri}"
[runner]
state_dir = "{state}"
[[job]]
name = "windows"
sql = "SELECT time, process_id, msg FROM log_entries"
begin = "2024-05-31T12:00:00Z"
end = "{DEMO_END}"
every = "100ms"
window = "30m"
max_windows_per_tick = 1
processors = [{{ name = "parquet_sink", options = {{ path = "{out}/{{begin}}.parquet", overwrite = true }} }}]
"#,
            uri = server.uri(),
            state = state.display(),
            out = out.display()
        ),
    );
    let end = instant(DEMO_END);
    let runner = RunnerProcess::start(&jobs, &[]);
    let reached = eventually("two committed windows", || {
        checkpoint(&state, "windows").filter(|at| *at >= instant("2024-05-31T13:00:00Z"))
    });
    runner.signal(SIGKILL);
    let (status, _, _) = runner.finish();
    assert!(!status.success(), "killed: {status}");
    let killed_at = checkpoint(&state, "windows").unwrap();
    assert!(
        killed_at >= reached && killed_at < end,
        "the kill came too late to test anything: {killed_at}"
    );

    let (status, stdout, stderr) = RunnerProcess::start(&jobs, &["--once"]).finish();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert_eq!(checkpoint(&state, "windows"), Some(end));
    // Overwriting sinks would hide a runner that redoes every window: count this attempt's.
    let remaining = ((end - killed_at).num_minutes() / 30) as u64;
    assert_eq!(
        runs_in_summary(&stdout, "windows"),
        remaining,
        "the restarted runner resumes at its checkpoint {killed_at}, not at `begin`"
    );

    let files = sink_files(&out);
    assert_eq!(files.len(), 24, "one file per 30-minute window: {files:?}");
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for file in &files {
        for time in times(&read_parquet(file)) {
            total += 1;
            assert!(seen.insert(time), "a row twice: time {time} in {}", file.display());
        }
    }
    let range = TimeRange::new(instant("2024-05-31T12:00:00Z"), end).unwrap();
    let expected = server.count("SELECT time FROM log_entries", range);
    assert!(expected > 1000, "{expected}");
    assert_eq!(total, expected, "the union of the window files is the whole range");
}

fn slow_job(server: &Server, dir: &Path, grace: &str) -> PathBuf {
    let out = dir.join("out");
    let processors = format!(
        r#"target_batch_bytes = 4096
processors = [
  {{ name = "parquet_sink", options = {{ path = "{out}/{{begin}}.parquet", overwrite = true }} }},
  {{ name = "count_by" }},
]"#,
        out = out.display()
    );
    week_job(server, dir, grace, &processors)
}

/// The scheduled job `week` (one 7-day window over the demo data), with `grace` to stop in
/// and `tail` (its processors and any other keys) at the end of its table.
fn week_job(server: &Server, dir: &Path, grace: &str, tail: &str) -> PathBuf {
    job_file(
        dir,
        &format!(
            r#"
[server]
uri = "{uri}"
[metrics]
listen = "127.0.0.1:0"
[runner]
state_dir = "{state}"
shutdown_grace = "{grace}"
[[job]]
name = "week"
sql = "SELECT * FROM log_entries"
begin = "2024-05-25T00:00:00Z"
end = "{DEMO_END}"
every = "1s"
window = "7d"
{tail}
"#,
            uri = server.uri(),
            state = dir.join("state").display(),
        ),
    )
}

fn wait_in_flight(runner: &mut RunnerProcess) {
    let addr = runner.metrics_addr();
    eventually("a run in flight", || {
        let metrics = scrape(addr);
        let busy = sample(&metrics, "flightline_jobs_in_flight", &[("job", "week")]) == Some(1.0);
        let started = sample(&metrics, "flightline_batches_total", &[("job", "week")])
            .is_some_and(|b| b > 0.0);
        (busy && started).then_some(())
    });
}

#[test]
fn sigterm_cancels_an_unfinished_window_without_advancing_it_and_says_work_was_cut() {
    let server = Server::start(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let jobs = slow_job(&server, dir.path(), "100ms");
    let mut runner = RunnerProcess::start(&jobs, &[]);
    wait_in_flight(&mut runner);
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "{stdout}\n{stderr}");
    assert_eq!(checkpoint(&dir.path().join("state"), "week"), None, "{stderr}");
    assert!(sink_files(&dir.path().join("out")).is_empty(), "a cancelled window left a file");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
}

#[test]
fn sigterm_lets_an_in_flight_window_finish_within_the_grace() {
    // Long enough to be in flight when the signal lands (4 KiB batches into a Parquet sink),
    // short enough to finish well inside the harness's patience on a loaded machine: at 1M
    // rows the window alone took 108 s on 2 cores.
    let server = Server::start(200_000);
    let dir = tempfile::tempdir().unwrap();
    let jobs = slow_job(&server, dir.path(), "5m");
    let mut runner = RunnerProcess::start(&jobs, &[]);
    wait_in_flight(&mut runner);
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(checkpoint(&dir.path().join("state"), "week"), Some(instant(DEMO_END)), "{stderr}");
    assert_eq!(sink_files(&dir.path().join("out")).len(), 1);
}

/// A scheduled job whose plugin blocks for ever in its first `process` call, as one stuck on
/// network I/O without a timeout would.
fn blocked_job(server: &Server, dir: &Path, grace: &str) -> PathBuf {
    let probe = support::probe();
    let processors = format!(
        r#"processors = [{{ plugin = "{probe}", options = {{ block_in = "process" }} }}]"#,
        probe = probe.display()
    );
    week_job(server, dir, grace, &processors)
}

#[test]
fn sigterm_with_a_plugin_blocked_in_process_exits_soon_after_the_grace() {
    let server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(1);
    let jobs = blocked_job(&server, dir.path(), "1s");
    let mut runner = RunnerProcess::start(&jobs, &[]);
    wait_in_flight(&mut runner);
    let signalled = Instant::now();
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    let took = signalled.elapsed();
    eprintln!("flightline run exited {took:?} after SIGTERM with a plugin blocked in process");
    // The bound the shutdown promises, plus room for a loaded machine.
    assert!(took < grace + STOP_DEADLINE + Duration::from_secs(10), "took {took:?}: {stderr}");
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "{stdout}\n{stderr}");
    assert!(stderr.contains("probe blocks in process"), "the plugin never blocked: {stderr}");
    assert_eq!(checkpoint(&dir.path().join("state"), "week"), None, "{stderr}");
}

/// A built-in processor stuck in a blocking write: `print` renders its table into a standard
/// output that nobody reads, so its `finish` blocks once the pipe is full, holding the stdout
/// lock the runner's own summary needs. Shutdown must still end, and commit nothing.
#[test]
fn sigterm_with_a_built_in_processor_blocked_on_a_full_stdout_exits_soon_after_the_grace() {
    let server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let jobs = week_job(
        &server,
        dir.path(),
        "1s",
        r#"processors = [{ name = "print", options = { rows = 10000 } }]"#,
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flightline"))
        .arg("run")
        .arg(&jobs)
        .args(["--progress", "never"])
        .env("RUST_LOG", "info")
        // Held and never read: the pipe fills with the first 64 KiB of the table.
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let state = dir.path().join("state");
    // 10,000 rows are read and printed in well under this when stdout is read; here the window
    // cannot finish, so its checkpoint must not appear.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(checkpoint(&state, "week"), None, "the window finished: stdout did not block");
    assert!(child.try_wait().unwrap().is_none(), "the runner exited on its own");

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .arg(format!("-{SIGTERM}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Duration::from_secs(1) + STOP_DEADLINE + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {deadline:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("flightline run exited {:?} after SIGTERM with print blocked", signalled.elapsed());
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "{stderr}");
    assert_eq!(checkpoint(&state, "week"), None, "{stderr}");
}

#[test]
fn a_second_sigterm_exits_at_once_whatever_the_grace() {
    let server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let jobs = blocked_job(&server, dir.path(), "1h");
    let mut runner = RunnerProcess::start(&jobs, &[]);
    wait_in_flight(&mut runner);
    runner.signal(SIGTERM);
    // Two signals sent back to back may arrive as one: let the first be seen.
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(30), "the second signal was not obeyed: {took:?}");
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "{stdout}\n{stderr}");
    assert!(stderr.contains("second signal"), "{stderr}");
    assert_eq!(checkpoint(&dir.path().join("state"), "week"), None, "{stderr}");
}

#[test]
fn a_second_runner_on_the_same_state_directory_is_refused() {
    let server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let jobs = job_file(
        dir.path(),
        &format!(
            "[server]\nuri = \"{}\"\n[runner]\nstate_dir = \"{}\"\n[[job]]\nname = \"tick\"\n\
             sql = \"SELECT level, target FROM log_entries\"\nevery = \"1s\"\nprocessors = [{{ name = \"count_by\" }}]\n",
            server.uri(),
            state.display()
        ),
    );
    let first = RunnerProcess::start(&jobs, &[]);
    eventually("the first runner's checkpoint", || checkpoint(&state, "tick"));
    let (status, stdout, stderr) = RunnerProcess::start(&jobs, &[]).finish();
    assert_eq!(status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("in use by another runner"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "names the holder: {stderr}");
    first.signal(SIGTERM);
    let (status, _, _) = first.finish();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_server_outage_is_retried_counted_and_recovered_from() {
    let mut server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let jobs = job_file(
        dir.path(),
        &format!(
            r#"
[server]
uri = "{uri}"
connect_timeout = "1s"
request_timeout = "2s"
[metrics]
listen = "127.0.0.1:0"
[runner]
state_dir = "{state}"
[[job]]
name = "tick"
sql = "SELECT level, target FROM log_entries"
every = "200ms"
window = "1s"
retries = {{ max = 100, initial_backoff = "100ms", max_backoff = "500ms" }}
processors = [{{ name = "count_by" }}]
"#,
            uri = server.uri(),
            state = dir.path().join("state").display()
        ),
    );
    let mut runner = RunnerProcess::start(&jobs, &[]);
    let addr = runner.metrics_addr();
    let runs = |status: &str| {
        let metrics = scrape(addr);
        sample(&metrics, "flightline_job_runs_total", &[("job", "tick"), ("status", status)])
            .unwrap_or(0.0)
    };
    eventually("two good runs", || (runs("ok") >= 2.0).then_some(()));
    server.stop();
    eventually("failed attempts while the server is away", || {
        (runs("retried") >= 3.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let ok_before = runs("ok");
    server.restart();
    eventually("good runs again", || (runs("ok") >= ok_before + 3.0).then_some(()));
    assert_eq!(runs("failed"), 0.0, "no run gave up within its retries");
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
}

#[test]
fn a_checkpoint_write_that_fails_is_retried_with_the_lag_growing_until_it_lands() {
    let mut server = Server::start(10_000);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let jobs = job_file(
        dir.path(),
        &format!(
            r#"
[server]
uri = "{uri}"
connect_timeout = "1s"
[metrics]
listen = "127.0.0.1:0"
[runner]
state_dir = "{state}"
[[job]]
name = "tick"
sql = "SELECT level, target FROM log_entries"
every = "200ms"
window = "1s"
retries = {{ max = 100, initial_backoff = "100ms", max_backoff = "200ms" }}
processors = [{{ name = "count_by" }}]
"#,
            uri = server.uri(),
            state = state.display()
        ),
    );
    // The server is away at start, so the first window cannot finish before the checkpoint's
    // path is blocked (the runner reads the checkpoint at start, and refuses an unreadable one).
    server.stop();
    let mut runner = RunnerProcess::start(&jobs, &[]);
    let addr = runner.metrics_addr();
    let blocked = state.join("tick.checkpoint.json");
    // Only once a run has started has the runner read its checkpoint: blocking the path before
    // that (as soon as runner.lock appears, say) makes the start refuse it, and the runner exit.
    eventually("a series of the job (it started)", || {
        scrape(addr).keys().any(|series| series.contains("job=\"tick\"")).then_some(())
    });
    // A directory where the checkpoint goes: the rename onto it fails, even for root.
    std::fs::create_dir(&blocked).unwrap();
    server.restart();
    let lag = || sample(&scrape(addr), "flightline_checkpoint_lag_seconds", &[("job", "tick")]);
    let ok_runs =
        || sample(&scrape(addr), "flightline_job_runs_total", &[("job", "tick"), ("status", "ok")]);
    eventually("a finished window", || ok_runs().filter(|n| *n >= 1.0));
    let first = eventually("the lag gauge", lag);
    eventually("the lag growing while the write fails", || lag().filter(|l| *l > first + 0.5));
    assert!(blocked.is_dir(), "nothing replaced the blocking directory");
    assert_eq!(ok_runs(), Some(1.0), "no later window runs before its predecessor's checkpoint");

    std::fs::remove_dir(&blocked).unwrap();
    let landed =
        eventually("the checkpoint after the disk recovers", || checkpoint(&state, "tick"));
    eventually("later windows", || ok_runs().filter(|n| *n >= 3.0));
    runner.signal(SIGTERM);
    let (status, stdout, stderr) = runner.finish();
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot write the checkpoint; retrying"), "{stderr}");
    assert!(checkpoint(&state, "tick").is_some_and(|at| at > landed), "{stderr}");
}

#[test]
fn a_span_beyond_the_era_is_refused_by_check_and_run_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = job_file(
        dir.path(),
        "[server]\nuri = \"grpc://127.0.0.1:1\"\n[[job]]\nname = \"far\"\n\
         sql = \"SELECT 1\"\nevery = \"1m\"\nlast = \"999999999d\"\n",
    );
    for command in ["check", "run"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_flightline"))
            .arg(command)
            .arg(&jobs)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("jobs.toml:7: job[0].last = \"999999999d\""),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
    }
}
