//! Lines 1 and 2: the result read and thrown away, by arrow-flight and by the SDK.

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use flightline_core::FlightSqlClient;
use futures::TryStreamExt;
use tonic::transport::Endpoint;

use crate::{BenchError, Measurement, Target};

/// Adds a batch to the running totals. Bytes are those of the rows' values and offsets (what
/// crossed the wire, give or take IPC framing): the arrays' memory sizes count capacity and
/// buffers shared between slices, and read above the loopback ceiling.
pub(crate) fn count(measured: &mut Measurement, batch: &RecordBatch) {
    measured.rows += batch.num_rows() as u64;
    let data = batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0));
    measured.bytes += data.sum::<usize>() as u64;
    measured.batches += 1;
}

/// Line 1: arrow-flight's own Flight SQL client, as a hand-written Rust client would use it.
pub(crate) async fn flight(target: &Target) -> Result<Measurement, BenchError> {
    let fail = |source: FlightError| BenchError::Flight { uri: target.uri.clone(), source };
    let http = target.uri.replacen("grpc://", "http://", 1).replacen("grpc+tcp://", "http://", 1);
    let channel = Endpoint::from_shared(http)
        .map(|e| e.tcp_nodelay(true))
        .map_err(|e| BenchError::Channel { uri: target.uri.clone(), message: e.to_string() })?
        .connect()
        .await
        .map_err(|e| BenchError::Channel { uri: target.uri.clone(), message: e.to_string() })?;
    // The generated client refuses messages over 4 MiB by default; servers send larger batches.
    let inner = FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let mut client = FlightSqlServiceClient::new_from_inner(inner);
    let info = client.execute(target.sql.clone(), None).await.map_err(fail)?;
    let mut measured = Measurement::default();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or_else(|| {
            fail(FlightError::ProtocolError("an endpoint without a ticket".into()))
        })?;
        let mut stream = client.do_get(ticket).await.map_err(fail)?;
        while let Some(batch) = stream.try_next().await.map_err(fail)? {
            count(&mut measured, &batch);
        }
    }
    Ok(measured)
}

/// Line 2: the SDK's `query_stream`, over the whole table (no time range).
pub(crate) async fn sdk(target: &Target) -> Result<Measurement, BenchError> {
    let client = FlightSqlClient::builder(&target.uri).connect().await?;
    let mut stream = client.query_stream(&target.sql, None).await?;
    let mut measured = Measurement::default();
    while let Some(batch) = stream.try_next().await? {
        count(&mut measured, &batch);
    }
    Ok(measured)
}
