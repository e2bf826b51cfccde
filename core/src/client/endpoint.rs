//! Reading the endpoints of a FlightInfo: where each one lives, and fetching them one after
//! the other or several at once with the order preserved.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightEndpoint, Ticket};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::Shared;
use super::auth::{Credentials, HeaderSet};
use super::tls::parse_target;
use crate::error::{Error, Result};

/// Batches of one result, or of one endpoint of it.
pub(crate) type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Batches each parallel endpoint may buffer ahead of the reader.
const PARALLEL_BUFFER: usize = 2;

/// Location scheme meaning "the server that answered GetFlightInfo" (Flight 15+).
const REUSE_CONNECTION: &str = "arrow-flight-reuse-connection:";

/// One DoGet to make: which server, with or without credentials, which ticket.
pub(crate) struct Fetch {
    pub(crate) index: usize,
    pub(crate) uri: String,
    pub(crate) client: FlightServiceClient<Channel>,
    pub(crate) credentials: Credentials,
    pub(crate) ticket: Ticket,
}

/// A location this client may fetch from.
struct Location {
    uri: String,
    client: FlightServiceClient<Channel>,
    credentials: Credentials,
}

impl Shared {
    /// Where to fetch `endpoint` from: its first location this client can reach, or the main
    /// server when it has none.
    pub(crate) fn resolve(&self, index: usize, endpoint: FlightEndpoint) -> Result<Fetch> {
        let ticket = endpoint.ticket.ok_or_else(|| {
            Error::Protocol(format!("endpoint {index} of the FlightInfo has no ticket"))
        })?;
        if endpoint.location.is_empty() {
            return Ok(self.main_fetch(index, ticket));
        }
        let mut insecure = None;
        for location in &endpoint.location {
            if location.uri.starts_with(REUSE_CONNECTION) {
                return Ok(self.main_fetch(index, ticket));
            }
            match self.location(&location.uri)? {
                Reach::Usable(Location { uri, client, credentials }) => {
                    return Ok(Fetch { index, uri, client, credentials, ticket });
                }
                Reach::Insecure => {
                    insecure.get_or_insert_with(|| location.uri.clone());
                }
                Reach::Unsupported => {}
            }
        }
        if let Some(location) = insecure {
            return Err(Error::InsecureLocation { endpoint: index, location });
        }
        let offered: Vec<&str> = endpoint.location.iter().map(|l| l.uri.as_str()).collect();
        Err(Error::Protocol(format!(
            "endpoint {index} lists no location this client can reach ({offered:?}); supported \
             schemes are grpc, grpc+tcp, grpc+tls, http, https and arrow-flight-reuse-connection"
        )))
    }

    /// The server the client was built for: the only one that always sees credentials.
    pub(crate) fn main_fetch(&self, index: usize, ticket: Ticket) -> Fetch {
        let (uri, client) = (self.uri.clone(), self.flight.clone());
        Fetch { index, uri, client, credentials: Credentials::Send, ticket }
    }

    /// A client for a location, shared by every endpoint at that location, and whether it may
    /// see credentials: the per-location decision is made here and nowhere else.
    fn location(&self, uri: &str) -> Result<Reach> {
        let Ok(target) = parse_target(uri) else {
            return Ok(Reach::Unsupported);
        };
        if target == self.target {
            let (uri, client) = (self.uri.clone(), self.flight.clone());
            return Ok(Reach::Usable(Location { uri, client, credentials: Credentials::Send }));
        }
        if self.target.tls && !target.tls && !self.allow_insecure_locations {
            return Ok(Reach::Insecure);
        }
        let credentials = self.credentials.for_location(&target);
        if credentials == Credentials::Send && self.has_credentials() {
            self.plaintext.credentials_sent_to(&target);
        }
        let mut cache = self.locations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let client = match cache.get(&target.http_uri) {
            Some(client) => client,
            None => {
                // Lazy: a location that cannot be reached fails its DoGet with a transport
                // error naming it, rather than failing the whole query up front.
                let channel = self.settings.endpoint(uri, &target, false)?.connect_lazy();
                let client = self.settings.flight_client(channel);
                cache.insert(target.http_uri, client.clone());
                client
            }
        };
        Ok(Reach::Usable(Location { uri: uri.to_string(), client, credentials }))
    }

