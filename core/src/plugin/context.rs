//! [`ProcessContext`] to and from `struct FlightlineContext`.

use std::ffi::CString;

use chrono::DateTime;

use super::abi::FlightlineContext;
use crate::process::{ProcessContext, RowEstimate};
use crate::time::TimeRange;

/// A `FlightlineContext` and the job string it points into, moved together.
#[derive(Debug)]
pub(crate) struct OwnedContext {
    _job: CString,
    raw: FlightlineContext,
}

// SAFETY: `raw.job` points into `_job`'s heap buffer, which moves with it and is never mutated.
unsafe impl Send for OwnedContext {}

impl OwnedContext {
    pub(crate) fn new(ctx: &ProcessContext) -> Self {
        let job = super::cstr::lossy(&ctx.job);
        let (has_window, begin, end) = match &ctx.window {
            Some(w) => (
                1,
                w.begin.timestamp_nanos_opt().unwrap_or(i64::MIN),
                w.end.timestamp_nanos_opt().unwrap_or(i64::MAX),
            ),
            None => (0, 0, 0),
        };
        let raw = FlightlineContext {
            size: std::mem::size_of::<FlightlineContext>() as u32,
            has_window,
            job: job.as_ptr(),
            batch_index: ctx.batch_index,
            rows_before: ctx.rows_before,
            estimate_rows: ctx.estimate.rows().and_then(|r| i64::try_from(r).ok()).unwrap_or(-1),
            window_begin_ns: begin,
            window_end_ns: end,
        };
        Self { _job: job, raw }
    }

    pub(crate) fn as_ptr(&self) -> *const FlightlineContext {
        &self.raw
    }
}

/// Reads a context the host passed; fields beyond its `size` keep their defaults.
///
/// # Safety
/// `ctx` is NULL or points to a context valid for the call, as the header states.
pub(crate) unsafe fn read(ctx: *const FlightlineContext) -> ProcessContext {
    let Some(raw) = (unsafe { ctx.as_ref() }) else { return ProcessContext::new("") };
    if (raw.size as usize) < std::mem::size_of::<FlightlineContext>() {
        return ProcessContext::new("");
    }
    // SAFETY: the header: `job` is NULL or a NUL-terminated string valid for the call.
    let job = unsafe { super::cstr::read_lossy(raw.job) }.unwrap_or_default();
    let estimate = u64::try_from(raw.estimate_rows).map(RowEstimate::Exact).unwrap_or_default();
    let window = (raw.has_window != 0).then(|| TimeRange {
        begin: DateTime::from_timestamp_nanos(raw.window_begin_ns),
        end: DateTime::from_timestamp_nanos(raw.window_end_ns),
    });
    ProcessContext::new(job)
        .at_batch(raw.batch_index, raw.rows_before)
        .with_estimate(estimate)
        .with_window(window)
}
