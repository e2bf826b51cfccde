//! The Rust mirror of `plugins/include/flightline_plugin.h`, field for field.
//!
//! The header is the reference: ownership and lifetime rules for every pointer are stated there
//! and repeated here only where Rust code must act on them. Arrow's own `FFI_ArrowArray` and
//! `FFI_ArrowSchema` are `#[repr(C)]` mirrors of `struct ArrowArray` / `struct ArrowSchema`.

use std::ffi::{c_char, c_void};

pub use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};

/// The name of the one symbol every plugin exports.
pub const ENTRY_SYMBOL: &str = "flightline_plugin_init";

/// ABI version 1 (`FLIGHTLINE_PLUGIN_ABI_1`).
pub const ABI_1: u32 = 1;
/// ABI version 2 (`FLIGHTLINE_PLUGIN_ABI_2`): the table gains `commit`, and `finish` only
/// prepares.
pub const ABI_2: u32 = 2;

/// The ABI versions this host speaks, newest first: the loader asks for each in turn.
pub const HOST_ABI_VERSIONS: &[u32] = &[ABI_2, ABI_1];

/// `FLIGHTLINE_PLUGIN_TABLE_SIZE_1`: the table up to and including `destroy`.
pub const TABLE_SIZE_1: u32 = (std::mem::offset_of!(PluginTable, destroy)
    + std::mem::size_of::<Option<unsafe extern "C" fn(*mut c_void)>>())
    as u32;

/// `FLIGHTLINE_PLUGIN_TABLE_SIZE_2`: the table up to and including `commit`.
pub const TABLE_SIZE_2: u32 =
    (std::mem::offset_of!(PluginTable, commit) + std::mem::size_of::<Option<CommitFn>>()) as u32;

/// A status code returned by every fallible ABI function (`FlightlineStatus`).
pub type Status = i32;

/// Success.
pub const STATUS_OK: Status = 0;
/// Failure with no better code.
pub const STATUS_UNKNOWN: Status = 1;
/// `init`: version not spoken (the host retries an older one); otherwise: not supported.
pub const STATUS_NOT_IMPLEMENTED: Status = 2;
/// The input (options, schema) is refused.
pub const STATUS_INVALID_ARGUMENT: Status = 3;
/// The work failed.
pub const STATUS_INTERNAL: Status = 4;
/// The plugin panicked; the instance is poisoned, only `destroy` is valid.
pub const STATUS_PANICKED: Status = 5;

/// Plugin kind bit: open/process/finish are implemented.
pub const KIND_PROCESSOR: u32 = 1;
/// Plugin kind bit: validate is implemented.
pub const KIND_VALIDATOR: u32 = 2;

/// `FLIGHTLINE_LOG_ERROR`.
pub const LOG_ERROR: i32 = 1;
/// `FLIGHTLINE_LOG_WARN`.
pub const LOG_WARN: i32 = 2;
/// `FLIGHTLINE_LOG_INFO`.
pub const LOG_INFO: i32 = 3;
/// `FLIGHTLINE_LOG_DEBUG`.
pub const LOG_DEBUG: i32 = 4;
/// `FLIGHTLINE_LOG_TRACE`.
pub const LOG_TRACE: i32 = 5;

/// `FLIGHTLINE_METRIC_COUNTER`: add the value to a counter.
pub const METRIC_COUNTER: i32 = 1;
/// `FLIGHTLINE_METRIC_GAUGE`: set a gauge.
pub const METRIC_GAUGE: i32 = 2;
/// `FLIGHTLINE_METRIC_HISTOGRAM`: record one sample.
pub const METRIC_HISTOGRAM: i32 = 3;

/// `struct FlightlineError`: filled by the plugin on failure; the host calls `release` once.
#[repr(C)]
#[derive(Debug)]
pub struct FlightlineError {
    /// NUL-terminated UTF-8, owned by the plugin until `release`.
    pub message: *mut c_char,
    /// Frees `message` and `private_data`; set by the plugin whenever it sets `message`.
    pub release: Option<unsafe extern "C" fn(*mut FlightlineError)>,
    /// The plugin's own.
    pub private_data: *mut c_void,
}

impl FlightlineError {
    /// A zeroed error, as the host passes it to each call.
    pub const fn empty() -> Self {
        Self { message: std::ptr::null_mut(), release: None, private_data: std::ptr::null_mut() }
    }
}

/// `struct FlightlineLabel`: borrowed strings for one metric label.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FlightlineLabel {
    /// NUL-terminated UTF-8.
    pub key: *const c_char,
    /// NUL-terminated UTF-8.
    pub value: *const c_char,
}

/// `FlightlineHost.log`.
pub type LogFn = unsafe extern "C" fn(host_data: *mut c_void, level: i32, message: *const c_char);

/// `FlightlineHost.metric`.
pub type MetricFn = unsafe extern "C" fn(
    host_data: *mut c_void,
    kind: i32,
    name: *const c_char,
    labels: *const FlightlineLabel,
    n_labels: usize,
    value: f64,
);

/// `struct FlightlineHost`: the host's callbacks, valid until the instance is destroyed.
#[repr(C)]
#[derive(Debug)]
pub struct FlightlineHost {
    /// `sizeof(struct FlightlineHost)` as the host knows it.
    pub size: u32,
    /// Passed back to every callback.
    pub host_data: *mut c_void,
    /// A log line.
    pub log: Option<LogFn>,
    /// A metric sample.
    pub metric: Option<MetricFn>,
}

