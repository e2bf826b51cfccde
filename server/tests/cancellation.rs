//! An abandoned, timed-out or shut-down query stops within seconds at any data size, whatever
//! operator it is in. Over 300,000 demo rows one poll of a nested loop join runs for minutes in
//! the dev profile, so a cancellation that waits for the query to yield on its own never lands;
//! at the 1,000 rows of `limits.rs` it lands at once either way.
//!
//! "Stopped" is measured, not inferred from the client's side: the CPU time of the server's
//! query threads (`flightline-query`, read from `/proc/self/task`) stops growing.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use flightline_server::ServerBuilder;

const ROWS: u64 = 300_000;
/// The query: every pair passes the filter, so the join emits all the time.
const CROSS_JOIN: &str =
    "SELECT count(*) FROM log_entries a, log_entries b WHERE a.level + b.level > 0";
/// No pair passes: the join emits nothing while it works through a probe batch.
const EMPTY_JOIN: &str =
    "SELECT count(*) FROM log_entries a, log_entries b WHERE a.level + b.level > 100";
/// How soon after the cancellation the query threads must be idle: "within seconds", with
/// room for a loaded CI machine.
const IDLE_WITHIN: Duration = Duration::from_secs(10);

fn heavy_server() -> ServerBuilder {
    ServerBuilder::new().demo_rows(ROWS).query_timeout(None)
}

/// CPU ticks (1/100 s) used so far by each live query thread, by thread id.
fn query_thread_ticks() -> HashMap<String, u64> {
    let mut ticks = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        // Thread names are cut to 15 bytes: "flightline-quer".
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { continue };
        if !comm.starts_with("flightline-quer") {
            continue;
        }
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let used = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks.insert(task.file_name().to_string_lossy().into_owned(), used);
    }
    ticks
}

/// CPU time the query threads used over the next `span` (threads that end meanwhile drop out).
async fn query_cpu_over(span: Duration) -> Duration {
    let before = query_thread_ticks();
    tokio::time::sleep(span).await;
    let used: u64 = query_thread_ticks()
        .iter()
        .filter_map(|(tid, now)| before.get(tid).map(|then| now.saturating_sub(*then)))
        .sum();
    Duration::from_millis(used * 10)
}

/// Waits until the query threads burn at least a third of a core.
async fn until_busy() {
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_cpu_over(Duration::from_millis(500)).await < Duration::from_millis(150) {
        assert!(Instant::now() < deadline, "the query never started");
    }
}

/// How long after now the query threads fall idle (under 5% of a core over half a second),
/// failing the test past [`IDLE_WITHIN`].
async fn until_idle() -> Duration {
    let started = Instant::now();
    loop {
        let used = query_cpu_over(Duration::from_millis(500)).await;
        if used <= Duration::from_millis(25) {
            return started.elapsed();
        }
        let waited = started.elapsed();
        assert!(
            waited < IDLE_WITHIN,
            "the query still runs {waited:?} later ({used:?} CPU / 0.5 s)"
        );
    }
}

/// A client that dies 3 s into `sql` (its connection closes): the server stops the query.
async fn killed_client_stops(sql: &str) {
    let s = spawn(heavy_server()).await;
    let mut c = client(&s).await;
    let started = Instant::now();
    let stream = c.do_get(sql_ticket(sql)).await.map_err(status).unwrap();
    until_busy().await;
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
    drop((stream, c));
    let idle = until_idle().await;
    eprintln!("{sql}: query threads idle {idle:?} after the client went away");
    // The server is fine afterwards.
    let mut other = client(&s).await;
    assert_eq!(single_i64(&run(&mut other, "SELECT CAST(7 AS BIGINT)").await.unwrap()), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_of_a_cross_join_aggregate_over_300000_rows_stops_its_query() {
    killed_client_stops(CROSS_JOIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_of_a_join_that_emits_nothing_stops_its_query() {
    killed_client_stops(EMPTY_JOIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_timeout_of_2s_stops_a_cross_join_aggregate_over_300000_rows() {
    let limit = Duration::from_secs(2);
    let s = spawn(heavy_server().query_timeout(Some(limit))).await;
    let mut c = client(&s).await;
    let started = Instant::now();
    let call = tokio::time::timeout(limit + IDLE_WITHIN, run(&mut c, CROSS_JOIN)).await;
    let err = call.expect("the query timeout did not land").unwrap_err();
    let answered = started.elapsed();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("--query-timeout of 2s"), "{}", err.message());
    let idle = until_idle().await;
    eprintln!("timeout error after {answered:?}; query threads idle {idle:?} later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_a_cross_join_aggregate_over_300000_rows_after_the_grace() {
    let grace = Duration::from_secs(1);
    let s = spawn(heavy_server().shutdown_grace(grace)).await;
    let mut c = client(&s).await;
    let stream = c.do_get(sql_ticket(CROSS_JOIN)).await.map_err(status).unwrap();
    until_busy().await;
    let started = Instant::now();
    tokio::time::timeout(grace + IDLE_WITHIN, s.shutdown()).await.unwrap().unwrap();
    let idle = until_idle().await;
    eprintln!("shutdown returned after {:?}; query threads idle {idle:?} later", started.elapsed());
    drop(stream);
}
