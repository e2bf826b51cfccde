//! Per-call options carried in gRPC headers (the Micromegas dialect), read the way
//! [`flightline_core::wire`] defines them, so that the SDK client and this server cannot drift.

use chrono::{DateTime, Utc};
use flightline_core::wire::{
    LIMIT, PRESERVE_DICTIONARY, QUERY_RANGE_BEGIN as RANGE_BEGIN, QUERY_RANGE_END as RANGE_END,
    parse_instant as parse_rfc3339,
};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a request's headers ask of query execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// `[begin, end)` applied to every table with a `time` column.
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// Send dictionary columns as dictionaries instead of their value type.
    pub preserve_dictionary: bool,
}

impl CallOptions {
    /// Reads the options from request metadata; a malformed value is `InvalidArgument`.
    pub fn from_metadata(md: &MetadataMap) -> Result<Self, Status> {
        let begin = header(md, RANGE_BEGIN)?.map(|v| parse_instant(RANGE_BEGIN, v)).transpose()?;
        let end = header(md, RANGE_END)?.map(|v| parse_instant(RANGE_END, v)).transpose()?;
        let range = match (begin, end) {
            (Some(b), Some(e)) if b > e => {
                return Err(Status::invalid_argument(format!(
                    "{RANGE_BEGIN} ({b}) is after {RANGE_END} ({e}): swap them"
                )));
            }
            (Some(b), Some(e)) => Some((b, e)),
            _ => None,
        };
        let limit = header(md, LIMIT)?
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    Status::invalid_argument(format!("header {LIMIT}: {v:?} is not a row count"))
                })
            })
            .transpose()?;
        let preserve_dictionary = match header(md, PRESERVE_DICTIONARY)? {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) => {
                return Err(Status::invalid_argument(format!(
                    "header {PRESERVE_DICTIONARY}: {v:?} is not true or false"
                )));
            }
        };
        Ok(Self { range, limit, preserve_dictionary })
    }
}

/// A header's value, `None` when missing or empty.
fn header<'a>(md: &'a MetadataMap, name: &str) -> Result<Option<&'a str>, Status> {
    match md.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                Status::invalid_argument(format!("header {name} is not valid ASCII text"))
            })?;
            Ok((!s.trim().is_empty()).then_some(s))
        }
    }
}

fn parse_instant(name: &str, value: &str) -> Result<DateTime<Utc>, Status> {
    parse_rfc3339(value).map_err(|e| Status::invalid_argument(format!("header {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn range_needs_both_ends_and_accepts_offsets_and_nanos() {
        let o =
            CallOptions::from_metadata(&md(&[(RANGE_BEGIN, "2024-01-01T12:00:00+02:00")])).unwrap();
        assert_eq!(o.range, None);
        let o = CallOptions::from_metadata(&md(&[
            (RANGE_BEGIN, "2024-01-01T12:00:00.123456789+02:00"),
            (RANGE_END, "2024-01-01t12:00:00z"),
        ]))
        .unwrap();
        let (b, e) = o.range.unwrap();
        assert_eq!(b.to_rfc3339(), "2024-01-01T10:00:00.123456789+00:00");
        assert_eq!(e.to_rfc3339(), "2024-01-01T12:00:00+00:00");
        let o = CallOptions::from_metadata(&md(&[(RANGE_BEGIN, ""), (RANGE_END, "")])).unwrap();
        assert_eq!(o.range, None);
    }

    #[test]
    fn bad_values_are_invalid_argument() {
        for pairs in [
            &[(RANGE_BEGIN, "yesterday"), (RANGE_END, "2024-01-01T00:00:00Z")][..],
            &[(LIMIT, "ten")][..],
            &[(PRESERVE_DICTIONARY, "maybe")][..],
            &[(RANGE_BEGIN, "2024-01-02T00:00:00Z"), (RANGE_END, "2024-01-01T00:00:00Z")][..],
        ] {
            let err = CallOptions::from_metadata(&md(pairs)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{pairs:?}");
        }
        let o = CallOptions::from_metadata(&md(&[(LIMIT, "10"), (PRESERVE_DICTIONARY, "true")]))
            .unwrap();
        assert_eq!((o.limit, o.preserve_dictionary), (Some(10), true));
    }

    #[test]
    fn preserve_dictionary_reads_each_spelling_of_true_and_false() {
        let read = |v: &'static str| {
            CallOptions::from_metadata(&md(&[(PRESERVE_DICTIONARY, v)]))
                .map(|o| o.preserve_dictionary)
                .map_err(|e| e.code())
        };
        for v in ["true", "TRUE", "1"] {
            assert_eq!(read(v), Ok(true), "{v}");
        }
        for v in ["false", "False", "0", " "] {
            assert_eq!(read(v), Ok(false), "{v}");
        }
        for v in ["2", "yes", "-0"] {
            assert_eq!(read(v), Err(tonic::Code::InvalidArgument), "{v}");
        }
    }

    #[test]
    fn an_empty_range_is_accepted_and_a_reversed_one_refused() {
        let at = "2024-01-01T00:00:00Z";
        let o = CallOptions::from_metadata(&md(&[(RANGE_BEGIN, at), (RANGE_END, at)])).unwrap();
        let (b, e) = o.range.unwrap();
        assert_eq!(b, e, "begin == end is an empty range, not an error");
        let reversed = [(RANGE_BEGIN, "2024-01-01T00:00:00.000000001Z"), (RANGE_END, at)];
        let err = CallOptions::from_metadata(&md(&reversed)).unwrap_err();
        assert!(err.message().contains("swap them"), "{}", err.message());
    }
}
