use std::ops::Range;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use arrow::array::{Array, AsArray, DictionaryArray, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::oneshot;

use super::*;

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("target", dict(), false),
    ]))
}

/// Rows `n` of `range`, each with target `t{n % 3}` in a dictionary of all three.
fn batch(range: Range<i64>) -> RecordBatch {
    let n = Int64Array::from_iter_values(range.clone());
    let keys = Int32Array::from_iter_values(range.map(|n| (n % 3) as i32));
    let values = arrow::array::StringArray::from(vec!["t0", "t1", "t2"]);
    let target = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
    RecordBatch::try_new(schema(), vec![Arc::new(n), Arc::new(target)]).unwrap()
}

/// The schema messages a client saw, and the batches.
async fn decode(messages: Messages) -> (usize, Vec<RecordBatch>) {
    let flight = messages.map(|m| m.map_err(|s| FlightError::Tonic(Box::new(s))));
    let mut decoder = FlightDataDecoder::new(flight);
    let (mut schemas, mut batches) = (0, vec![]);
    while let Some(decoded) = decoder.next().await {
        match decoded.unwrap().payload {
            DecodedPayload::Schema(_) => schemas += 1,
            DecodedPayload::RecordBatch(batch) => batches.push(batch),
            DecodedPayload::None => {}
        }
    }
    (schemas, batches)
}

/// Every (n, target) pair received, sorted by n; the target read whatever its encoding.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    let mut rows = vec![];
    for batch in batches {
        let n = batch.column(0).as_primitive::<Int64Type>();
        let target = arrow::compute::cast(batch.column(1), &DataType::Utf8).unwrap();
        let target = target.as_string::<i32>();
        rows.extend((0..batch.num_rows()).map(|i| (n.value(i), target.value(i).to_owned())));
    }
    rows.sort();
    rows
}

fn expected(ns: impl Iterator<Item = i64>) -> Vec<(i64, String)> {
    ns.map(|n| (n, format!("t{}", n % 3))).collect()
}

/// A plan over three partitions of a table `t` (rows 0..800,001), and its context. The first
/// and second partitions hold a batch of about 400,000 rows: more than arrow-flight's 2 MiB
/// message, so the encoder splits it.
async fn plan_of(sql: &str) -> (Arc<dyn ExecutionPlan>, Arc<TaskContext>) {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
    let partitions = vec![
        vec![batch(0..400_000), batch(400_000..410_000)],
        vec![batch(410_000..800_000)],
        vec![batch(800_000..800_001)],
    ];
    ctx.register_table("t", Arc::new(MemTable::try_new(schema(), partitions).unwrap())).unwrap();
    let df = ctx.sql(sql).await.unwrap();
    let task = Arc::new(df.task_ctx());
    (df.create_physical_plan().await.unwrap(), task)
}

