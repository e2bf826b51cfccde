//! Which windows a scheduled job processes next.
//!
//! A scheduled job walks consecutive windows `[start, start + window)`, each processed once
//! its end is at least `lag` in the past. After downtime it catches up in window-sized steps,
//! at most `max_windows_per_tick` per tick, so one job far behind does not hog the runner.
//! Pure functions of the checkpoint and the clock, so they are tested without waiting.

use chrono::{DateTime, Duration, Utc};
use flightline_core::TimeRange;

use crate::config::{JobConfig, RangeSpec, Schedule};

/// Where a scheduled job without a checkpoint starts: its `begin`; else `now - last`; else
/// the last whole window before `now - lag`. The last two are aligned down to a multiple of
/// the window (since the Unix epoch), so windows and their file names are round.
pub fn first_window_start(
    job: &JobConfig,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match job.range {
        RangeSpec::Absolute { begin, .. } => begin,
        RangeSpec::Last(span) => align_down(now - span, schedule.window),
        RangeSpec::None => align_down(now - schedule.lag, schedule.window) - schedule.window,
    }
}

/// Where a scheduled job stops, if it does (`end`).
pub fn stop(job: &JobConfig) -> Option<DateTime<Utc>> {
    match job.range {
        RangeSpec::Absolute { end, .. } => end,
        _ => None,
    }
}

/// The windows due at `now` after the checkpoint `from`, oldest first, at most `cap`. The
/// last window before `stop` is cut short at `stop`, so the whole range is covered.
pub fn due_windows(
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    schedule: &Schedule,
    stop: Option<DateTime<Utc>>,
    cap: u32,
) -> Vec<TimeRange> {
    let ready_until = now - schedule.lag;
    let mut out = Vec::new();
    let mut begin = from;
    while out.len() < cap as usize {
        let mut end = begin + schedule.window;
        if let Some(stop) = stop {
            if begin >= stop {
                break;
            }
            end = end.min(stop);
        }
        if end > ready_until {
            break;
        }
        match TimeRange::new(begin, end) {
            Ok(range) => out.push(range),
            Err(_) => break,
        }
        begin = end;
    }
    out
}

/// True when a job with a stop has processed everything up to it.
pub fn finished(checkpoint: DateTime<Utc>, stop: Option<DateTime<Utc>>) -> bool {
    stop.is_some_and(|stop| checkpoint >= stop)
}

fn align_down(instant: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let step = window.num_nanoseconds().filter(|n| *n > 0);
    match (step, instant.timestamp_nanos_opt()) {
        (Some(step), Some(nanos)) => DateTime::from_timestamp_nanos(nanos - nanos.rem_euclid(step)),
        _ => instant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        flightline_core::time::parse_instant(text).unwrap()
    }

    fn schedule(window_s: i64, lag_s: i64) -> Schedule {
        Schedule {
            every: std::time::Duration::from_secs(1),
            window: Duration::seconds(window_s),
            lag: Duration::seconds(lag_s),
            max_windows_per_tick: 10,
        }
    }

    #[test]
    fn windows_are_consecutive_and_respect_lag_and_cap() {
        let s = schedule(60, 30);
        let from = at("2024-01-01T00:00:00Z");
        let now = at("2024-01-01T00:05:20Z");
        let due = due_windows(from, now, &s, None, 10);
        // Ready until 00:04:50: windows ending 00:01 .. 00:04.
        assert_eq!(due.len(), 4);
        assert_eq!(due[0].begin, from);
        for pair in due.windows(2) {
            assert_eq!(pair[0].end, pair[1].begin);
        }
        assert_eq!(due[3].end, at("2024-01-01T00:04:00Z"));
        assert_eq!(due_windows(from, now, &s, None, 2).len(), 2);
    }

    #[test]
    fn the_last_window_stops_at_the_end() {
        let s = schedule(60, 0);
        let from = at("2024-01-01T00:00:00Z");
        let stop = Some(at("2024-01-01T00:02:30Z"));
        let due = due_windows(from, at("2030-01-01T00:00:00Z"), &s, stop, 10);
        assert_eq!(due.len(), 3);
        assert_eq!(due[2].end, at("2024-01-01T00:02:30Z"));
        assert!(due_windows(due[2].end, at("2030-01-01T00:00:00Z"), &s, stop, 10).is_empty());
        assert!(finished(due[2].end, stop));
    }

    #[test]
    fn nothing_is_due_before_a_window_is_complete() {
        let s = schedule(60, 0);
        let from = at("2024-01-01T00:00:00Z");
        assert!(due_windows(from, at("2024-01-01T00:00:59Z"), &s, None, 10).is_empty());
        assert_eq!(due_windows(from, at("2024-01-01T00:01:00Z"), &s, None, 10).len(), 1);
    }

    #[test]
    fn alignment_is_to_window_multiples() {
        let aligned = align_down(at("2024-01-01T00:07:31Z"), Duration::seconds(300));
        assert_eq!(aligned, at("2024-01-01T00:05:00Z"));
    }
}
