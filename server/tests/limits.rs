//! One query never starves the others, and every limit an operator sets holds: query timeout,
//! concurrency with a bounded wait (in all and per user), send stalls, cancellation on
//! disconnect, bounded shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use flightline_server::ServerBuilder;
use futures::StreamExt;

fn quiet_server() -> ServerBuilder {
    ServerBuilder::new().demo_rows(1_000).query_timeout(None)
}

/// The server is busy (the never-ending query burns CPU): at least a third of a core.
async fn assert_busy() -> Duration {
    let used = cpu_used_over(Duration::from_secs(1)).await;
    assert!(used >= Duration::from_millis(300), "the query should be running: {used:?} of CPU");
    used
}

/// The server is idle again: the abandoned query no longer runs.
async fn assert_idle_soon() {
    // About a second for the cancellation to land, then a quiet window.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let used = cpu_used_over(Duration::from_secs(2)).await;
    assert!(used < Duration::from_millis(400), "the query still runs: {used:?} of CPU in 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_is_answered_while_a_never_ending_query_runs() {
    let s = spawn(quiet_server()).await;
    let mut heavy = client(&s).await;
    let stream = heavy.do_get(sql_ticket(NEVER_ENDING)).await.map_err(status).unwrap();
    assert_busy().await;

    let mut other = client(&s).await;
    let started = Instant::now();
    let answer = run(&mut other, "SELECT CAST(1 AS BIGINT)").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(single_i64(&answer), 1);
    eprintln!("SELECT 1 beside a never-ending query answered in {waited:?}");
    assert!(waited < Duration::from_secs(10), "SELECT 1 took {waited:?}");
    let tables = other.get_tables(Default::default()).await.map_err(status).unwrap();
    assert!(!fetch(&mut other, tables).await.unwrap().is_empty());
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_result_stream_stops_its_query() {
    let s = spawn(quiet_server()).await;
    let mut c = client(&s).await;
    let mut stream = c.do_get(sql_ticket(NEVER_ENDING)).await.map_err(status).unwrap();
    assert_busy().await;
    // Nothing but the schema arrives while the count runs.
    let next = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(next.is_err(), "the never-ending query produced a result");
    drop(stream);
    assert_idle_soon().await;
    assert_eq!(single_i64(&run(&mut c, "SELECT CAST(2 AS BIGINT)").await.unwrap()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_get_flight_info_stops_its_planning_and_the_server_lives_on() {
    let s = spawn(quiet_server()).await;
    let mut c = client(&s).await;
    // Planning this waits on nothing; only its execution never ends. Cancel the DoGet early.
    let info = c.execute(NEVER_ENDING.into(), None).await.map_err(status).unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let call = tokio::time::timeout(Duration::from_millis(1_500), async {
        let mut stream = c.do_get(ticket).await.map_err(status).unwrap();
        stream.next().await
    });
    assert!(call.await.is_err(), "the never-ending query ended");
    assert_idle_soon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_query_timeout_the_query_is_cancelled_with_an_error_naming_the_limit() {
    let s = spawn(quiet_server().query_timeout(Some(Duration::from_secs(1)))).await;
    let mut c = client(&s).await;
    let err = run(&mut c, NEVER_ENDING).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("--query-timeout of 1s"), "{}", err.message());
    assert_idle_soon().await;
    // A query under the limit is unaffected.
    assert_eq!(single_i64(&run(&mut c, "SELECT count(*) FROM log_entries").await.unwrap()), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_queries_a_caller_waits_then_hears_busy() {
    let queue = Duration::from_millis(500);
    let s = spawn(quiet_server().max_concurrent_queries(1).queue_timeout(queue)).await;
    let mut heavy = client(&s).await;
    let stream = heavy.do_get(sql_ticket(NEVER_ENDING)).await.map_err(status).unwrap();

    let mut other = client(&s).await;
    let started = Instant::now();
    let err = run(&mut other, "SELECT 1").await.unwrap_err();
    assert!(started.elapsed() >= queue, "refused before the queue timeout");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("server busy"), "{}", err.message());
    assert!(err.message().contains("--max-concurrent-queries"), "{}", err.message());
    // Metadata calls take no slot.
    other.get_catalogs().await.map_err(status).unwrap();

    // Dropping the running query frees its slot.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run(&mut other, "SELECT CAST(3 AS BIGINT)").await {
            Ok(b) => break assert_eq!(single_i64(&b), 3),
            Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < deadline => {}
            Err(e) => panic!("the slot was not freed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_query_runs_once_a_slot_frees() {
    let s = spawn(quiet_server().max_concurrent_queries(1).queue_timeout(Duration::from_secs(30)))
        .await;
    let mut heavy = client(&s).await;
    let stream = heavy.do_get(sql_ticket(NEVER_ENDING)).await.map_err(status).unwrap();
    let mut other = client(&s).await;
    let waiting = tokio::spawn(async move { run(&mut other, "SELECT CAST(4 AS BIGINT)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the second query did not wait for the slot");
    drop(stream);
    let answered = tokio::time::timeout(CALL_BOUND, waiting).await.unwrap().unwrap();
    assert_eq!(single_i64(&answered.unwrap()), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_queries_still_running_after_the_grace() {
    let grace = Duration::from_secs(1);
    let s = spawn(quiet_server().shutdown_grace(grace)).await;
    let mut c = client(&s).await;
    let mut stream = c.do_get(sql_ticket(NEVER_ENDING)).await.map_err(status).unwrap();
    assert_busy().await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), s.shutdown()).await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(took >= grace, "the query got no grace: {took:?}");
    // The client sees an error, never a truncated result passed off as complete.
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap();
    let err = status(end.expect("an error, not the end of the stream").unwrap_err());
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert_idle_soon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_queries_in_flight_returns_at_once() {
    let s = spawn(quiet_server().shutdown_grace(Duration::from_secs(60))).await;
    let mut c = client(&s).await;
    assert_eq!(single_i64(&run(&mut c, "SELECT CAST(5 AS BIGINT)").await.unwrap()), 5);
    drop(c);
    // Within the grace: nothing had to be cancelled.
    tokio::time::timeout(Duration::from_secs(30), s.shutdown()).await.unwrap().unwrap();
}

/// A result far larger than what a connection buffers: a client that does not read it stalls it.
const LARGE: &str = "SELECT * FROM log_entries";

fn large_server() -> ServerBuilder {
    ServerBuilder::new().demo_rows(200_000).query_timeout(None)
}

async fn client_with(s: &flightline_server::RunningServer, token: &str) -> Client {
    let mut c = client(s).await;
    c.set_header("x-api-key", token);
    c
}

type Client = arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_unread_streams_of_one_user_leave_slots_for_another_user() {
    let builder = large_server()
        .token("alice-token")
        .token("bob-token")
        .max_concurrent_queries(8)
        .queue_timeout(Duration::from_millis(500))
        // Only the per-user cap is under test: unread streams are never cancelled here.
        .send_stall_timeout(None);
    let s = spawn(builder).await;
    let mut unread = Vec::new();
    for _ in 0..8 {
        let mut alice = client_with(&s, "alice-token").await;
        match alice.do_get(sql_ticket(LARGE)).await.map_err(status) {
            Ok(stream) => unread.push((alice, stream)),
            Err(busy) => {
                assert_eq!(busy.code(), tonic::Code::Unavailable, "{busy}");
                let message = busy.message();
                assert!(message.contains("--max-queries-per-user"), "{message}");
                assert!(message.contains("static token #1"), "{message}");
                assert!(!message.contains("alice-token"), "{message}");
            }
        }
    }
    assert_eq!(unread.len(), 2, "a quarter of the 8 slots");

    let mut bob = client_with(&s, "bob-token").await;
    let started = Instant::now();
    let answer = run(&mut bob, "SELECT CAST(1 AS BIGINT)").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(single_i64(&answer), 1);
    eprintln!("another user's query beside 8 unread streams answered in {waited:?}");
    assert!(waited < Duration::from_secs(1), "bob waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_its_client_stopped_reading_is_cancelled_and_frees_its_slot() {
    let stall = Duration::from_secs(1);
    let builder = large_server()
        .max_concurrent_queries(1)
        .queue_timeout(Duration::from_secs(60))
        .send_stall_timeout(Some(stall));
    let s = spawn(builder).await;
    let mut reader = client(&s).await;
    let mut unread = reader.do_get(sql_ticket(LARGE)).await.map_err(status).unwrap();

    // The only slot is held by a stream nobody reads; the stall timeout frees it.
    let mut other = client(&s).await;
    let started = Instant::now();
    let answer = run(&mut other, "SELECT CAST(6 AS BIGINT)").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(single_i64(&answer), 6);
    eprintln!("the next query got the stalled stream's slot after {waited:?} (stall {stall:?})");

    // The stalled stream delivers what was sent, then an error: never a clean, short end.
    let end = tokio::time::timeout(CALL_BOUND, async {
        let mut last = None;
        while let Some(item) = unread.next().await {
            last = Some(item);
        }
        last
    });
    let err = status(end.await.unwrap().expect("some data").unwrap_err());
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("--send-stall-timeout"), "{}", err.message());
}
