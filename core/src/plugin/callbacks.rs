//! The host's side of `struct FlightlineHost`: a plugin's log lines become `tracing` events and
//! its metric samples go to the `metrics` recorder of the host process.
//!
//! The callbacks run on whatever thread called into the plugin (a blocking-pool thread): events
//! reach the subscriber that was current for the call (the loader carries it there), samples
//! reach the global recorder. A sample whose name is the host's (`flightline_`), invalid, or
//! taken with another type is dropped and counted instead
//! ([`crate::metrics::admit_sample`]): one bad name must not break the scrape.

use std::ffi::{c_char, c_void};
use std::sync::{Mutex, PoisonError};

use metrics::Label;

use crate::metrics::MetricKind;

use super::abi::{self, FlightlineHost, FlightlineLabel};

/// What the callbacks need: the labels every line and sample of one instance carries.
#[derive(Debug)]
pub(crate) struct HostData {
    plugin: String,
    job: Mutex<String>,
}

impl HostData {
    pub(crate) fn new(plugin: &str) -> Box<Self> {
        Box::new(Self { plugin: plugin.to_string(), job: Mutex::new(String::new()) })
    }

    /// Sets the `job` label (known from `open` on).
    pub(crate) fn set_job(&self, job: &str) {
        let mut current = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_str() != job {
            *current = job.to_string();
        }
    }

    fn job(&self) -> String {
        self.job.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The callback table for one instance; `data` must outlive the instance.
pub(crate) fn host_table(data: &HostData) -> Box<FlightlineHost> {
    Box::new(FlightlineHost {
        size: std::mem::size_of::<FlightlineHost>() as u32,
        host_data: (data as *const HostData).cast_mut().cast::<c_void>(),
        log: Some(log),
        metric: Some(metric),
    })
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the call.
unsafe fn text<'a>(ptr: *const c_char) -> std::borrow::Cow<'a, str> {
    unsafe { super::cstr::borrow_lossy(ptr) }.unwrap_or_default()
}

unsafe extern "C" fn log(host_data: *mut c_void, level: i32, message: *const c_char) {
    // A panic must not unwind into the plugin's C frames; a subscriber that panics loses a line.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `host_data` is the `HostData` this table was made with, alive until destroy.
        let Some(data) = (unsafe { host_data.cast::<HostData>().as_ref() }) else { return };
        let message = unsafe { text(message) };
        let (plugin, job) = (data.plugin.as_str(), data.job());
        match level {
            abi::LOG_ERROR => {
                tracing::error!(target: "flightline::plugin", plugin, job, "{message}")
            }
            abi::LOG_WARN => tracing::warn!(target: "flightline::plugin", plugin, job, "{message}"),
            abi::LOG_INFO => tracing::info!(target: "flightline::plugin", plugin, job, "{message}"),
            abi::LOG_DEBUG => {
                tracing::debug!(target: "flightline::plugin", plugin, job, "{message}")
            }
            _ => tracing::trace!(target: "flightline::plugin", plugin, job, "{message}"),
        }
    });
}

unsafe extern "C" fn metric(
    host_data: *mut c_void,
    kind: i32,
    name: *const c_char,
    labels: *const FlightlineLabel,
    n_labels: usize,
    value: f64,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: as in `log`; `labels` points to `n_labels` labels valid for the call.
        let Some(data) = (unsafe { host_data.cast::<HostData>().as_ref() }) else { return };
        let name = unsafe { text(name) }.into_owned();
        if name.is_empty() {
            return;
        }
        let given = if labels.is_null() || n_labels == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(labels, n_labels) }
        };
        let mut all: Vec<Label> = given
            .iter()
            .map(|l| {
                Label::new(
                    unsafe { text(l.key) }.into_owned(),
                    unsafe { text(l.value) }.into_owned(),
                )
            })
            .collect();
        let kind = match kind {
            abi::METRIC_COUNTER if value >= 0.0 => MetricKind::Counter,
            abi::METRIC_GAUGE => MetricKind::Gauge,
            abi::METRIC_HISTOGRAM => MetricKind::Histogram,
            _ => return,
        };
        // A name the host owns, or one taken with another type, would break the whole scrape.
        if !crate::metrics::admit_sample(&name, kind, &data.plugin) {
            return;
        }
        all.push(Label::new(crate::plugin::LABEL_PLUGIN, data.plugin.clone()));
        all.push(Label::new(crate::metrics::LABEL_JOB, data.job()));
        match kind {
            MetricKind::Counter => metrics::counter!(name, all).increment(value as u64),
            MetricKind::Gauge => metrics::gauge!(name, all).set(value),
            MetricKind::Histogram => metrics::histogram!(name, all).record(value),
        }
    });
}