/// `struct FlightlineContext`: what the host knows about the current call; borrowed for the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FlightlineContext {
    /// `sizeof(struct FlightlineContext)` as the host knows it.
    pub size: u32,
    /// 1 when the window fields are set.
    pub has_window: u32,
    /// The job name, NUL-terminated UTF-8.
    pub job: *const c_char,
    /// Index of this batch (open/finish: batches so far).
    pub batch_index: u64,
    /// Rows delivered before this batch.
    pub rows_before: u64,
    /// Rows the query will return, -1 when unknown.
    pub estimate_rows: i64,
    /// Window begin, ns since the Unix epoch, UTC.
    pub window_begin_ns: i64,
    /// Window end (excluded), ns since the Unix epoch, UTC.
    pub window_end_ns: i64,
}

/// `create`.
pub type CreateFn = unsafe extern "C" fn(
    options_json: *const c_char,
    host: *const FlightlineHost,
    instance: *mut *mut c_void,
    error: *mut FlightlineError,
) -> Status;
/// `open`.
pub type OpenFn = unsafe extern "C" fn(
    instance: *mut c_void,
    schema: *const FFI_ArrowSchema,
    context: *const FlightlineContext,
    error: *mut FlightlineError,
) -> Status;
/// `process`.
pub type ProcessFn = unsafe extern "C" fn(
    instance: *mut c_void,
    batch: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
    context: *const FlightlineContext,
    error: *mut FlightlineError,
) -> Status;
/// `finish`.
pub type FinishFn = unsafe extern "C" fn(
    instance: *mut c_void,
    context: *const FlightlineContext,
    report_json: *mut *mut c_char,
    error: *mut FlightlineError,
) -> Status;
/// `validate`.
pub type ValidateFn = unsafe extern "C" fn(
    instance: *mut c_void,
    sql: *const c_char,
    schema: *const FFI_ArrowSchema,
    findings_json: *mut *mut c_char,
    error: *mut FlightlineError,
) -> Status;
/// `commit` (since 2).
pub type CommitFn =
    unsafe extern "C" fn(instance: *mut c_void, error: *mut FlightlineError) -> Status;
/// `abort` and `destroy`.
pub type InstanceFn = unsafe extern "C" fn(instance: *mut c_void);
/// `release_string`.
pub type ReleaseStringFn = unsafe extern "C" fn(string: *mut c_char);
/// `last_error`.
pub type LastErrorFn = unsafe extern "C" fn(instance: *mut c_void) -> *const c_char;

/// `struct FlightlinePluginTable`. Every function pointer is nullable on the wire, hence `Option`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginTable {
    /// Bytes the plugin filled.
    pub size: u32,
    /// `KIND_*` bits.
    pub kind: u32,
    /// Static NUL-terminated name.
    pub name: *const c_char,
    /// Static NUL-terminated version.
    pub version: *const c_char,
    /// Makes an instance.
    pub create: Option<CreateFn>,
    /// Schema, once.
    pub open: Option<OpenFn>,
    /// One batch.
    pub process: Option<ProcessFn>,
    /// The report.
    pub finish: Option<FinishFn>,
    /// Discard partial output (may be null).
    pub abort: Option<InstanceFn>,
    /// Findings for a query.
    pub validate: Option<ValidateFn>,
    /// Frees a string from `finish` / `validate`.
    pub release_string: Option<ReleaseStringFn>,
    /// Message of the last failed call.
    pub last_error: Option<LastErrorFn>,
    /// Frees the instance.
    pub destroy: Option<InstanceFn>,
    /// Publishes what `finish` prepared (since 2; may be null).
    pub commit: Option<CommitFn>,
}

impl PluginTable {
    /// A zeroed table, as the host passes it to `init`.
    pub const fn zeroed() -> Self {
        Self {
            size: 0,
            kind: 0,
            name: std::ptr::null(),
            version: std::ptr::null(),
            create: None,
            open: None,
            process: None,
            finish: None,
            abort: None,
            validate: None,
            release_string: None,
            last_error: None,
            destroy: None,
            commit: None,
        }
    }
}

/// The entry point's type.
pub type InitFn =
    unsafe extern "C" fn(version: u32, table: *mut c_void, error: *mut FlightlineError) -> Status;

/// The size of the table a plugin must fill for `version`, `None` for a version this host does
/// not know.
pub fn table_size(version: u32) -> Option<u32> {
    match version {
        ABI_1 => Some(TABLE_SIZE_1),
        ABI_2 => Some(TABLE_SIZE_2),
        _ => None,
    }
}

/// A short name for a status code, for error messages.
pub fn status_name(status: Status) -> &'static str {
    match status {
        STATUS_OK => "OK",
        STATUS_UNKNOWN => "UNKNOWN",
        STATUS_NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        STATUS_INVALID_ARGUMENT => "INVALID_ARGUMENT",
        STATUS_INTERNAL => "INTERNAL",
        STATUS_PANICKED => "PANICKED",
        _ => "an unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C header computes the same numbers with `offsetof`/`sizeof`; on a 64-bit target the
    /// table is two u32 and eleven pointers in version 1, twelve in version 2.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layout_matches_the_header_on_64_bit() {
        assert_eq!(TABLE_SIZE_1, 8 + 11 * 8);
        assert_eq!(TABLE_SIZE_2, 8 + 12 * 8);
        assert_eq!(std::mem::size_of::<PluginTable>(), TABLE_SIZE_2 as usize);
        assert_eq!(std::mem::size_of::<FlightlineContext>(), 8 + 8 + 5 * 8);
        assert_eq!(std::mem::size_of::<FlightlineHost>(), 8 + 3 * 8);
        assert_eq!(std::mem::size_of::<FlightlineError>(), 3 * 8);
    }
}
