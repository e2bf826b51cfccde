//! Peak memory of `flightline serve` while a client drains a whole demo table.
//!
//! Starts the real binary with 1M and then 10M demo rows, drains `SELECT * FROM log_entries`
//! over DoGet, and prints the server's peak RSS (VmHWM) for each: with streaming, the peak
//! must not grow with the result. Run: `cargo bench -p flightline-runner --bench server_memory`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use futures::TryStreamExt;
use prost::Message;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(rows: u64) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", &rows.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start flightline serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let uri = line.trim().rsplit(' ').next().unwrap_or_default().replace("grpc://", "http://");
    (Server(child), uri)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn drain(uri: &str, sql: &str) -> (usize, usize) {
    let channel = tonic::transport::Channel::from_shared(uri.to_string())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let ticket = TicketStatementQuery { statement_handle: sql.to_string().into() };
    let ticket = Ticket::new(ticket.as_any().encode_to_vec());
    let response = client.do_get(ticket).await.expect("do_get").into_inner();
    let mut stream = FlightRecordBatchStream::new_from_flight_data(response.map_err(Into::into));
    let (mut rows, mut bytes) = (0, 0);
    while let Some(batch) = stream.try_next().await.expect("batch") {
        rows += batch.num_rows();
        bytes += batch
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
            .sum::<usize>();
    }
    (rows, bytes)
}

#[tokio::main]
async fn main() {
    let mut peaks = Vec::new();
    for rows in [1_000_000u64, 10_000_000] {
        let (server, uri) = start(rows);
        let idle = peak_rss_mib(server.0.id());
        let t = Instant::now();
        let (n, bytes) = drain(&uri, "SELECT * FROM log_entries").await;
        let secs = t.elapsed().as_secs_f64();
        let peak = peak_rss_mib(server.0.id());
        assert_eq!(n as u64, rows, "every row arrived");
        println!(
            "rows={rows:>10} result={:>8.1} MiB in {secs:>6.2}s ({:>9.0} rows/s)  server peak RSS: idle {idle:.1} MiB, after drain {peak:.1} MiB",
            bytes as f64 / 1048576.0,
            n as f64 / secs
        );
        peaks.push((bytes as f64, peak));
    }
    let (small, large) = (peaks[0], peaks[1]);
    println!(
        "result grew {:.1}x, server peak RSS grew {:.2}x",
        large.0 / small.0,
        large.1 / small.1
    );
}
