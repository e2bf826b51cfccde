//! The runner's shared resources under a slow or failing server: a server that never answers
//! delays only its own jobs, and a job waiting out a retry's backoff holds no query slot.
//!
//! Each test runs the orchestrator in this process on a current-thread runtime (jobs start in
//! file order) and stops it once the healthy job's file appears, so a healthy job that is held
//! up shows as a file that never comes.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flightline_runner::config::Config;
use flightline_runner::orchestrate::{self, RunOptions};
use flightline_runner::progress::{ProgressDisplay, ProgressMode};
use flightline_runner::summary::{JobSummary, RunSummary};
use flightline_server::{RunningServer, ServerBuilder};
use futures::StreamExt;

/// Generous bound on what takes well under a second when nothing holds it up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A query whose rows (10^9 of them) keep coming: a stream of it that is opened and then not
/// read holds its server's slot for as long as the stream lives.
const ENDLESS_ROWS: &str = "SELECT a.level FROM log_entries a, log_entries b, log_entries c";

async fn demo_server(slots: usize) -> RunningServer {
    ServerBuilder::new()
        .demo_rows(1_000)
        .max_concurrent_queries(slots)
        .queue_timeout(Duration::ZERO)
        // A stream the test holds unread must keep its slot for the whole test.
        .send_stall_timeout(None)
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// A port whose accept queue is full: connecting to it hangs until the client gives up, as
/// with a server host that drops packets.
struct Unreachable {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _queued: Vec<TcpStream>,
}

fn unreachable() -> Unreachable {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    // Never accepted: once the queue is full, the kernel drops new connection attempts.
    while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        queued.push(stream);
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    Unreachable { addr, _listener: listener, _queued: queued }
}

/// Runs `text` as a job file until `file` exists (or [`PATIENCE`] passes), then stops it like
/// a signal would; returns the summary and whether the file appeared while the run went on.
async fn run_until_written(text: &str, file: &Path) -> (RunSummary, bool) {
    let config = Config::parse(Path::new("pool.toml"), text, &|_| None).unwrap();
    let appeared = Arc::new(AtomicBool::new(false));
    let shutdown = {
        let (appeared, file) = (Arc::clone(&appeared), file.to_path_buf());
        async move {
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if file.exists() {
                    appeared.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let run = orchestrate::run(
        &config,
        RunOptions::default(),
        ProgressDisplay::new(ProgressMode::Never),
        shutdown,
    );
    let summary =
        tokio::time::timeout(PATIENCE * 2, run).await.expect("the run did not stop").unwrap();
    (summary, appeared.load(Ordering::SeqCst))
}

fn job<'a>(summary: &'a RunSummary, name: &str) -> &'a JobSummary {
    summary.jobs.iter().find(|j| j.name == name).unwrap()
}

fn csv(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.csv"))
}

#[tokio::test]
async fn a_server_that_never_answers_does_not_delay_a_job_on_a_healthy_server() {
    let healthy = demo_server(4).await;
    let stuck = unreachable();
    let dir = tempfile::tempdir().unwrap();
    let out = csv(dir.path(), "healthy");
    // The stuck job comes first: it asks for its client before the healthy job does.
    let text = format!(
        r#"
[servers.stuck]
uri = "grpc://{stuck}"
connect_timeout = "1h"
[servers.healthy]
uri = "{healthy}"
[[job]]
name = "stuck"
server = "stuck"
sql = "SELECT level FROM log_entries"
processors = [{{ name = "count_by" }}]
[[job]]
name = "healthy"
server = "healthy"
sql = "SELECT level FROM log_entries"
processors = [{{ name = "csv_sink", options = {{ path = "{out}" }} }}]
"#,
        stuck = stuck.addr,
        healthy = healthy.uri(),
        out = out.display(),
    );
    let (summary, appeared) = run_until_written(&text, &out).await;
    assert!(appeared, "the healthy job waited for the stuck server's connect: {summary:#?}");
    assert_eq!(job(&summary, "healthy").runs_ok, 1, "{summary:#?}");
    let stuck_job = job(&summary, "stuck");
    assert_eq!((stuck_job.runs_ok, stuck_job.runs_cancelled), (0, 1), "{summary:#?}");
}

#[tokio::test]
async fn a_job_waiting_out_its_backoff_does_not_hold_the_only_slot() {
    let healthy = demo_server(4).await;
    // A server with one slot, held by a query that never ends: every other query is told
    // "busy" (Unavailable), which the runner retries after a backoff.
    let busy = demo_server(1).await;
    // Planning and execution take a slot each, so the slot is surely held only once the
    // hog's first batch has arrived: from then on every other query is refused.
    let hog = flightline_core::FlightSqlClient::builder(busy.uri()).connect().await.unwrap();
    let mut hog_stream = hog.query_stream(ENDLESS_ROWS, None).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, hog_stream.next()).await.unwrap();
    assert!(first.unwrap().unwrap().num_rows() > 0);
    let probe = flightline_core::FlightSqlClient::builder(busy.uri()).connect().await.unwrap();
    let refused = probe.query("SELECT 1", None).await.unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert!(refused.to_string().contains("busy"), "{refused}");

    let dir = tempfile::tempdir().unwrap();
    // The healthy job's only window is due two seconds from now: by then the retrying job has
    // failed once and sleeps out an hour-long backoff. A scheduled sink names its file after
    // the window (`check` refuses one that does not), so `begin` is a whole second.
    let now = chrono::Utc::now().timestamp() + 1;
    let begin = chrono::DateTime::from_timestamp(now, 0).unwrap();
    let out = csv(dir.path(), &begin.format("%Y%m%dT%H%M%SZ").to_string());
    let out_template = dir.path().join("{begin}.csv");
    let text = format!(
        r#"
[servers.busy]
uri = "{busy}"
[servers.healthy]
uri = "{healthy}"
[runner]
max_concurrent_queries = 1
state_dir = "{state}"
[[job]]
name = "retrying"
server = "busy"
sql = "SELECT level FROM log_entries"
retries = {{ max = 5, initial_backoff = "1h", max_backoff = "1h" }}
processors = [{{ name = "count_by" }}]
[[job]]
name = "healthy"
server = "healthy"
sql = "SELECT level FROM log_entries"
begin = "{begin}"
every = "1s"
window = "1s"
end = "{end}"
processors = [{{ name = "csv_sink", options = {{ path = "{out}" }} }}]
"#,
        busy = busy.uri(),
        healthy = healthy.uri(),
        state = dir.path().join("state").display(),
        begin = begin.to_rfc3339(),
        end = (begin + chrono::Duration::seconds(1)).to_rfc3339(),
        out = out_template.display(),
    );
    let (summary, appeared) = run_until_written(&text, &out).await;
    drop(hog_stream);
    assert!(appeared, "the healthy job waited for the slot of a job in backoff: {summary:#?}");
    assert_eq!(job(&summary, "healthy").runs_ok, 1, "{summary:#?}");
    let retrying = job(&summary, "retrying");
    assert!(retrying.retries >= 1, "the job never failed into its backoff: {summary:#?}");
    assert_eq!((retrying.runs_ok, retrying.runs_cancelled), (0, 1), "{summary:#?}");
}
