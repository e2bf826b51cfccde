//! For plugin authors: log lines and metric samples that reach the host.
//!
//! Inside a shared library, `tracing::info!` and `metrics::counter!` talk to the library's own
//! copy of those crates, where no subscriber or recorder is installed: they go nowhere. The
//! functions here send through the callbacks the host passed at `create` instead. Outside a
//! plugin call (the same processor linked statically) they fall back to `tracing` and `metrics`
//! in the current process, so a processor written against them behaves the same both ways.
//!
//! ```
//! use flightline_core::plugin::host;
//!
//! host::log(tracing::Level::INFO, "window done");
//! host::counter("top_targets_rows_total", &[("table", "log_entries")], 42);
//! ```

use std::cell::Cell;
use std::ffi::CString;

use tracing::Level;

use super::abi::{self, FlightlineHost, FlightlineLabel};
use crate::metrics::MetricKind;

thread_local! {
    /// The host of the plugin call running on this thread, set by the export glue.
    static CURRENT: Cell<*const FlightlineHost> = const { Cell::new(std::ptr::null()) };
}

/// Restores the previous host when the call ends (also on unwind).
pub(crate) struct Scope {
    previous: *const FlightlineHost,
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Makes `host` the target of this thread's log lines and samples until the scope drops.
pub(crate) fn enter(host: *const FlightlineHost) -> Scope {
    Scope { previous: CURRENT.with(|c| c.replace(host)) }
}

/// Whether this thread is inside a plugin call whose host takes logs and metrics.
pub fn is_plugin_call() -> bool {
    !current().is_null()
}

fn current() -> *const FlightlineHost {
    CURRENT.with(Cell::get)
}

/// Sends a log line at `level`.
pub fn log(level: Level, message: &str) {
    let host = current();
    // SAFETY: the glue sets CURRENT to the host given at `create`, valid until `destroy`.
    if let Some(host) = unsafe { host.as_ref() }
        && let Some(log) = host.log
    {
        let text = super::cstr::lossy(message);
        unsafe { log(host.host_data, level_code(level), text.as_ptr()) };
        return;
    }
    match level {
        Level::ERROR => tracing::error!("{message}"),
        Level::WARN => tracing::warn!("{message}"),
        Level::INFO => tracing::info!("{message}"),
        Level::DEBUG => tracing::debug!("{message}"),
        _ => tracing::trace!("{message}"),
    }
}

/// Adds `value` to the counter `name` with `labels`.
///
/// The name must not start with `flightline_` (the host's) nor be used with another type by
/// another emitter: such samples are dropped, counted and logged once by the host
/// ([`crate::metrics::admit_sample`]).
pub fn counter(name: &str, labels: &[(&str, &str)], value: u64) {
    if !send(abi::METRIC_COUNTER, name, labels, value as f64)
        && admit_here(name, MetricKind::Counter)
    {
        metrics::counter!(name.to_string(), to_labels(labels)).increment(value);
    }
}

/// Sets the gauge `name` with `labels` to `value` (names as for [`counter`]).
pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64) {
    if !send(abi::METRIC_GAUGE, name, labels, value) && admit_here(name, MetricKind::Gauge) {
        metrics::gauge!(name.to_string(), to_labels(labels)).set(value);
    }
}

/// Records one sample `value` in the histogram `name` with `labels` (names as for [`counter`]).
pub fn histogram(name: &str, labels: &[(&str, &str)], value: f64) {
    if !send(abi::METRIC_HISTOGRAM, name, labels, value) && admit_here(name, MetricKind::Histogram)
    {
        metrics::histogram!(name.to_string(), to_labels(labels)).record(value);
    }
}

/// Outside a plugin call (a processor linked into the host), the same rule as the callbacks.
fn admit_here(name: &str, kind: MetricKind) -> bool {
    crate::metrics::admit_sample(name, kind, "(linked in)")
}

fn to_labels(labels: &[(&str, &str)]) -> Vec<metrics::Label> {
    labels.iter().map(|(k, v)| metrics::Label::new(k.to_string(), v.to_string())).collect()
}

/// Sends through the host's callback; false outside a plugin call.
fn send(kind: i32, name: &str, labels: &[(&str, &str)], value: f64) -> bool {
    let host = current();
    // SAFETY: as in `log`.
    let Some(metric) = (unsafe { host.as_ref() }).and_then(|h| h.metric) else { return false };
    let c = super::cstr::lossy;
    let name = c(name);
    let owned: Vec<(CString, CString)> = labels.iter().map(|(k, v)| (c(k), c(v))).collect();
    let raw: Vec<FlightlineLabel> =
        owned.iter().map(|(k, v)| FlightlineLabel { key: k.as_ptr(), value: v.as_ptr() }).collect();
    // SAFETY: every pointer lives until the call returns; `host` as in `log`.
    unsafe { metric((*host).host_data, kind, name.as_ptr(), raw.as_ptr(), raw.len(), value) };
    true
}

fn level_code(level: Level) -> i32 {
    match level {
        Level::ERROR => abi::LOG_ERROR,
        Level::WARN => abi::LOG_WARN,
        Level::INFO => abi::LOG_INFO,
        Level::DEBUG => abi::LOG_DEBUG,
        _ => abi::LOG_TRACE,
    }
}
