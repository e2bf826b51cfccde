//! Time ranges for queries (`TimeRange`), and the `{begin}` / `{end}` placeholders that put a
//! range's instants into a text ([`placeholders`]).
//!
//! A range travels to the server per call as the Micromegas headers `query_range_begin` and
//! `query_range_end`, and the server keeps the rows with `begin <= time < end`.

pub mod placeholders;

use std::fmt;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// A half-open interval `[begin, end)` of UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// First instant included.
    pub begin: DateTime<Utc>,
    /// First instant excluded.
    pub end: DateTime<Utc>,
}

impl TimeRange {
    /// A range from `begin` (included) to `end` (excluded); refuses an empty or reversed range,
    /// which would silently select nothing.
    pub fn new(begin: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self> {
        if begin >= end {
            return Err(Error::TimeRange {
                input: format!("{} .. {}", format_instant(&begin), format_instant(&end)),
                reason: "the begin must be strictly before the end; swap them or widen the range"
                    .into(),
            });
        }
        Ok(Self { begin, end })
    }

    /// The span of `duration` ending now. A zero or negative duration gives an empty range
    /// ending now rather than a reversed one. Fails with [`Error::TimeRange`] when the span
    /// reaches back beyond the earliest instant chrono represents (about 262 000 years).
    pub fn last(duration: Duration) -> Result<Self> {
        let end = Utc::now();
        let begin = begin_before(end, duration.max(Duration::zero()))
            .ok_or_else(|| too_far_back(&format!("the last {duration}")))?;
        Ok(Self { begin, end })
    }

    /// Parses a relative span such as `30s`, `15m`, `2h`, `7d` or `1w` into the range of that
    /// length ending now. A span too long to subtract from now (`999999999d`) is an
    /// [`Error::TimeRange`], not a panic.
    pub fn parse_relative(input: &str) -> Result<Self> {
        Self::span_ending_at(input, Utc::now())
    }

    /// The relative span `input` (`7d`) ending at `end` instead of now; the same refusals as
    /// [`Self::parse_relative`].
    pub fn span_ending_at(input: &str, end: DateTime<Utc>) -> Result<Self> {
        let duration = parse_span(input)?;
        let begin = begin_before(end, duration).ok_or_else(|| too_far_back(input))?;
        Self::new(begin, end).map_err(|_| Error::TimeRange {
            input: input.to_string(),
            reason: "the span must be longer than zero".into(),
        })
    }

    /// Parses two RFC 3339 instants (`2024-01-01T12:00:00Z`, a lowercase `z`, offsets such as
    /// `+02:00`, fractions down to nanoseconds).
    pub fn parse(begin: &str, end: &str) -> Result<Self> {
        Self::new(parse_instant(begin)?, parse_instant(end)?).map_err(|err| match err {
            Error::TimeRange { reason, .. } => {
                Error::TimeRange { input: format!("{begin} .. {end}"), reason }
            }
            other => other,
        })
    }

    /// How long the range is.
    pub fn duration(&self) -> Duration {
        self.end - self.begin
    }

    /// `begin` as sent in the `query_range_begin` header: RFC 3339 in UTC, with as many
    /// fractional digits as needed to keep the nanoseconds.
    pub fn begin_rfc3339(&self) -> String {
        format_instant(&self.begin)
    }

    /// `end` as sent in the `query_range_end` header.
    pub fn end_rfc3339(&self) -> String {
        format_instant(&self.end)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.begin_rfc3339(), self.end_rfc3339())
    }
}

/// Parses one RFC 3339 instant into UTC.
pub fn parse_instant(input: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(input.trim()).map(|instant| instant.with_timezone(&Utc)).map_err(
        |err| Error::TimeRange {
            input: input.to_string(),
            reason: format!(
                "not an RFC 3339 instant ({err}); write it like 2024-01-01T12:00:00Z or \
                 2024-01-01T14:00:00.5+02:00"
            ),
        },
    )
}

/// Parses a relative span: a positive integer followed by `s`, `m`, `h`, `d` or `w`.
pub fn parse_span(input: &str) -> Result<Duration> {
    let refuse = |reason: &str| Error::TimeRange {
        input: input.to_string(),
        reason: format!("{reason}; write a span like 30s, 15m, 2h, 7d or 1w"),
    };
    let text = input.trim();
    let split =
        text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| refuse("the unit is missing"))?;
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().map_err(|_| refuse("the span must start with a number"))?;
    let seconds_per_unit = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(refuse("unknown unit")),
    };
    let seconds =
        amount.checked_mul(seconds_per_unit).ok_or_else(|| refuse("the span is too long"))?;
    if seconds == 0 {
        return Err(refuse("the span must be longer than zero"));
    }
    Duration::try_seconds(seconds).ok_or_else(|| refuse("the span is too long"))
}

/// `end - duration`, or `None` where chrono's `-` would panic.
fn begin_before(end: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
    end.checked_sub_signed(duration)
}