    /// Opens DoGet for one endpoint and decodes its Arrow IPC stream.
    pub(crate) async fn do_get(&self, fetch: Fetch, call: &HeaderSet) -> Result<BatchStream> {
        let Fetch { index, uri, client, credentials, ticket } = fetch;
        let what = format!("DoGet for endpoint {index}");
        // Retried with a renewed token only when refused before any batch (see `send`).
        let response = self
            .send(ticket, call, &what, &uri, credentials, |request| {
                let mut client = client.clone();
                async move { client.do_get(request).await }
            })
            .await?;
        let flight_data = response.map_err(|status| FlightError::Tonic(Box::new(status)));
        let batches =
            super::decode::batches(flight_data).map_err(move |err| flight_error(err, &uri, index));
        Ok(batches.boxed())
    }
}

/// What a location URI offers this client.
enum Reach {
    Usable(Location),
    /// Plain text behind a TLS server, not allowed by the builder.
    Insecure,
    /// A scheme this client does not speak (the caller tries the next location).
    Unsupported,
}

fn flight_error(err: FlightError, uri: &str, index: usize) -> Error {
    match err {
        FlightError::Tonic(status) => Error::from_status(&status, uri),
        other => Error::Protocol(format!(
            "cannot decode the Arrow data of endpoint {index} from {uri}: {other}"
        )),
    }
}

/// Reads the endpoints one after the other; each DoGet starts when the previous one is done.
pub(crate) fn sequential(shared: Arc<Shared>, fetches: Vec<Fetch>, call: HeaderSet) -> BatchStream {
    let call = Arc::new(call);
    let per_endpoint = stream::iter(fetches).then(move |fetch| {
        let shared = Arc::clone(&shared);
        let call = Arc::clone(&call);
        async move { shared.do_get(fetch, &call).await }
    });
    stop_after_error(per_endpoint.flat_map(|opened| match opened {
        Ok(batches) => batches,
        Err(err) => stream::once(async move { Err(err) }).boxed(),
    }))
}

/// Reads up to `width` endpoints at once, each into a small bounded buffer, and yields them
/// in endpoint order: memory stays bounded by `width * PARALLEL_BUFFER` batches.
pub(crate) fn parallel(
    shared: Arc<Shared>,
    fetches: Vec<Fetch>,
    call: HeaderSet,
    width: usize,
) -> BatchStream {
    let call = Arc::new(call);
    let feeds = stream::iter(fetches)
        .map(move |fetch| {
            let feed = spawn_feed(Arc::clone(&shared), fetch, Arc::clone(&call));
            async move { feed }
        })
        // `buffered` starts `width` feeds, and refills only when the reader moves on to the
        // next endpoint, so the one being read counts towards the width.
        .buffered(width);
    stop_after_error(feeds.flat_map(EndpointFeed::into_stream))
}

/// One endpoint fetched by its own task into a bounded channel.
struct EndpointFeed {
    index: usize,
    batches: mpsc::Receiver<Result<RecordBatch>>,
    task: Option<JoinHandle<()>>,
}

fn spawn_feed(shared: Arc<Shared>, fetch: Fetch, call: Arc<HeaderSet>) -> EndpointFeed {
    let index = fetch.index;
    let (sender, batches) = mpsc::channel(PARALLEL_BUFFER);
    let task = tokio::spawn(async move {
        let mut source = match shared.do_get(fetch, &call).await {
            Ok(source) => source,
            Err(err) => {
                let _ = sender.send(Err(err)).await;
                return;
            }
        };
        while let Some(item) = source.next().await {
            let failed = item.is_err();
            // A closed channel means the reader dropped the result: stop fetching.
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    EndpointFeed { index, batches, task: Some(task) }
}

impl EndpointFeed {
    fn into_stream(self) -> BatchStream {
        stream::unfold(self, |mut feed| async move {
            if let Some(item) = feed.batches.recv().await {
                return Some((item, feed));
            }
            // The channel closes when the task ends; a task that panicked or was cancelled
            // must not pass for a complete endpoint.
            let task = feed.task.take()?;
            match task.await {
                Ok(()) => None,
                Err(err) => {
                    let index = feed.index;
                    Some((
                        Err(Error::Protocol(format!(
                            "the task fetching endpoint {index} failed: {err}"
                        ))),
                        feed,
                    ))
                }
            }
        })
        .boxed()
    }
}

impl Drop for EndpointFeed {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Ends the stream right after its first error, so a failed endpoint is never followed by
/// the rows of later ones (which would read as a complete but wrong result).
pub(crate) fn stop_after_error(
    batches: impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static,
) -> BatchStream {
    batches
        .scan(false, |failed, item| {
            let next = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item)
            };
            async move { next }
        })
        .boxed()
}
