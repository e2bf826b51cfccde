use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, DictionaryArray, Int32Array, Int64Builder, ListBuilder, StringArray,
    TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use bytes::{Bytes, BytesMut};
use futures::{TryStreamExt, stream};

use super::batches;

/// A log-like batch: every kind of buffer a result carries (validity, offsets, values,
/// dictionary keys and values, list offsets), with nulls.
fn log_batch(start: i64, rows: usize) -> RecordBatch {
    let time: TimestampNanosecondArray =
        (0..rows as i64).map(|i| Some(start + i)).collect::<TimestampNanosecondArray>();
    let level: Int32Array = (0..rows).map(|i| (i % 7 != 0).then_some((i % 6) as i32)).collect();
    let target: DictionaryArray<Int32Type> =
        (0..rows).map(|i| ["db::pool", "api::http", "game::net"][i % 3]).collect();
    let msg: StringArray =
        (0..rows).map(|i| (i % 5 != 0).then(|| format!("message {i} é ✓ {start}"))).collect();
    let mut tags = ListBuilder::new(Int64Builder::new());
    for i in 0..rows {
        tags.values().append_slice(&vec![i as i64; i % 4]);
        tags.append(i % 9 != 0);
    }
    RecordBatch::try_from_iter([
        ("time", Arc::new(time.with_timezone("+00:00")) as ArrayRef),
        ("level", Arc::new(level)),
        ("target", Arc::new(target)),
        ("msg", Arc::new(msg)),
        ("tags", Arc::new(tags.finish())),
    ])
    .expect("a valid batch")
}

/// The Flight messages a server sends for `input`, dictionaries kept as dictionaries.
async fn encoded(input: Vec<RecordBatch>) -> Vec<FlightData> {
    let batches = stream::iter(input.into_iter().map(Ok));
    FlightDataEncoderBuilder::new()
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(batches)
        .try_collect()
        .await
        .expect("encodes")
}

/// `data` with its body moved to an address 1 past a multiple of 8, as a body usually sits in
/// tonic's receive buffer (behind the message's length prefix and header fields).
fn unaligned(mut data: FlightData) -> FlightData {
    let len = data.data_body.len();
    if len == 0 {
        return data;
    }
    let mut bytes = BytesMut::zeroed(len + 16);
    let start = (8 - bytes.as_ptr() as usize % 8) % 8 + 1;
    bytes[start..start + len].copy_from_slice(&data.data_body);
    data.data_body = bytes.freeze().slice(start..start + len);
    assert_eq!(data.data_body.as_ptr() as usize % 8, 1);
    data
}

async fn decode(messages: Vec<FlightData>) -> Result<Vec<RecordBatch>, FlightError> {
    batches(stream::iter(messages.into_iter().map(Ok))).try_collect().await
}

#[tokio::test]
async fn unaligned_bodies_decode_to_the_batches_sent() {
    let input = vec![log_batch(0, 1000), log_batch(10_000, 1), log_batch(20_000, 4097)];
    let messages: Vec<FlightData> =
        encoded(input.clone()).await.into_iter().map(unaligned).collect();
    let output = decode(messages).await.expect("decodes");
    assert_eq!(output, input);
}

#[tokio::test]
async fn string_bytes_stay_in_the_message_that_carried_them() {
    let input = vec![log_batch(0, 2000)];
    let messages: Vec<FlightData> =
        encoded(input.clone()).await.into_iter().map(unaligned).collect();
    let body = messages.last().expect("a batch message").data_body.clone();
    let output = decode(messages).await.expect("decodes");
    let msg = output[0].column_by_name("msg").expect("msg").to_data();
    // The values buffer needs no alignment, so it is read where it arrived; arrow-flight's
    // own decoder would have copied the whole body into a fresh buffer.
    let values = msg.buffers()[1].as_ptr() as usize;
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    assert!(range.contains(&values), "msg's bytes were copied out of the message body");
    // Offsets (i32) at an odd address were copied to an aligned buffer, as arrow needs.
    assert_eq!(msg.buffers()[0].as_ptr() as usize % 4, 0);
}

#[tokio::test]
async fn a_batch_before_its_schema_is_refused() {
    let messages = encoded(vec![log_batch(0, 10)]).await;
    let without_schema: Vec<FlightData> = messages.into_iter().skip(1).collect();
    let err = decode(without_schema).await.expect_err("no schema");
    assert!(err.to_string().contains("before the schema"), "{err}");
}

#[tokio::test]
async fn garbage_is_an_error_not_a_panic() {
    let mut messages = encoded(vec![log_batch(0, 100)]).await;
    let mut header = messages[2].data_header.to_vec();
    header.iter_mut().skip(8).for_each(|b| *b = b.wrapping_mul(31).wrapping_add(7));
    messages[2].data_header = Bytes::from(header);
    assert!(decode(messages.clone()).await.is_err());

    let last = messages.len() - 1;
    messages[2] = encoded(vec![log_batch(0, 100)]).await[2].clone();
    messages[last].data_body = messages[last].data_body.slice(..10);
    let err = decode(messages).await.expect_err("a truncated body");
    assert!(err.to_string().contains("outside the message's 10-byte body"), "{err}");
}

#[tokio::test]
async fn a_new_schema_starts_over_and_app_metadata_is_skipped() {
    let first = encoded(vec![log_batch(0, 10)]).await;
    let second = encoded(vec![log_batch(500, 20)]).await;
    let only_metadata =
        FlightData { app_metadata: Bytes::from_static(b"progress"), ..Default::default() };
    let messages: Vec<FlightData> =
        first.into_iter().chain([only_metadata]).chain(second).collect();
    let output = decode(messages).await.expect("decodes");
    assert_eq!(output, vec![log_batch(0, 10), log_batch(500, 20)]);
    assert_eq!(output.iter().map(|b| b.num_rows()).sum::<usize>(), 30);
    let target = output[1].column(2).as_any().downcast_ref::<DictionaryArray<Int32Type>>();
    assert!(target.is_some(), "target is no longer a dictionary");
}
