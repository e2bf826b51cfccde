//! One audit line per query, at `info` under the target `flightline::audit`: who asked
//! (the caller and its `x-client-*` headers), what (the SQL's length and SHA-256, never the
//! text: it may hold literals that are secrets), how it ended (rows, bytes, duration, status)
//! and the request id that joins it to the client's error and log.
//!
//! A query's line is written when its result stream ends, fails, or is dropped because the
//! client went away (`status=cancelled`); a query refused before any result (bad SQL, over a
//! budget, GetFlightInfo failing) gets its line then. A successful GetFlightInfo writes none:
//! the DoGet that follows is the query.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use arrow_flight::FlightData;
use flightline_core::client::is_secret_header;
use flightline_core::request_id;
use futures::Stream;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::identity::Caller;
use crate::request_id::{RequestId, tag};

/// The log target of audit lines, to route them apart (`RUST_LOG=flightline::audit=info`).
pub const TARGET: &str = "flightline::audit";
/// A client header value longer than this is cut in the line.
const MAX_HEADER_CHARS: usize = 200;

/// Rows and bytes a query's result has sent so far.
#[derive(Debug, Default)]
pub struct Tally {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    /// Counts `rows` more rows.
    pub fn rows(&self, rows: usize) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// The rows counted so far.
    #[cfg(test)]
    pub(crate) fn rows_counted(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
}

/// One query's audit line, written once: by [`Audit::fail`], at the end of an
/// [`AuditedStream`], or on drop.
#[derive(Debug)]
pub struct Audit {
    id: RequestId,
    caller: String,
    client: Vec<(String, String)>,
    traceparent: Option<String>,
    sql_bytes: usize,
    sql_sha256: String,
    started: Instant,
    tally: Arc<Tally>,
    written: bool,
}

impl Audit {
    /// Starts timing `sql`, the query of `request`.
    pub fn start<T>(request: &Request<T>, sql: &str) -> Self {
        let md = request.metadata();
        let client = md
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                    let key = key.as_str();
                    let shown = key.starts_with("x-client-") && !is_secret_header(key);
                    shown.then(|| (key.to_string(), clip(value.to_str().unwrap_or("<not text>"))))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let traceparent = md
            .get(request_id::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .filter(|v| request_id::is_traceparent(v))
            .map(str::to_string);
        Self {
            id: RequestId::of(request),
            caller: Caller::of(request).to_string(),
            client,
            traceparent,
            sql_bytes: sql.len(),
            sql_sha256: hex::encode(Sha256::digest(sql.as_bytes())),
            started: Instant::now(),
            tally: Arc::new(Tally::default()),
            written: false,
        }
    }

    /// The counters the result's encoder adds rows to.
    pub fn tally(&self) -> Arc<Tally> {
        Arc::clone(&self.tally)
    }

    /// The query failed with `status` before a result: writes the line, and returns the
    /// status naming the request id.
    pub fn fail(mut self, status: Status) -> Status {
        let status = tag(status, &self.id);
        self.write(&status_label(&status), Some(status.message()));
        status
    }

    /// Streams `result`, writing the line when it ends; errors name the request id.
    pub fn follow<S>(self, result: S) -> AuditedStream<S> {
        AuditedStream { inner: result, audit: Some(self) }
    }

    fn write(&mut self, status: &str, error: Option<&str>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        tracing::info!(
            target: TARGET,
            request_id = %self.id,
            user = %self.caller,
            client = ?self.client,
            traceparent = self.traceparent.as_deref(),
            sql_bytes = self.sql_bytes,
            sql_sha256 = %self.sql_sha256,
            rows = self.tally.rows.load(Ordering::Relaxed),
            bytes = self.tally.bytes.load(Ordering::Relaxed),
            seconds = self.started.elapsed().as_secs_f64(),
            status = %status,
            error,
            "query"
        );
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.write("cancelled", Some("the client stopped reading before the end of the result"));
    }
}

/// A result stream that counts the bytes it sends and writes its query's audit line at the
/// end; the [`Audit`] inside writes it on drop when the client goes away first.
pub struct AuditedStream<S> {
    inner: S,
    audit: Option<Audit>,
}

impl<S> Stream for AuditedStream<S>
where
    S: Stream<Item = Result<FlightData, Status>> + Unpin,
{
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match polled {
            Poll::Ready(Some(Ok(data))) => {
                if let Some(audit) = &self.audit {
                    let bytes = data.data_body.len() + data.data_header.len();
                    audit.tally.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(status))) => match self.audit.take() {
                Some(audit) => Poll::Ready(Some(Err(audit.fail(status)))),
                None => Poll::Ready(Some(Err(status))),
            },
            Poll::Ready(None) => {
                if let Some(mut audit) = self.audit.take() {
                    audit.write("ok", None);
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn status_label(status: &Status) -> String {
    format!("{:?}", status.code()).to_lowercase()
}

fn clip(value: &str) -> String {
    match value.char_indices().nth(MAX_HEADER_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}
