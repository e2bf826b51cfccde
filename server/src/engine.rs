//! Where queries run: a Tokio runtime of their own, under the operator's [`QueryLimits`].
//!
//! DataFusion plans and executes on CPU-bound tasks. On the runtime that serves gRPC, one heavy
//! query would starve accepting connections, auth and every other call; DataFusion's
//! `thread_pools` example gives queries a dedicated runtime instead, as done here. Its threads
//! get large stacks, so that deep expression trees that DataFusion walks recursively fit, and
//! every query holds a slot of a bounded pool (at most a few per caller, see [`crate::slots`]),
//! runs under a deadline, and is aborted when its caller goes away (dropping a result stream or
//! a pending call aborts the task) or stops reading its results for the send-stall timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tonic::Status;

use crate::error::ServerError;
use crate::identity::Caller;
use crate::limits::QueryLimits;
use crate::slots::{Full, Slot, Slots};

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
    slots: Arc<Slots>,
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
        let slots = Slots::new(limits.max_concurrent, limits.per_caller());
        let runtime =
            Arc::new(QueryRuntime { handle: runtime.handle().clone(), rt: Some(runtime) });
        Ok(Self { runtime, slots, limits: Arc::new(limits), closing })
    }

    /// The limits queries run under.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Runs `work` (planning `sql` for `caller`, say) on the query runtime and returns its
    /// result.
    pub async fn run<T, F>(&self, caller: &Caller, sql: &str, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Status>> + Send + 'static,
    {
        let slot = self.admit(caller, sql).await?;
        let guarded = self.guarded(work);
        let task = AbortOnDrop(self.runtime.handle.spawn(async move {
            let _slot = slot;
            guarded.await
        }));
        task.await.map_err(joined)?
    }

    /// Runs `work` (planning and executing `sql` for `caller`) on the query runtime and
    /// streams its items back through a bounded channel. A failure before the first item is
    /// returned as the call's status; a later one ends the stream. Dropping the stream aborts
    /// the query, and so does a client that reads nothing for the send-stall timeout: the
    /// query's slot is then free for others, and the stream ends with an error after the
    /// items already sent.
    pub async fn stream<T, F>(
        &self,
        caller: &Caller,
        sql: &str,
        work: F,
    ) -> Result<ResultStream<T>, Status>
    where
        T: Send + 'static,
        F: Future<Output = Result<ResultStream<T>, Status>> + Send + 'static,
    {
        let slot = self.admit(caller, sql).await?;
        let (tx, mut rx) = mpsc::channel(AHEAD);
        let guarded = self.guarded(forward(work, tx, self.limits.send_stall_timeout));
        // The task ends its query's error with its result rather than by sending it: a client
        // that stopped reading must not keep the task, and its slot, waiting to send it.
        let task = AbortOnDrop(self.runtime.handle.spawn(async move {
            let _slot = slot;
            guarded.await
        }));
        match rx.recv().await {
            Some(first) => {
                let rest = Tail { rx, task: Some(task) };
                Ok(futures::stream::once(async { Ok(first) }).chain(rest.into_stream()).boxed())
            }
            None => match task.await {
                Ok(Ok(())) => Err(no_result()),
                Ok(Err(status)) => Err(status),
                Err(e) => Err(joined(e)),
            },
        }
    }

    /// Checks the statement's size, then waits (bounded) for a slot of `caller` and one of the
    /// server's.
    async fn admit(&self, caller: &Caller, sql: &str) -> Result<Slot, Status> {
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
        let deadline = tokio::time::Instant::now() + wait;
        self.slots.acquire(caller, deadline).await.map_err(|full| match full {
            Full::Caller => Status::unavailable(format!(
                "server busy for {caller}: it already runs {} queries, the most one caller may \
                 run at once (--max-queries-per-user), and none ended within {} \
                 (--queue-timeout); read or drop the results of the others, then retry",
                self.limits.per_caller(),
                secs(wait)
            )),
            Full::Server => Status::unavailable(format!(
                "server busy: all {} query slots (--max-concurrent-queries) stayed taken for {} \
                 (--queue-timeout); retry later",
                self.limits.max_concurrent,
                secs(wait)
            )),
            Full::Closed => shutting_down(),
        })
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

/// Runs `work` and sends its items to `tx` until the stream, or the receiver, ends; returns
/// the first error, as a Flight stream ends at its first error. A send that waits longer than
/// `stall` (the client stopped reading) ends the query with an error naming the limit.
async fn forward<T>(
    work: impl Future<Output = Result<ResultStream<T>, Status>>,
    tx: mpsc::Sender<T>,
    stall: Option<Duration>,
) -> Result<(), Status> {
    let mut items = work.await?;
    while let Some(item) = items.next().await {
        let sent = match stall {
            Some(limit) => {
                tokio::time::timeout(limit, tx.send(item?)).await.map_err(|_| stalled(limit))?
            }
            None => tx.send(item?).await,
        };
        if sent.is_err() {
            // The receiver is gone: nobody wants the rest.
            break;
        }
    }
    Ok(())
}

/// The items after the first: the channel's, then the task's error if it ended with one (a
/// timeout, a stall, a panic: none may look like a complete result).
struct Tail<T> {
    rx: mpsc::Receiver<T>,
    task: Option<AbortOnDrop<Result<(), Status>>>,
}

impl<T: Send + 'static> Tail<T> {
    fn into_stream(self) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
        futures::stream::unfold(self, |mut tail| async move {
            if let Some(item) = tail.rx.recv().await {
                return Some((Ok(item), tail));
            }
            let task = tail.task.take()?;
            match task.await {
                Ok(Ok(())) => None,
                Ok(Err(status)) => Some((Err(status), tail)),
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

fn stalled(limit: Duration) -> Status {
    Status::resource_exhausted(format!(
        "the client read no result for {} (--send-stall-timeout), so the query was cancelled \
         to free its slot for others: read results as they arrive, or ask the operator to \
         raise --send-stall-timeout",
        secs(limit)
    ))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Caller = Caller::Address(None);

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
            max_per_caller: Some(2),
            send_stall_timeout: None,
            ..QueryLimits::default()
        };
        let (engine, _open) = engine(limits.clone());
        assert_eq!(engine.limits(), &limits);
    }

    #[tokio::test]
    async fn a_statement_one_byte_over_max_sql_bytes_is_refused() {
        let (engine, _open) = engine(QueryLimits { max_sql_bytes: 8, ..QueryLimits::default() });
        assert_eq!(engine.run(&ME, "SELECT 1", async { Ok(1) }).await.unwrap(), 1);
        let err = engine.run(&ME, "SELECT 10", async { Ok(1) }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let message = err.message();
        assert!(message.contains("9 bytes") && message.contains("--max-sql-bytes"), "{message}");
    }

    #[tokio::test]
    async fn a_result_stream_ends_at_its_first_error() {
        let (engine, _open) = engine(QueryLimits::default());
        let items = futures::stream::iter([Ok(1), Err(Status::internal("broken")), Ok(3)]).boxed();
        let stream = engine.stream(&ME, "q", async move { Ok(items) }).await.unwrap();
        let got: Vec<_> = stream.map(|item| item.map_err(|status| status.code())).collect().await;
        assert_eq!(got, [Ok(1), Err(tonic::Code::Internal)]);
    }

    #[tokio::test]
    async fn a_stream_nobody_reads_is_cancelled_after_the_stall_timeout_and_frees_its_slot() {
        let limits = QueryLimits {
            max_concurrent: 1,
            send_stall_timeout: Some(Duration::from_millis(300)),
            queue_timeout: Duration::from_secs(30),
            ..QueryLimits::default()
        };
        let (engine, _open) = engine(limits);
        let endless = async { Ok(futures::stream::repeat_with(|| Ok(7u8)).boxed()) };
        let mut unread = engine.stream(&ME, "q", endless).await.unwrap();
        // The only slot is taken by a stream that is not read; the next query gets it once
        // the stall timeout cancels the stream (well before the queue timeout).
        let started = std::time::Instant::now();
        assert_eq!(engine.run(&ME, "q2", async { Ok(2) }).await.unwrap(), 2);
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        // The reader gets what was sent before the stall, then an error, never a clean end.
        let mut last = None;
        while let Some(item) = unread.next().await {
            last = Some(item);
        }
        let err = last.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("--send-stall-timeout"), "{}", err.message());
    }

    #[tokio::test]
    async fn a_failure_after_a_stall_free_stream_still_ends_it_with_that_failure() {
        let (engine, _open) = engine(QueryLimits::default());
        let items = futures::stream::iter([Ok(1), Ok(2), Err(Status::internal("broken"))]).boxed();
        let stream = engine.stream(&ME, "q", async move { Ok(items) }).await.unwrap();
        let got: Vec<_> = stream.map(|item| item.map_err(|status| status.code())).collect().await;
        assert_eq!(got, [Ok(1), Ok(2), Err(tonic::Code::Internal)]);
        let failed = engine.stream::<u8, _>(&ME, "q", async { Err(Status::internal("no")) });
        assert_eq!(failed.await.err().map(|s| s.code()), Some(tonic::Code::Internal));
    }

    #[tokio::test]
    async fn a_caller_at_its_cap_hears_busy_naming_the_per_user_limit() {
        let limits = QueryLimits {
            max_concurrent: 4,
            max_per_caller: Some(1),
            queue_timeout: Duration::from_millis(100),
            send_stall_timeout: None,
            ..QueryLimits::default()
        };
        let (engine, _open) = engine(limits);
        let endless = async { Ok(futures::stream::repeat_with(|| Ok(7u8)).boxed()) };
        let alice = Caller::User("alice".into());
        let _held = engine.stream(&alice, "q", endless).await.unwrap();
        let err = engine.run(&alice, "q", async { Ok(1) }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(err.message().contains("--max-queries-per-user"), "{}", err.message());
        assert!(err.message().contains("user \"alice\""), "{}", err.message());
        let bob = Caller::User("bob".into());
        assert_eq!(engine.run(&bob, "q", async { Ok(1) }).await.unwrap(), 1);
    }
}
