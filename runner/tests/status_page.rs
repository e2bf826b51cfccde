//! The runner's HTTP listener beside `/metrics`: the status page in a real browser (headless
//! Chromium from Debian, driven by playwright: interop/status_page.py), `/status.json`,
//! `/healthz`, `/readyz` before and after the server is reachable, and the listener's token.

mod common;

#[path = "../../core/tests/support/mod.rs"]
mod support;
#[path = "../../interop/venv.rs"]
mod venv;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::{RunnerProcess, Server, eventually, http_get, job_file};
use serde_json::Value;

const TOKEN: &str = "page token/with+odd chars";
const TOKEN_IN_URL: &str = "page%20token%2Fwith%2Bodd%20chars";

fn listener(runner: &mut RunnerProcess) -> SocketAddr {
    let rest = runner.wait_for_line("flightline: status page on http://");
    rest.trim_end_matches('/').parse().expect("a socket address")
}

fn status(addr: SocketAddr) -> Value {
    let (code, body) = http_get(addr, "/status.json", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status.json is JSON")
}

fn job<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["jobs"].as_array().unwrap().iter().find(|j| j["name"] == name).unwrap_or_else(|| {
        panic!("no job {name} in {doc:#}");
    })
}

fn start_runner(dir: &Path, uri: &str, jobs: &str) -> RunnerProcess {
    let text = format!(
        "[server]\nuri = \"{uri}\"\n[http]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"PAGE_TOKEN\"\n\
         [runner]\nstate_dir = \"{}\"\n{jobs}",
        dir.join("state").display()
    );
    let file = job_file(dir, &text);
    // SAFETY: set before any thread of this test reads the environment; the child inherits it.
    unsafe { std::env::set_var("PAGE_TOKEN", TOKEN) };
    RunnerProcess::start(&file, &[])
}

const TICK_JOB: &str = r#"
[[job]]
name = "ticks"
sql = "SELECT level, target FROM log_entries"
every = "1s"
processors = [{ name = "count_by" }]
"#;

#[test]
fn readyz_waits_for_the_server_and_the_listener_wants_its_token() {
    let mut server = Server::start(2_000);
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = start_runner(dir.path(), &server.uri(), TICK_JOB);
    let addr = listener(&mut runner);

    assert_eq!(http_get(addr, "/healthz", None).0, 200);
    let (code, body) = http_get(addr, "/readyz", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("server \"default\" not reached"), "{body}");
    for path in ["/", "/status.json", "/metrics"] {
        let (code, body) = http_get(addr, path, None);
        assert_eq!(code, 401, "{path} without the token: {body}");
        assert_eq!(http_get(addr, path, Some("wrong")).0, 401, "{path} with a wrong token");
    }
    let (code, _) = http_get(addr, &format!("/status.json?token={TOKEN_IN_URL}"), None);
    assert_eq!(code, 200, "the token in the query string, percent-encoded");
    let doc = status(addr);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["ready"], false);
    assert_eq!(doc["servers"]["default"], false);

    server.restart();
    eventually("/readyz answers 200 once the server is up", || {
        (http_get(addr, "/readyz", None).0 == 200).then_some(())
    });
    let doc = eventually("a window of ticks committed", || {
        let doc = status(addr);
        (job(&doc, "ticks")["runs_ok"].as_u64() >= Some(1)).then_some(doc)
    });
    assert_eq!(doc["servers"]["default"], true);
    assert_eq!(doc["state_writable"], true);
    let ticks = job(&doc, "ticks");
    assert!(ticks["checkpoint"].is_string() && ticks["lag_seconds"].is_number(), "{ticks:#}");
    assert!(ticks["last_run"]["rows"].is_number(), "{ticks:#}");
    let (code, metrics) = http_get(addr, "/metrics", Some(TOKEN));
    assert_eq!(code, 200);
    assert!(metrics.contains("flightline_job_runs_total"), "{metrics}");
}

#[test]
fn the_page_shows_every_job_in_a_browser() {
    let venv = venv::setup_venv();
    let server = Server::start(200_000);
    let dir = tempfile::tempdir().unwrap();
    let probe = support::probe();
    let jobs = format!(
        r#"{TICK_JOB}
[[job]]
name = "slow_scan"
sql = "SELECT * FROM log_entries"
target_batch_bytes = 32768
processors = [{{ plugin = "{}", options = {{ delay_ms = 150 }} }}]

[[job]]
name = "broken"
sql = "SELECT * FROM no_such_table"
retries = {{ max = 0 }}
processors = [{{ name = "count_by" }}]

[[job]]
name = "levels"
sql = "SELECT level, count(*) AS n FROM log_entries GROUP BY level"
processors = [{{ name = "print" }}]
"#,
        probe.display()
    );
    let mut runner = start_runner(dir.path(), &server.uri(), &jobs);
    let addr = listener(&mut runner);

    let doc = eventually("broken failed and slow_scan is running", || {
        let doc = status(addr);
        let broken = job(&doc, "broken")["state"] == "failed";
        let running = job(&doc, "slow_scan")["state"] == "running";
        (broken && running).then_some(doc)
    });
    let broken = job(&doc, "broken");
    assert!(broken["last_error"].as_str().unwrap().contains("no_such_table"), "{broken:#}");
    assert!(job(&doc, "slow_scan")["progress"]["rows"].is_number(), "{doc:#}");

    let screenshot = venv::repo_root().join("target/status-page.png");
    let output = Command::new(venv.join("bin/python"))
        .arg(venv::repo_root().join("interop/status_page.py"))
        .arg(format!("http://{addr}/?token={TOKEN_IN_URL}"))
        .args(["--jobs", "ticks,slow_scan,broken,levels"])
        .args(["--failed", "broken", "--error", "no_such_table"])
        .args(["--running", "slow_scan", "--timeout", "60"])
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .expect("run interop/status_page.py");
    assert!(output.status.success(), "the page check failed\n{}", venv::show(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("PASS"), "{}", venv::show(&output));
    assert!(std::fs::metadata(&screenshot).map(|m| m.len() > 10_000).unwrap_or(false));
}
