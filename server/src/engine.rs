//! Where queries run: a Tokio runtime of their own, under the operator's [`QueryLimits`].
//!
//! DataFusion plans and executes on CPU-bound tasks. On the runtime that serves gRPC, one heavy
//! query would starve accepting connections, auth and every other call; DataFusion's
//! `thread_pools` example gives queries a dedicated runtime instead, as done here. Its threads
//! get large stacks, so that deep expression trees that DataFusion walks recursively fit, and
//! every query holds a slot of a bounded pool, runs under a deadline, and is aborted when its
//! caller goes away (dropping a result stream or a pending call aborts the task).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tonic::Status;

use crate::error::ServerError;
use crate::limits::QueryLimits;

/// Stack of every query thread. Only touched pages cost memory; the depth DataFusion's
/// recursive tree walks reach grows with the statement (bounded by `max_sql_bytes`).
pub const QUERY_STACK_BYTES: usize = 64 << 20;
/// Threads for blocking file reads; each reserves (but does not touch) a query-sized stack.
const MAX_BLOCKING_THREADS: usize = 64;
/// Result messages a query may produce ahead of a slow client: back-pressure beyond that.
const AHEAD: usize = 2;

/// A stream of results as the service sends them (Flight data messages, or errors).
pub type ResultStream<T> = BoxStream<'static, Result<T, Status>>;

/// Runs queries apart from gRPC, under limits; cheap to clone.
#[derive(Clone, Debug)]
pub struct QueryEngine {
    runtime: Arc<QueryRuntime>,
    slots: Arc<Semaphore>,
    limits: Arc<QueryLimits>,
    closing: watch::Receiver<bool>,
}

impl QueryEngine {
    /// Starts the query runtime (one worker per core). Queries end with `Unavailable` once
    /// `closing` turns true (the server is shutting down).
    pub fn new(limits: QueryLimits, closing: watch::Receiver<bool>) -> Result<Self, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("flightline-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .enable_all()
            .build()
            .map_err(|e| ServerError::Serve(format!("cannot start the query threads: {e}")))?;
        let slots = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        let runtime =
            Arc::new(QueryRuntime { handle: runtime.handle().clone(), rt: Some(runtime) });
        Ok(Self { runtime, slots, limits: Arc::new(limits), closing })
    }

    /// The limits queries run under.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Runs `work` (planning `sql`, say) on the query runtime and returns its result.
    pub async fn run<T, F>(&self, sql: &str, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Status>> + Send + 'static,
    {
        let slot = self.admit(sql).await?;
        let guarded = self.guarded(work);
        let task = AbortOnDrop(self.runtime.handle.spawn(async move {
            let _slot = slot;
            guarded.await
        }));
        task.await.map_err(joined)?
    }

    /// Runs `work` (planning and executing `sql`) on the query runtime and streams its items
    /// back through a bounded channel. A failure before the first item is returned as the
    /// call's status; a later one ends the stream. Dropping the stream aborts the query.
    pub async fn stream<T, F>(&self, sql: &str, work: F) -> Result<ResultStream<T>, Status>
    where
        T: Send + 'static,
        F: Future<Output = Result<ResultStream<T>, Status>> + Send + 'static,
    {
        let slot = self.admit(sql).await?;
        let (tx, mut rx) = mpsc::channel(AHEAD);
        let guarded = self.guarded(forward(work, tx.clone()));
        let task = AbortOnDrop(self.runtime.handle.spawn(async move {
            let _slot = slot;
            if let Err(status) = guarded.await {
                let _ = tx.send(Err(status)).await;
            }
        }));
        let first = rx.recv().await;
        match first {
            Some(Ok(first)) => {
                let rest = Tail { rx, task: Some(task) };
                Ok(futures::stream::once(async { Ok(first) }).chain(rest.into_stream()).boxed())
            }
            Some(Err(status)) => Err(status),
            None => Err(task.await.err().map_or_else(no_result, joined)),
        }
    }

    /// Checks the statement's size, then waits (bounded) for a query slot.
    async fn admit(&self, sql: &str) -> Result<OwnedSemaphorePermit, Status> {
        let max = self.limits.max_sql_bytes;
        if sql.len() > max {
            return Err(Status::invalid_argument(format!(
                "the statement is {} bytes; this server accepts at most {max} (--max-sql-bytes): \
                 shorten it, or serve long value lists as a table (--table)",
                sql.len()
            )));
        }
        if *self.closing.borrow() {
            return Err(shutting_down());
        }
        let wait = self.limits.queue_timeout;
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) => Err(shutting_down()),
            Err(_) => Err(Status::unavailable(format!(
                "server busy: all {} query slots (--max-concurrent-queries) stayed taken for {} \
                 (--queue-timeout); retry later",
                self.limits.max_concurrent,
                secs(wait)
            ))),
        }
    }

    /// `work` bounded by the query timeout and cut short by shutdown.
    fn guarded<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Status>> + Send + 'static,
    ) -> impl Future<Output = Result<T, Status>> + Send + 'static {
        let timeout = self.limits.query_timeout;
        let mut closing = self.closing.clone();
        async move {
            let bounded = async move {
                match timeout {
                    Some(limit) => tokio::time::timeout(limit, work)
                        .await
                        .unwrap_or_else(|_| Err(timed_out(limit))),
                    None => work.await,
                }
            };
            tokio::select! {
                // A closed sender means the server is gone: stop as well.
                _ = closing.wait_for(|c| *c) => Err(shutting_down()),
                result = bounded => result,
            }
        }
    }
}

