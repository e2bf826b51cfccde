//! The stream of record batches a query returns.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::error::Result;

/// Record batches of one query, in order, pulled from the server as they are read: nothing is
/// fetched ahead of the reader except a few batches per endpoint when endpoints are fetched in
/// parallel.
///
/// Every failure, including a connection lost mid-result, arrives as an `Err` item, after
/// which the stream ends; a stream that ends without an error delivered the whole result.
pub struct QueryStream {
    schema: Option<SchemaRef>,
    endpoints: usize,
    inner: BoxStream<'static, Result<RecordBatch>>,
    request_id: String,
}

impl QueryStream {
    pub(crate) fn new(
        schema: Option<SchemaRef>,
        endpoints: usize,
        inner: BoxStream<'static, Result<RecordBatch>>,
        request_id: String,
    ) -> Self {
        Self { schema, endpoints, inner, request_id }
    }

    /// The `x-request-id` every call of this query carried: the server's audit line and any
    /// error of the query name it.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The result schema the server announced in its FlightInfo, if it sent one (the
    /// direct-ticket path has none). The batches carry their own schema, which is
    /// authoritative.
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// How many endpoints the result is read from (1 on the direct-ticket path).
    pub fn endpoint_count(&self) -> usize {
        self.endpoints
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .field("endpoints", &self.endpoints)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}
