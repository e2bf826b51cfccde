//! The `x-request-id` of every call: kept when the client sent a well-formed one, made here
//! otherwise; returned in the response's metadata and named in every error of the query path,
//! so that a client's error, its own log and this server's audit line ([`crate::audit`]) share
//! one id.

use std::sync::Arc;

use flightline_core::request_id;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

/// The id of one call, in the request's extensions once [`assign`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id [`assign`] gave `request`, or a new one for a request that did not pass through
    /// it (a service used without the interceptor).
    pub fn of<T>(request: &Request<T>) -> Self {
        request.extensions().get::<RequestId>().cloned().unwrap_or_else(Self::new)
    }

    fn new() -> Self {
        Self(Arc::from(request_id::new()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives `request` its id: the client's `x-request-id` when well formed, a new one otherwise
/// (a malformed id is replaced, never echoed into logs). Runs first, before auth, so that a
/// refused call names its id too.
pub fn assign<T>(request: &mut Request<T>) -> RequestId {
    let sent = request.metadata().get(request_id::HEADER).and_then(|v| v.to_str().ok());
    let id = match sent {
        Some(id) if request_id::is_well_formed(id) => RequestId(Arc::from(id)),
        _ => RequestId::new(),
    };
    if let Ok(value) = MetadataValue::try_from(id.as_str()) {
        request.metadata_mut().insert(request_id::HEADER, value);
    }
    request.extensions_mut().insert(id.clone());
    id
}

/// `status` with its message naming `id` and `x-request-id` in its metadata.
pub fn tag(status: Status, id: &RequestId) -> Status {
    let message = request_id::append(status.message().to_string(), id.as_str());
    let mut metadata = status.metadata().clone();
    if let Ok(value) = MetadataValue::try_from(id.as_str()) {
        metadata.insert(request_id::HEADER, value);
    }
    Status::with_metadata(status.code(), message, metadata)
}

/// Puts `x-request-id` into `response`'s metadata.
pub fn stamp<T>(response: &mut Response<T>, id: &RequestId) {
    if let Ok(value) = MetadataValue::try_from(id.as_str()) {
        response.metadata_mut().insert(request_id::HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_id_is_kept_and_a_bad_one_replaced() {
        let mut request = Request::new(());
        request.metadata_mut().insert("x-request-id", "adbc-42".parse().unwrap());
        assert_eq!(assign(&mut request).as_str(), "adbc-42");
        assert_eq!(RequestId::of(&request).as_str(), "adbc-42");

        let mut request = Request::new(());
        request.metadata_mut().insert("x-request-id", "has space".parse().unwrap());
        let id = assign(&mut request);
        assert_ne!(id.as_str(), "has space");
        assert_eq!(request.metadata().get("x-request-id").unwrap(), id.as_str());
    }

    #[test]
    fn a_tagged_status_names_the_id_in_its_message_and_metadata() {
        let id = RequestId(Arc::from("r-1"));
        let status = tag(Status::invalid_argument("no such table"), &id);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "no such table (request id: r-1)");
        assert_eq!(status.metadata().get("x-request-id").unwrap(), "r-1");
        assert_eq!(tag(status.clone(), &id).message(), status.message(), "named once");
    }
}