/// Runs `work` and sends its items to `tx` until the stream, or the receiver, ends. Stops
/// after the first error, as a Flight stream ends at its first error.
async fn forward<T>(
    work: impl Future<Output = Result<ResultStream<T>, Status>>,
    tx: mpsc::Sender<Result<T, Status>>,
) -> Result<(), Status> {
    let mut items = work.await?;
    while let Some(item) = items.next().await {
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    Ok(())
}

/// The items after the first: the channel's, then an error if the task died without
/// finishing (a panic must not look like a complete result).
struct Tail<T> {
    rx: mpsc::Receiver<Result<T, Status>>,
    task: Option<AbortOnDrop<()>>,
}

impl<T: Send + 'static> Tail<T> {
    fn into_stream(self) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
        futures::stream::unfold(self, |mut tail| async move {
            if let Some(item) = tail.rx.recv().await {
                return Some((item, tail));
            }
            let task = tail.task.take()?;
            match task.await {
                Ok(()) => None,
                Err(e) => Some((Err(joined(e)), tail)),
            }
        })
    }
}

/// A task handle that aborts the task when dropped: an abandoned call stops its query.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// The query runtime; shut down without blocking, since the last clone may drop anywhere
/// (dropping a runtime inside another one's task would panic).
#[derive(Debug)]
struct QueryRuntime {
    handle: Handle,
    rt: Option<Runtime>,
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn joined(e: JoinError) -> Status {
    if e.is_cancelled() {
        return shutting_down();
    }
    Status::internal(format!(
        "the query failed unexpectedly ({e}); this is a server bug: please report it with the SQL"
    ))
}

fn no_result() -> Status {
    Status::internal("the query ended without a result; this is a server bug: please report it")
}

fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down and cancelled the query; retry later")
}

fn timed_out(limit: Duration) -> Status {
    Status::resource_exhausted(format!(
        "the query ran longer than the server's --query-timeout of {} and was cancelled: \
         narrow the time range, add a LIMIT, or ask the operator to raise --query-timeout",
        secs(limit)
    ))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine, and the sender that keeps it open (a dropped sender means shutdown).
    fn engine(limits: QueryLimits) -> (QueryEngine, watch::Sender<bool>) {
        let (open, closing) = watch::channel(false);
        (QueryEngine::new(limits, closing).unwrap(), open)
    }

    #[tokio::test]
    async fn the_engine_keeps_the_limits_it_was_given() {
        let limits = QueryLimits {
            query_timeout: None,
            max_concurrent: 3,
            queue_timeout: Duration::from_millis(1500),
            max_sql_bytes: 77,
            ..QueryLimits::default()
        };
        let (engine, _open) = engine(limits.clone());
        assert_eq!(engine.limits(), &limits);
    }

    #[tokio::test]
    async fn a_statement_one_byte_over_max_sql_bytes_is_refused() {
        let (engine, _open) = engine(QueryLimits { max_sql_bytes: 8, ..QueryLimits::default() });
        assert_eq!(engine.run("SELECT 1", async { Ok(1) }).await.unwrap(), 1);
        let err = engine.run("SELECT 10", async { Ok(1) }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let message = err.message();
        assert!(message.contains("9 bytes") && message.contains("--max-sql-bytes"), "{message}");
    }

    #[tokio::test]
    async fn a_result_stream_ends_at_its_first_error() {
        let (engine, _open) = engine(QueryLimits::default());
        let items = futures::stream::iter([Ok(1), Err(Status::internal("broken")), Ok(3)]).boxed();
        let stream = engine.stream("q", async move { Ok(items) }).await.unwrap();
        let got: Vec<_> = stream.map(|item| item.map_err(|status| status.code())).collect().await;
        assert_eq!(got, [Ok(1), Err(tonic::Code::Internal)]);
    }
}
