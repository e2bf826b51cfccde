//! The Flight messages of a result: its schema once, then its batches as Arrow IPC.
//!
//! Encoding costs about as much CPU as producing the batches: arrow-ipc copies every buffer into
//! its message, and unless the client keeps dictionaries, each dictionary column is hydrated
//! first (a profile of the benchmark's full scan: 21% `memmove`, 8% `take_bytes`). On one task it
//! is the critical path of a large result while the partitions that produce the batches wait.
//! So a result of several partitions is encoded where it is produced, one task per partition,
//! and the messages are merged as they come. Rows of different partitions interleave exactly as
//! DataFusion's own merge (`CoalescePartitionsExec`) would interleave them: a plan with more
//! than one output partition has no order (an `ORDER BY` ends in a single merged partition).
//!
//! Preserved dictionaries take one encoder over one stream: each batch's dictionary messages
//! must come right before it, with no other partition's batch between.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, execute_stream, execute_stream_partitioned,
};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::Status;

use crate::audit::Tally;
use crate::service::df_status;

/// Encoded messages each partition may hold ahead of the client: back-pressure beyond that.
const AHEAD: usize = 2;

/// The messages of a result, as DoGet streams them.
pub type Messages = BoxStream<'static, Result<FlightData, Status>>;

/// Executes `plan` and encodes its result: on one task per output partition when it has
/// several and dictionaries are hydrated, else as one stream. Counts the rows in `tally`.
///
/// Call it on the runtime that should run the partitions: their tasks are spawned there, and
/// dropping the returned stream aborts them.
pub fn execute(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    preserve_dictionary: bool,
    tally: Arc<Tally>,
) -> DfResult<Messages> {
    let schema = plan.schema();
    let partitions = plan.output_partitioning().partition_count();
    if preserve_dictionary || partitions <= 1 {
        let batches = execute_stream(plan, task)?;
        return Ok(encoded(batches, schema, preserve_dictionary, tally).boxed());
    }
    Ok(merged(execute_stream_partitioned(plan, task)?, schema, tally))
}

/// The schema message, then `batches` encoded in order.
fn encoded(
    batches: impl Stream<Item = DfResult<RecordBatch>> + Send + 'static,
    schema: SchemaRef,
    preserve_dictionary: bool,
    tally: Arc<Tally>,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let batches =
        batches.map_err(|e| FlightError::Tonic(Box::new(df_status(e)))).and_then(move |batch| {
            tally.rows(batch.num_rows());
            let batch = if preserve_dictionary {
                compact_dictionaries(batch).map_err(FlightError::Arrow)
            } else {
                Ok(batch)
            };
            futures::future::ready(batch)
        });
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_dictionary_handling(dictionary_handling(preserve_dictionary))
        .build(batches)
        .map_err(Status::from)
}

/// One schema message, then the batches of every partition, each encoded on its own task.
fn merged(
    partitions: Vec<impl Stream<Item = DfResult<RecordBatch>> + Send + 'static>,
    schema: SchemaRef,
    tally: Arc<Tally>,
) -> Messages {
    let header = encoded(futures::stream::empty(), Arc::clone(&schema), false, Arc::clone(&tally));
    let (tx, rx) = mpsc::channel(AHEAD * partitions.len());
    let mut tasks = JoinSet::new();
    for batches in partitions {
        // Each encoder opens with the same schema message, already sent once by `header`.
        let body = encoded(batches, Arc::clone(&schema), false, Arc::clone(&tally)).skip(1);
        tasks.spawn(send_all(body, tx.clone()));
    }
    drop(tx);
    header.chain(Merge { rx, tasks }.into_stream()).boxed()
}

/// Sends `messages` until they end, fail (the failure is sent first), or nobody reads.
async fn send_all(
    messages: impl Stream<Item = Result<FlightData, Status>>,
    tx: mpsc::Sender<Result<FlightData, Status>>,
) {
    let mut messages = std::pin::pin!(messages);
    while let Some(message) = messages.next().await {
        let failed = message.is_err();
        if tx.send(message).await.is_err() || failed {
            return;
        }
    }
}

/// The partitions' messages as they come. Once all have ended, a partition task that did not
/// end by itself (a panic) ends the stream with an error: a result missing its rows must not
/// look complete. Dropping it aborts the partitions' tasks.
struct Merge {
    rx: mpsc::Receiver<Result<FlightData, Status>>,
    tasks: JoinSet<()>,
}

impl Merge {
    fn into_stream(self) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
        futures::stream::unfold(Some(self), |merge| async move {
            let mut merge = merge?;
            if let Some(message) = merge.rx.recv().await {
                return Some((message, Some(merge)));
            }
            while let Some(ended) = merge.tasks.join_next().await {
                if let Err(e) = ended {
                    return Some((Err(partition_failed(&e)), None));
                }
            }
            None
        })
    }
}

fn partition_failed(e: &tokio::task::JoinError) -> Status {
    Status::internal(format!(
        "a partition of the query failed unexpectedly ({e}); this is a server bug: please report \
         it with the SQL"
    ))
}

/// The schema the Flight encoder will announce for batches of `schema`: dictionaries become
/// their value type unless `preserve_dictionary`. Asking the encoder itself keeps prepared and
/// GetFlightInfo schemas equal to what DoGet streams, whatever types a user table holds.
pub fn flight_schema(schema: SchemaRef, preserve_dictionary: bool) -> SchemaRef {
    let encoder = FlightDataEncoderBuilder::new()
        .with_schema(schema.clone())
        .with_dictionary_handling(dictionary_handling(preserve_dictionary))
        .build(futures::stream::empty());
    encoder.known_schema().unwrap_or(schema)
}

fn dictionary_handling(preserve_dictionary: bool) -> DictionaryHandling {
    if preserve_dictionary { DictionaryHandling::Resend } else { DictionaryHandling::Hydrate }
}

/// Re-encodes dictionary columns so that each value appears once in its dictionary.
///
/// DataFusion's merges concatenate dictionaries without deduplicating them, and some clients
/// (pandas categoricals, hence the Micromegas Python client) refuse repeated categories.
fn compact_dictionaries(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch.schema().fields().iter().any(|f| matches!(f.data_type(), DataType::Dictionary(_, _)))
    {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Dictionary(_, value) => {
                let plain = arrow::compute::cast(c, value)?;
                arrow::compute::cast(&plain, c.data_type())
            }
            _ => Ok(c.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(batch.schema(), columns)
}

#[cfg(test)]
mod tests;