/// The batches a client receives for `sql` over the partitioned table, having checked that the
/// plan has several partitions and that the client saw exactly one schema message.
async fn received(sql: &str, preserve_dictionary: bool, tally: Arc<Tally>) -> Vec<RecordBatch> {
    let (plan, task) = plan_of(sql).await;
    assert!(plan.output_partitioning().partition_count() > 1, "the test needs partitions");
    let (schemas, batches) = decode(execute(plan, task, preserve_dictionary, tally).unwrap()).await;
    assert_eq!(schemas, 1);
    batches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_every_partition_arrives_once_after_one_schema() {
    let tally = Arc::new(Tally::default());
    let batches =
        received("SELECT n, target FROM t WHERE n % 2 = 0", false, Arc::clone(&tally)).await;
    assert_eq!(rows(&batches), expected((0..800_001).filter(|n| n % 2 == 0)));
    assert!(batches.iter().all(|b| b.schema().field(1).data_type() == &DataType::Utf8));
    assert_eq!(tally.rows_counted(), 400_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserved_dictionaries_arrive_as_dictionaries_with_every_row() {
    let batches = received("SELECT n, target FROM t", true, Arc::default()).await;
    assert_eq!(rows(&batches), expected(0..800_001));
    assert!(batches.iter().all(|b| b.schema().field(1).data_type() == &dict()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_result_keeps_its_order() {
    let (plan, task) = plan_of("SELECT n, target FROM t ORDER BY n DESC").await;
    let (_, batches) = decode(execute(plan, task, false, Arc::default()).unwrap()).await;
    let received: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(received, (0..800_001).rev().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_the_message_limit_arrive_whole_in_pieces_between_other_partitions() {
    let batches = received("SELECT n, target FROM t", false, Arc::default()).await;
    // The table holds 4 batches; the two large ones arrive as several messages each.
    assert!(batches.len() > 4, "{} batches: nothing was split", batches.len());
    assert_eq!(rows(&batches), expected(0..800_001));
}

type Batches = BoxStream<'static, DfResult<RecordBatch>>;

fn of(batches: Vec<DfResult<RecordBatch>>) -> Batches {
    futures::stream::iter(batches).boxed()
}

#[tokio::test]
async fn a_failing_partition_ends_the_result_with_its_error() {
    let failing = of(vec![
        Ok(batch(10..20)),
        Err(DataFusionError::ResourcesExhausted("memory limit of 1 MiB".into())),
    ]);
    let messages: Vec<_> =
        merged(vec![of(vec![Ok(batch(0..10))]), failing], schema(), Arc::default()).collect().await;
    let last = messages.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.code(), tonic::Code::ResourceExhausted, "{last}");
    assert!(messages[..messages.len() - 1].iter().all(Result::is_ok));
}

#[tokio::test]
async fn a_panicking_partition_ends_the_result_with_an_error_not_a_clean_end() {
    let panicking: Batches = futures::stream::poll_fn(|_| -> Poll<Option<DfResult<RecordBatch>>> {
        panic!("a bug in an operator")
    })
    .boxed();
    let messages: Vec<_> =
        merged(vec![of(vec![Ok(batch(0..10))]), panicking], schema(), Arc::default())
            .collect()
            .await;
    let last = messages.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.code(), tonic::Code::Internal);
    assert!(last.message().contains("partition"), "{}", last.message());
}

#[tokio::test]
async fn dropping_the_result_stops_every_partition() {
    let (guard, dropped) = oneshot::channel::<()>();
    let stalled: Batches = futures::stream::poll_fn(move |_| {
        let _held = &guard; // dropped with the stream, when its task is aborted
        Poll::Pending
    })
    .boxed();
    let mut messages = merged(vec![stalled, of(vec![Ok(batch(0..10))])], schema(), Arc::default());
    // The schema, then the other partition's batch: the stalled one is running meanwhile.
    assert!(messages.next().await.unwrap().is_ok());
    assert!(messages.next().await.unwrap().is_ok());
    drop(messages);
    let stopped = tokio::time::timeout(Duration::from_secs(10), dropped).await;
    assert!(matches!(stopped, Ok(Err(_))), "the stalled partition's task still runs");
}

#[test]
fn flight_schema_hydrates_nested_dictionaries_unless_preserved() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("target", dict(), false),
        Field::new_list("tags", Field::new("item", dict(), true), true),
        Field::new("n", DataType::Int64, true),
    ]));
    assert_eq!(flight_schema(schema.clone(), true), schema);
    let h = flight_schema(schema, false);
    assert_eq!(h.field(0).data_type(), &DataType::Utf8);
    assert!(!h.field(0).is_nullable());
    assert_eq!(
        h.field(1).data_type(),
        &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
    );
    assert_eq!(h.field(2).data_type(), &DataType::Int64);
}

#[test]
fn compacted_dictionaries_hold_each_value_once() {
    use arrow::array::StringArray;
    let values = StringArray::from(vec!["a", "b", "a", "b"]);
    let dict = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(vec![0, 1, 2, 3, 0]),
        Arc::new(values),
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter([("t", Arc::new(dict) as Arc<dyn Array>)]).unwrap();
    let out = compact_dictionaries(batch).unwrap();
    let d = out.column(0).as_any().downcast_ref::<DictionaryArray<Int32Type>>().unwrap();
    assert_eq!(d.values().len(), 2);
    let plain = arrow::compute::cast(out.column(0), &DataType::Utf8).unwrap();
    let plain = plain.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(plain.iter().flatten().collect::<Vec<_>>(), ["a", "b", "a", "b", "a"]);
}
