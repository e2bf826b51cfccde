//! Per-call options: everything that travels with one query rather than with the client.

use std::fmt;

use crate::error::{Error, Result};
use crate::{TimeRange, request_id, wire};

use super::auth::{HeaderSet, Redacted};

/// Options for one call of [`query_with`](super::FlightSqlClient::query_with),
/// [`query_stream_with`](super::FlightSqlClient::query_stream_with) or
/// [`prepare_with`](super::FlightSqlClient::prepare_with).
///
/// `QueryOptions::default()` is what [`query`](super::FlightSqlClient::query) uses: no row
/// cap, dictionaries flattened by the server, endpoints fetched one after the other through
/// the standard Flight SQL flow.
///
/// `Debug` shows the names of the per-call headers but redacts the values of secret ones
/// (`authorization`, `x-api-key`, see [`is_secret_header`](super::is_secret_header)).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Row cap sent as the `limit` header (Micromegas dialect).
    pub limit: Option<u64>,
    /// Sends `preserve_dictionary: true`, asking the server to keep dictionary-encoded columns
    /// instead of flattening them.
    pub preserve_dictionary: bool,
    /// How many endpoints of a multi-endpoint result to fetch at once. `0` and `1` fetch them
    /// one after the other; more fetches up to that many concurrently, each buffering at most
    /// a few batches, and still yields the batches in endpoint order.
    pub parallel_endpoints: usize,
    /// Skips GetFlightInfo and sends DoGet with an `Any`-packed `TicketStatementQuery` whose
    /// handle is the SQL text, as the Micromegas Python client does. Only servers that accept
    /// such tickets (Micromegas, the Flightline server) support it.
    pub direct_ticket: bool,
    /// Extra headers for this call only; they replace client-wide headers of the same name.
    pub headers: Vec<(String, String)>,
    /// The `x-request-id` sent with every call of this query; a new UUID when `None`.
    pub request_id: Option<String>,
    /// A W3C `traceparent` sent with every call, to join the caller's trace.
    pub traceparent: Option<String>,
}

impl QueryOptions {
    /// The defaults; chain the setters below.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the number of rows the server returns.
    pub fn limit(mut self, rows: u64) -> Self {
        self.limit = Some(rows);
        self
    }

    /// Keeps dictionary-encoded columns as dictionaries.
    pub fn preserve_dictionary(mut self, preserve: bool) -> Self {
        self.preserve_dictionary = preserve;
        self
    }

    /// Fetches up to `endpoints` endpoints concurrently, order preserved.
    pub fn parallel_endpoints(mut self, endpoints: usize) -> Self {
        self.parallel_endpoints = endpoints;
        self
    }

    /// Uses the Micromegas direct-ticket path instead of GetFlightInfo.
    pub fn direct_ticket(mut self, direct: bool) -> Self {
        self.direct_ticket = direct;
        self
    }

    /// Sends `id` as the query's `x-request-id` instead of a new one (letters, digits and
    /// `-_.:/+=@`, at most 128 characters).
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Passes a W3C `traceparent` on to the server.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The query's request id: the caller's, checked, or a new one.
    pub(crate) fn resolve_request_id(&self) -> Result<String> {
        match &self.request_id {
            Some(id) if request_id::is_well_formed(id) => Ok(id.clone()),
            Some(id) => Err(Error::Config(format!(
                "the request id {id:?} is not usable: use 1 to {} letters, digits or `-_.:/+=@` \
                 (or none, and the client makes one)",
                request_id::MAX_LEN
            ))),
            None => Ok(request_id::new()),
        }
    }

    /// Adds a header for this call only.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The metadata this call adds to every request it makes, checked once up front.
    pub(crate) fn call_headers(&self, range: Option<&TimeRange>, id: &str) -> Result<HeaderSet> {
        let mut set = HeaderSet::default();
        set.push(request_id::HEADER, id)?;
        if let Some(traceparent) = &self.traceparent {
            if !request_id::is_traceparent(traceparent) {
                return Err(Error::Config(format!(
                    "traceparent {traceparent:?} is not a W3C trace context \
                     (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)"
                )));
            }
            set.push(request_id::TRACEPARENT, traceparent)?;
        }
        if let Some(range) = range {
            set.push(wire::QUERY_RANGE_BEGIN, &range.begin_rfc3339())?;
            set.push(wire::QUERY_RANGE_END, &range.end_rfc3339())?;
        }
        if let Some(limit) = self.limit {
            set.push(wire::LIMIT, &limit.to_string())?;
        }
        if self.preserve_dictionary {
            set.push(wire::PRESERVE_DICTIONARY, "true")?;
        }
        for (name, value) in &self.headers {
            set.push(name, value)?;
        }
        Ok(set)
    }
}

impl fmt::Debug for QueryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryOptions")
            .field("limit", &self.limit)
            .field("preserve_dictionary", &self.preserve_dictionary)
            .field("parallel_endpoints", &self.parallel_endpoints)
            .field("direct_ticket", &self.direct_ticket)
            .field("headers", &Redacted(&self.headers))
            .field("request_id", &self.request_id)
            .field("traceparent", &self.traceparent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_headers_carry_range_limit_and_dictionary_flag() {
        let range = TimeRange::parse("2024-01-01T00:00:00Z", "2024-01-02T00:00:00.5Z").unwrap();
        let options =
            QueryOptions::new().limit(10).preserve_dictionary(true).header("x-tenant-id", "t1");
        let headers = options.call_headers(Some(&range), "id-1").unwrap();
        assert_eq!(
            headers.raw(),
            &[
                ("x-request-id".to_string(), "id-1".to_string()),
                ("query_range_begin".to_string(), "2024-01-01T00:00:00Z".to_string()),
                ("query_range_end".to_string(), "2024-01-02T00:00:00.500Z".to_string()),
                ("limit".to_string(), "10".to_string()),
                ("preserve_dictionary".to_string(), "true".to_string()),
                ("x-tenant-id".to_string(), "t1".to_string()),
            ]
        );
        let only_id = QueryOptions::default().call_headers(None, "x").unwrap();
        assert_eq!(only_id.raw().len(), 1);
    }

    #[test]
    fn a_request_id_is_made_unless_given_and_a_bad_one_is_refused() {
        let made = QueryOptions::new().resolve_request_id().unwrap();
        assert!(request_id::is_well_formed(&made));
        let given = QueryOptions::new().request_id("job-7").resolve_request_id().unwrap();
        assert_eq!(given, "job-7");
        let bad = QueryOptions::new().request_id("a b").resolve_request_id().unwrap_err();
        assert!(bad.to_string().contains("not usable"), "{bad}");
        let trace = QueryOptions::new().traceparent("nope").call_headers(None, "x").unwrap_err();
        assert!(trace.to_string().contains("traceparent"), "{trace}");
    }

    #[test]
    fn debug_redacts_secret_call_headers() {
        let options = QueryOptions::new()
            .limit(5)
            .header("authorization", "Bearer hunter2")
            .header("x-api-key", "key-123")
            .header("x-tenant-id", "production");
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("key-123"), "{shown}");
        assert!(shown.contains("authorization") && shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("production") && shown.contains("limit: Some(5)"), "{shown}");
    }
}
