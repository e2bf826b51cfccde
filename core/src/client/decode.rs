//! A DoGet's Arrow IPC messages into record batches whose buffers stay in the messages that
//! carried them.
//!
//! arrow-flight's decoder copies a record batch's whole body into a fresh 64-byte-aligned buffer
//! whenever the body does not start at such an address, and in tonic's receive buffer it almost
//! never does: one more copy of every byte received, into fresh pages. That was 6% of the
//! full-scan client's CPU, plus the page faults (`bench/results/2026-12-04-profile.md`).
//!
//! Arrow's IPC reader, given the body as it is, copies only the buffers whose type needs more
//! alignment than they have: offsets and fixed-width values, not the string bytes that make up
//! most of a log result. Validation is unchanged: every batch is checked as before.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::{RecordBatchDecoder, read_dictionary};
use arrow::ipc::{MessageHeader, root_as_message};
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use arrow_flight::error::FlightError;
use futures::{Stream, TryStreamExt, future};

/// The record batches `messages` carry, in order; schema and dictionary messages update the
/// decoding state and yield nothing.
pub(crate) fn batches<S>(messages: S) -> impl Stream<Item = Result<RecordBatch, FlightError>>
where
    S: Stream<Item = Result<FlightData, FlightError>>,
{
    let mut decoder = Decoder::default();
    messages.try_filter_map(move |data| future::ready(decoder.decode(data)))
}

/// What the messages so far have said: the schema, and each dictionary by id.
#[derive(Default)]
struct Decoder {
    schema: Option<SchemaRef>,
    dictionaries: HashMap<i64, ArrayRef>,
}

impl Decoder {
    fn decode(&mut self, data: FlightData) -> Result<Option<RecordBatch>, FlightError> {
        if data.data_header.is_empty() {
            // Only app_metadata, which Flight allows on its own (C++ servers send it so).
            return Ok(None);
        }
        let message = root_as_message(&data.data_header)
            .map_err(|e| decode_error(format!("an IPC message header is unreadable: {e}")))?;
        match message.header_type() {
            MessageHeader::NONE => Ok(None),
            MessageHeader::Schema => {
                let schema = Schema::try_from(&data)
                    .map_err(|e| decode_error(format!("the result's schema is unreadable: {e}")))?;
                self.schema = Some(Arc::new(schema));
                self.dictionaries.clear();
                Ok(None)
            }
            MessageHeader::DictionaryBatch => {
                let batch = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| decode_error("a dictionary message has no dictionary"))?;
                let schema = self.schema("a dictionary")?;
                within_body(batch.data().and_then(|b| b.buffers()), &data)?;
                let body = Buffer::from(data.data_body);
                read_dictionary(&body, batch, &schema, &mut self.dictionaries, &message.version())
                    .map_err(|e| decode_error(format!("a dictionary is unreadable: {e}")))?;
                Ok(None)
            }
            MessageHeader::RecordBatch => {
                let batch = message
                    .header_as_record_batch()
                    .ok_or_else(|| decode_error("a record batch message has no batch"))?;
                let schema = self.schema("a record batch")?;
                within_body(batch.buffers(), &data)?;
                let body = Buffer::from(data.data_body);
                let version = message.version();
                RecordBatchDecoder::try_new(&body, batch, schema, &self.dictionaries, &version)
                    .and_then(RecordBatchDecoder::read_record_batch)
                    .map(Some)
                    .map_err(|e| decode_error(format!("a record batch is unreadable: {e}")))
            }
            other => Err(decode_error(format!(
                "an IPC message of type {other:?} is not part of a query result"
            ))),
        }
    }

    fn schema(&self, what: &str) -> Result<SchemaRef, FlightError> {
        self.schema.clone().ok_or_else(|| decode_error(format!("{what} arrived before the schema")))
    }
}

/// Refuses a message whose header places a buffer outside its body: arrow's reader would slice
/// past the end and panic, and a server's bytes must not take the client down.
fn within_body<'a>(
    buffers: Option<impl IntoIterator<Item = &'a arrow::ipc::Buffer>>,
    data: &FlightData,
) -> Result<(), FlightError> {
    let body = data.data_body.len() as u64;
    let outside = buffers.into_iter().flatten().find(|b| {
        let (offset, length) = (u64::try_from(b.offset()), u64::try_from(b.length()));
        match (offset, length) {
            (Ok(offset), Ok(length)) => offset.checked_add(length).is_none_or(|end| end > body),
            _ => true,
        }
    });
    match outside {
        Some(b) => Err(decode_error(format!(
            "a buffer at offset {} of {} bytes lies outside the message's {body}-byte body",
            b.offset(),
            b.length()
        ))),
        None => Ok(()),
    }
}

fn decode_error(message: impl Into<String>) -> FlightError {
    FlightError::DecodeError(message.into())
}

#[cfg(test)]
mod tests;
