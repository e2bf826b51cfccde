//! Reading a query's batches ahead of Python. Between two `__next__` calls Python works on a
//! batch; a stream nobody polls meanwhile sends no HTTP/2 window updates, so the server stops
//! and every batch pays a round trip. A task on the runtime keeps reading instead, at most
//! [`DEPTH`] batches ahead (memory stays bounded), as the executor's reader does for processors.

use arrow::record_batch::RecordBatch;
use flightline_core::QueryStream;
use futures::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Batches read ahead of the consumer, at most.
pub const DEPTH: usize = 4;

/// A query's batches, read by a task on the runtime; dropping it stops the task and with it
/// the query.
pub struct ReadAhead {
    batches: mpsc::Receiver<flightline_core::Result<RecordBatch>>,
    reader: JoinHandle<()>,
}

impl ReadAhead {
    /// Starts reading `stream` on `runtime`.
    pub fn spawn(runtime: &Runtime, mut stream: QueryStream) -> Self {
        let (tx, batches) = mpsc::channel(DEPTH);
        let reader = runtime.spawn(async move {
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                // A closed receiver means the consumer is gone: stop reading.
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Self { batches, reader }
    }

    /// The next batch, an error (after which nothing follows), or `None` at the end. Cancel
    /// safe: a wait given up loses no batch.
    pub async fn recv(&mut self) -> Option<flightline_core::Result<RecordBatch>> {
        self.batches.recv().await
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
