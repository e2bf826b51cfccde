//! What the server's integration tests share: a loopback server, a client, and calls.
#![allow(dead_code)]

use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightInfo, Ticket};
use flightline_server::{RunningServer, ServerBuilder};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;

/// Every call of a test is bounded by this, so a hung server fails the test instead of CI.
pub const CALL_BOUND: Duration = Duration::from_secs(120);

/// A query that never ends on its own: an unbounded recursive CTE, counted.
pub const NEVER_ENDING: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                                SELECT count(*) FROM r";

/// Starts `builder` on an ephemeral loopback port.
pub async fn spawn(builder: ServerBuilder) -> RunningServer {
    builder.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A Flight SQL client on its own connection to `server`.
pub async fn client(server: &RunningServer) -> FlightSqlServiceClient<Channel> {
    let uri = format!("http://{}", server.local_addr());
    let channel = Channel::from_shared(uri).unwrap().connect().await.unwrap();
    FlightSqlServiceClient::new(channel)
}

/// GetFlightInfo then DoGet on every endpoint, bounded by [`CALL_BOUND`].
pub async fn run(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    tokio::time::timeout(CALL_BOUND, async {
        let info = client.execute(sql.to_string(), None).await.map_err(status)?;
        fetch(client, info).await
    })
    .await
    .unwrap_or_else(|_| panic!("no answer within {CALL_BOUND:?} to {}", head(sql)))
}

/// DoGet of every endpoint of `info`.
pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("endpoint has a ticket");
        let stream = client.do_get(ticket).await.map_err(status)?;
        out.extend(stream.try_collect::<Vec<_>>().await.map_err(status)?);
    }
    Ok(out)
}

/// The ticket the Micromegas Python client sends: the SQL itself.
pub fn sql_ticket(sql: &str) -> Ticket {
    let t = TicketStatementQuery { statement_handle: sql.to_string().into() };
    Ticket::new(t.as_any().encode_to_vec())
}

/// The gRPC status behind a client error (the client wraps every call's status in `Tonic`).
pub fn status(e: FlightError) -> tonic::Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => tonic::Status::unknown(other.to_string()),
    }
}

/// The single Int64 value of a one-row, one-column result.
pub fn single_i64(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// The first 80 bytes of `sql`, for messages about huge statements.
pub fn head(sql: &str) -> String {
    let cut = (0..=sql.len().min(80)).rev().find(|i| sql.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... ({} bytes)", &sql[..cut], sql.len())
}

/// CPU time (user + system) this process has used so far, from /proc/self/stat.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every platform Rust supports.
    Duration::from_millis(ticks * 10)
}

/// CPU time used over the next `span`.
pub async fn cpu_used_over(span: Duration) -> Duration {
    let before = cpu_time();
    tokio::time::sleep(span).await;
    cpu_time().saturating_sub(before)
}
