//! The wire contract of the Micromegas dialect: the gRPC header names a client sends with each
//! call and a server reads, shared so that both sides spell them the same way.
//!
//! - [`QUERY_RANGE_BEGIN`] and [`QUERY_RANGE_END`] carry a [`TimeRange`](crate::TimeRange) as
//!   two RFC 3339 instants (any offset, fractions down to nanoseconds; read them with
//!   [`parse_instant`]). The range applies only when both are present; an empty value counts as
//!   absent; a value that does not parse is refused with `InvalidArgument`.
//! - [`LIMIT`] caps the number of rows returned (a decimal `u64`).
//! - [`PRESERVE_DICTIONARY`]: `true` keeps dictionary-encoded columns instead of flattening
//!   them.
//!
//! Header names are lowercase, as gRPC metadata keys are.

pub use crate::time::parse_instant;

/// First instant of the query's time range (included), RFC 3339.
pub const QUERY_RANGE_BEGIN: &str = "query_range_begin";
/// First instant after the query's time range (excluded), RFC 3339.
pub const QUERY_RANGE_END: &str = "query_range_end";
/// Row cap of the result.
pub const LIMIT: &str = "limit";
/// `true` asks the server to keep dictionary-encoded columns as dictionaries.
pub const PRESERVE_DICTIONARY: &str = "preserve_dictionary";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_as_micromegas_sends_them() {
        assert_eq!(
            [QUERY_RANGE_BEGIN, QUERY_RANGE_END, LIMIT, PRESERVE_DICTIONARY],
            ["query_range_begin", "query_range_end", "limit", "preserve_dictionary"]
        );
        for name in [QUERY_RANGE_BEGIN, QUERY_RANGE_END, LIMIT, PRESERVE_DICTIONARY] {
            assert!(
                tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(name.as_bytes())
                    .is_ok()
            );
        }
    }

    #[test]
    fn the_range_headers_parse_back_with_parse_instant() {
        let range =
            crate::TimeRange::parse("2024-01-01T12:00:00.5+02:00", "2024-01-01T13:00:00Z").unwrap();
        assert_eq!(parse_instant(&range.begin_rfc3339()).unwrap(), range.begin);
        assert_eq!(parse_instant(&range.end_rfc3339()).unwrap(), range.end);
    }
}
