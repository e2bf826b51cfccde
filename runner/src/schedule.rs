//! Which windows a scheduled job processes next.
//!
//! A scheduled job walks consecutive windows `[start, start + window)`, each processed once
//! its end is at least `lag` in the past. After downtime it catches up in window-sized steps,
//! at most `max_windows_per_tick` per tick, so one job far behind does not hog the runner.
//! Pure functions of the checkpoint and the clock, so they are tested without waiting.

use chrono::{DateTime, Duration, Utc};
use flightline_core::TimeRange;

use crate::RunnerError;
use crate::config::{JobConfig, RangeSpec, Schedule};

/// Where a scheduled job without a checkpoint starts: its `begin`; else `now - last`; else
/// the last whole window before `now - lag`. The last two are aligned down to a multiple of
/// the window (since the Unix epoch), so windows and their file names are round. Fails,
/// rather than panicking, when a span reaches back beyond the instants chrono holds (the job
/// file check refuses such spans; this guards callers that build a [`JobConfig`] themselves).
pub fn first_window_start(
    job: &JobConfig,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, RunnerError> {
    let start = match job.range {
        RangeSpec::Absolute { begin, .. } => Some(begin),
        RangeSpec::Last(span) => {
            now.checked_sub_signed(span).map(|from| align_down(from, schedule.window))
        }
        RangeSpec::None => now
            .checked_sub_signed(schedule.lag)
            .map(|ready| align_down(ready, schedule.window))
            .and_then(|ready| ready.checked_sub_signed(schedule.window)),
    };
    start.ok_or_else(|| out_of_range(job, "its first window"))
}

/// The range of a one-shot job: none, `last` up to now, or `begin` to `end`. A range that
/// cannot be computed fails the job: reading everything instead would silently widen it.
pub fn one_shot_range(job: &JobConfig) -> Result<Option<TimeRange>, RunnerError> {
    match job.range {
        RangeSpec::None => Ok(None),
        RangeSpec::Last(span) => {
            TimeRange::last(span).map(Some).map_err(|_| out_of_range(job, "`last` ending now"))
        }
        RangeSpec::Absolute { begin, end: Some(end) } => Ok(Some(TimeRange::new(begin, end)?)),
        RangeSpec::Absolute { end: None, .. } => Err(flightline_core::Error::Config(format!(
            "job {:?}: a job without `every` needs `end` beside `begin`",
            job.name
        ))
        .into()),
    }
}

fn out_of_range(job: &JobConfig, what: &str) -> RunnerError {
    flightline_core::Error::TimeRange {
        input: format!("job {:?}: {what}", job.name),
        reason: "a span reaches back beyond the representable instants; shorten `last`, \
                 `window` or `lag` (`flightline check` names the key)"
            .into(),
    }
    .into()
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
    // A lag or window beyond chrono's range makes nothing due, never a panic.
    let Some(ready_until) = now.checked_sub_signed(schedule.lag) else { return Vec::new() };
    let mut out = Vec::new();
    let mut begin = from;
    while out.len() < cap as usize {
        let Some(mut end) = begin.checked_add_signed(schedule.window) else { break };
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

    /// A scheduled job with `range` put in after parsing (the file check would refuse the
    /// out-of-range ones these tests need).
    fn job(range: RangeSpec) -> JobConfig {
        JobConfig { range, ..crate::config::scheduled_test_job() }
    }

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
    fn a_job_stops_at_its_end_and_only_an_absolute_range_has_one() {
        let (begin, end) = (at("2024-01-01T00:00:00Z"), at("2024-01-02T00:00:00Z"));
        assert_eq!(stop(&job(RangeSpec::Absolute { begin, end: Some(end) })), Some(end));
        assert_eq!(stop(&job(RangeSpec::Absolute { begin, end: None })), None);
        assert_eq!(stop(&job(RangeSpec::Last(Duration::hours(1)))), None);
        assert_eq!(stop(&job(RangeSpec::None)), None);
        assert!(!finished(begin, Some(end)) && finished(end, Some(end)));
        assert!(!finished(at("2030-01-01T00:00:00Z"), None), "without an end, never finished");
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
        // A window of no length aligns nothing (and never divides by zero).
        let t = at("2024-01-01T00:07:31Z");
        assert_eq!(align_down(t, Duration::zero()), t);
    }

    #[test]
    fn last_starts_one_span_before_now_aligned_down_to_the_window() {
        let now = at("2024-01-01T00:07:31Z");
        let last = job(RangeSpec::Last(Duration::hours(1)));
        let start = first_window_start(&last, &schedule(300, 0), now).unwrap();
        assert_eq!(start, at("2023-12-31T23:05:00Z"));
        let start = first_window_start(&last, &schedule(60, 30), now).unwrap();
        assert_eq!(start, at("2023-12-31T23:07:00Z"), "lag does not move a `last` start");
    }

    #[test]
    fn no_range_starts_at_the_last_whole_window_before_now_minus_lag() {
        let s = schedule(60, 30);
        let now = at("2024-01-01T00:05:20Z");
        // Ready until 00:04:50: [00:03, 00:04) is the last whole window before it.
        let start = first_window_start(&job(RangeSpec::None), &s, now).unwrap();
        assert_eq!(start, at("2024-01-01T00:03:00Z"));
        assert_eq!(due_windows(start, now, &s, None, 10).len(), 1, "that one window is due");
    }

    #[test]
    fn begin_starts_at_begin_unaligned() {
        let begin = at("2024-01-01T00:00:07Z");
        let absolute = job(RangeSpec::Absolute { begin, end: None });
        let start = first_window_start(&absolute, &schedule(60, 30), at("2030-01-01T00:00:00Z"));
        assert_eq!(start.unwrap(), begin);
    }

    #[test]
    fn spans_beyond_chrono_fail_or_make_nothing_due_never_panic() {
        let now = at("2024-01-01T00:00:00Z");
        let huge = schedule(60, 0);
        let err = first_window_start(&job(RangeSpec::Last(Duration::MAX)), &huge, now);
        assert!(matches!(err, Err(RunnerError::Core(flightline_core::Error::TimeRange { .. }))));
        let late = Schedule { lag: Duration::MAX, ..huge };
        assert!(first_window_start(&job(RangeSpec::None), &late, now).is_err());
        assert!(due_windows(now, now, &late, None, 10).is_empty());
        let wide = Schedule { window: Duration::MAX, ..huge };
        assert!(due_windows(now, at("2200-01-01T00:00:00Z"), &wide, None, 10).is_empty());
    }

    #[test]
    fn a_one_shot_range_that_cannot_be_computed_fails_instead_of_reading_everything() {
        let err = one_shot_range(&job(RangeSpec::Last(Duration::MAX))).unwrap_err();
        assert!(err.to_string().contains("`last`"), "{err}");
        let begin = at("2024-01-01T00:00:00Z");
        assert!(one_shot_range(&job(RangeSpec::Absolute { begin, end: None })).is_err());
        assert_eq!(one_shot_range(&job(RangeSpec::None)).unwrap(), None);
        let hour = one_shot_range(&job(RangeSpec::Last(Duration::hours(1)))).unwrap().unwrap();
        assert_eq!(hour.duration(), Duration::hours(1));
        let end = at("2024-01-02T00:00:00Z");
        let absolute = one_shot_range(&job(RangeSpec::Absolute { begin, end: Some(end) }));
        assert_eq!(absolute.unwrap(), Some(TimeRange::new(begin, end).unwrap()));
    }
}