fn too_far_back(input: &str) -> Error {
    Error::TimeRange {
        input: input.to_string(),
        reason: "the span reaches back before the earliest representable instant; write a \
                 shorter span like 30s, 15m, 2h, 7d or 1w, or an absolute range"
            .into(),
    }
}

fn format_instant(instant: &DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_uppercase_and_lowercase_z() {
        let upper = TimeRange::parse("2024-01-01T12:00:00Z", "2024-01-02T00:00:00Z").unwrap();
        let lower = TimeRange::parse("2024-01-01t12:00:00z", "2024-01-02T00:00:00z").unwrap();
        assert_eq!(upper, lower);
        assert_eq!(upper.begin, Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap());
        assert_eq!(upper.duration(), Duration::hours(12));
    }

    #[test]
    fn converts_offsets_to_utc() {
        let range =
            TimeRange::parse("2024-01-01T14:00:00+02:00", "2024-01-01T07:30:00-05:00").unwrap();
        assert_eq!(range.begin, utc("2024-01-01T12:00:00Z"));
        assert_eq!(range.end, utc("2024-01-01T12:30:00Z"));
    }

    #[test]
    fn keeps_nanoseconds_through_the_header_form() {
        let range = TimeRange::parse(
            "2024-01-01T12:00:00.123456789Z",
            "2024-01-01T12:00:01.000000001+00:00",
        )
        .unwrap();
        assert_eq!(range.begin.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(range.begin_rfc3339(), "2024-01-01T12:00:00.123456789Z");
        assert_eq!(range.end_rfc3339(), "2024-01-01T12:00:01.000000001Z");
        assert_eq!(TimeRange::parse(&range.begin_rfc3339(), &range.end_rfc3339()).unwrap(), range);
    }

    #[test]
    fn whole_seconds_have_no_fraction_in_the_header_form() {
        let range = TimeRange::parse("2024-01-01T12:00:00Z", "2024-01-01T13:00:00Z").unwrap();
        assert_eq!(range.begin_rfc3339(), "2024-01-01T12:00:00Z");
        assert_eq!(range.to_string(), "[2024-01-01T12:00:00Z, 2024-01-01T13:00:00Z)");
    }

    #[test]
    fn relative_spans_end_now() {
        for (text, expected) in [
            ("30s", Duration::seconds(30)),
            ("15m", Duration::minutes(15)),
            ("2h", Duration::hours(2)),
            ("7d", Duration::days(7)),
            ("1w", Duration::weeks(1)),
            (" 7d ", Duration::days(7)),
        ] {
            let before = Utc::now();
            let range = TimeRange::parse_relative(text).unwrap();
            let after = Utc::now();
            assert!(range.end >= before && range.end <= after, "{text}");
            let length = range.duration();
            assert!(
                length >= expected && length <= expected + Duration::seconds(1),
                "{text}: {length}"
            );
        }
    }

    #[test]
    fn last_gives_the_requested_length() {
        let range = TimeRange::last(Duration::hours(3)).unwrap();
        assert_eq!(range.duration(), Duration::hours(3));
        assert_eq!(TimeRange::last(Duration::hours(-1)).unwrap().duration(), Duration::zero());
    }

    #[test]
    fn spans_beyond_the_representable_past_are_errors_not_panics() {
        for huge in ["999999999d", "99999999999w", "9223372036854s"] {
            match TimeRange::parse_relative(huge) {
                Err(Error::TimeRange { input, reason }) => {
                    assert_eq!(input, huge);
                    assert!(reason.contains("15m"), "{reason}");
                }
                other => panic!("{huge:?} gave {other:?}"),
            }
        }
        let err = TimeRange::last(Duration::MAX).unwrap_err();
        assert!(matches!(err, Error::TimeRange { ref reason, .. } if reason.contains("earliest")));
    }

    #[test]
    fn garbage_is_a_typed_error_naming_the_input() {
        for bad in ["", "7", "d", "7x", "-7d", "0d", "seven days", "1.5h", "99999999999999w"] {
            match TimeRange::parse_relative(bad) {
                Err(Error::TimeRange { input, reason }) => {
                    assert_eq!(input, bad);
                    assert!(reason.contains("15m"), "{reason}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        for bad in ["yesterday", "2024-01-01", "2024-01-01T12:00:00", "2024-13-01T00:00:00Z"] {
            match TimeRange::parse(bad, "2024-01-02T00:00:00Z") {
                Err(Error::TimeRange { input, reason }) => {
                    assert_eq!(input, bad);
                    assert!(reason.contains("RFC 3339"), "{reason}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn reversed_or_empty_ranges_are_refused() {
        let err = TimeRange::parse("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z").unwrap_err();
        assert!(
            matches!(&err, Error::TimeRange { input, .. } if input.contains("2024-01-02T00:00:00Z .. "))
        );
        let same = utc("2024-01-01T00:00:00Z");
        assert!(matches!(TimeRange::new(same, same), Err(Error::TimeRange { .. })));
    }
}
