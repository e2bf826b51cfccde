//! Which instants and spans a job file may name.
//!
//! Windows travel as nanosecond timestamps (the plugin ABI's window, Arrow's and the
//! server's `Timestamp(Nanosecond)` column), which hold 1677-09-21 to 2262-04-11. An instant
//! outside that era would be clamped on the way (a silently wider or narrower window), and a
//! span longer than the era makes the schedule's arithmetic leave chrono's range. So every
//! `begin` / `end` must lie in the era and every span must fit between its start and now.

use chrono::{DateTime, Duration, Utc};

/// The earliest supported instant, 1677-09-21T00:12:43.145224192Z.
pub fn earliest() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::MIN)
}

/// The latest supported instant, 2262-04-11T23:47:16.854775807Z.
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::MAX)
}

/// `instant`, when it lies in the supported era.
pub fn check_instant(instant: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if (earliest()..=latest()).contains(&instant) {
        Ok(instant)
    } else {
        Err("outside the instants a 64-bit nanosecond timestamp holds (1677-09-21 to \
             2262-04-11); write an instant between them"
            .into())
    }
}

/// `span`, when `now - span` is still in the supported era (so any window, lag or `last` of
/// that length can be subtracted from now and added to a start without overflow).
pub fn check_span(span: Duration, now: DateTime<Utc>) -> Result<Duration, String> {
    match now.checked_sub_signed(span) {
        Some(start) if start >= earliest() => Ok(span),
        _ => Err(format!(
            "too long: a span may reach back at most {} days from now, to 1677-09-21 (the \
             earliest instant a 64-bit nanosecond timestamp holds); write a shorter span like \
             15m, 2h or 7d",
            now.signed_duration_since(earliest()).num_days()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        flightline_core::time::parse_instant(text).unwrap()
    }

    #[test]
    fn the_era_is_that_of_nanosecond_timestamps() {
        assert_eq!(earliest(), at("1677-09-21T00:12:43.145224192Z"));
        assert_eq!(latest(), at("2262-04-11T23:47:16.854775807Z"));
        for inside in [earliest(), latest(), at("2024-01-01T00:00:00Z")] {
            assert_eq!(check_instant(inside), Ok(inside));
        }
        for outside in [at("1677-09-21T00:12:43Z"), at("2262-04-12T00:00:00Z")] {
            assert!(check_instant(outside).unwrap_err().contains("1677-09-21"));
        }
    }

    #[test]
    fn a_span_fits_when_it_reaches_back_no_further_than_the_era() {
        let now = at("2026-01-01T00:00:00Z");
        let widest = now.signed_duration_since(earliest());
        assert_eq!(check_span(widest, now), Ok(widest));
        assert_eq!(check_span(Duration::hours(1), now), Ok(Duration::hours(1)));
        let too_long = widest + Duration::nanoseconds(1);
        let message = check_span(too_long, now).unwrap_err();
        assert!(message.contains(&format!("{} days", widest.num_days())), "{message}");
        assert!(check_span(Duration::days(999_999_999), now).is_err());
        assert!(check_span(Duration::MAX, now).is_err());
    }
}
