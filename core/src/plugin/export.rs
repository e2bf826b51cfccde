//! For Rust plugin authors: the `extern "C"` glue behind [`export_processor!`](crate::export_processor),
//! [`export_validator!`](crate::export_validator) and [`export_plugin!`](crate::export_plugin).
//!
//! Every exported function catches panics (a panic unwinding out of `extern "C"` aborts the host)
//! and turns them into `FLIGHTLINE_STATUS_PANICKED`; an instance that panicked refuses every
//! further call. The async trait methods run on a minimal executor
//! (`futures::executor::block_on`) inside the plugin: a plugin needs no tokio runtime, and must not
//! use the host's (it has its own copy of tokio's statics, with no runtime in them).

use std::any::Any;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow::array::{RecordBatch, StructArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use futures::executor::block_on;

use super::abi::{self, FlightlineContext, FlightlineError, FlightlineHost, PluginTable, Status};
use super::{context, host};
use crate::error::Chain;
use crate::process::{BatchProcessor, ProcessError};
use crate::schema::{SchemaAnalysis, SizeOptions};
use crate::validate::{QueryValidator, ValidationContext};

/// Builds a processor or validator from the `options` table of the job config (as JSON).
///
/// Typically deserialises an options struct with `#[serde(deny_unknown_fields)]`, so a typo in
/// the config is refused with the option's name:
///
/// ```
/// use flightline_core::plugin::export::FromOptions;
/// use flightline_core::process::ProcessError;
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Options { top: usize }
///
/// struct TopN { top: usize }
///
/// impl FromOptions for TopN {
///     fn from_options(options: serde_json::Value) -> Result<Self, ProcessError> {
///         let o: Options = serde_json::from_value(options)
///             .map_err(|e| ProcessError::new(format!("top_n options: {e}")))?;
///         Ok(TopN { top: o.top })
///     }
/// }
/// assert!(TopN::from_options(serde_json::json!({"top": 3})).is_ok());
/// assert!(TopN::from_options(serde_json::json!({"tpo": 3})).is_err());
/// ```
pub trait FromOptions: Sized {
    /// The instance for these options, or why they are refused.
    fn from_options(options: serde_json::Value) -> Result<Self, ProcessError>;
}

/// Makes a processor from options.
pub type ProcessorFactory = fn(serde_json::Value) -> Result<Box<dyn BatchProcessor>, ProcessError>;
/// Makes a validator from options.
pub type ValidatorFactory = fn(serde_json::Value) -> Result<Box<dyn QueryValidator>, ProcessError>;

/// What one library exports: built once by the macro, read by the glue.
#[derive(Debug)]
pub struct Exports {
    name: CString,
    version: CString,
    processor: Option<ProcessorFactory>,
    validator: Option<ValidatorFactory>,
}

impl Exports {
    /// A plugin called `name`, at `version`, exporting nothing yet.
    pub fn new(name: &str, version: &str) -> Self {
        let c = super::cstr::lossy;
        Self { name: c(name), version: c(version), processor: None, validator: None }
    }

    /// Exports the processor `P`.
    pub fn processor<P: BatchProcessor + FromOptions + 'static>(mut self) -> Self {
        self.processor = Some(|options| P::from_options(options).map(|p| Box::new(p) as _));
        self
    }

    /// Exports the validator `V`.
    pub fn validator<V: QueryValidator + FromOptions + 'static>(mut self) -> Self {
        self.validator = Some(|options| V::from_options(options).map(|v| Box::new(v) as _));
        self
    }
}

/// Ties the generic glue to one library's [`Exports`]; implemented by the export macros.
pub trait Spec: 'static {
    /// The library's exports.
    fn exports() -> &'static Exports;
}

/// The plugin side of one instance.
struct Exported {
    processor: Option<Box<dyn BatchProcessor>>,
    validator: Option<Box<dyn QueryValidator>>,
    host: *const FlightlineHost,
    poisoned: bool,
    last_error: Option<CString>,
}

type Outcome = Result<(), (Status, String)>;

/// The entry point, for [`Spec`] `S`: fills the table for ABI version 2 or 1, refuses any
/// other. Under version 1 (an older host, which never calls `commit`) `finish` also commits.
///
/// # Safety
/// The caller follows the header: `table` points to a zeroed table at least as large as the
/// requested version's, `error` to a zeroed error.
pub unsafe fn init<S: Spec>(
    version: u32,
    table: *mut c_void,
    error: *mut FlightlineError,
) -> Status {
    let outcome = catch_unwind(|| {
        let Some(filled) = table_for::<S>(version) else {
            let message = format!(
                "this plugin speaks ABI versions {} and {}, not {version}",
                abi::ABI_2,
                abi::ABI_1
            );
            return Err((abi::STATUS_NOT_IMPLEMENTED, message));
        };
        if table.is_null() {
            return Err((abi::STATUS_INVALID_ARGUMENT, "table is NULL".into()));
        }
        // Only the requested version's bytes: an older host's table ends there.
        // SAFETY: the caller gives a table at least `filled.size` bytes long; `filled` is a
        // local value, so the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&filled as *const PluginTable).cast::<u8>(),
                table.cast::<u8>(),
                filled.size as usize,
            );
        }
        Ok(())
    });
    let outcome = outcome.unwrap_or_else(|p| Err((abi::STATUS_PANICKED, panic_message(&*p))));
    report(outcome, error, None)
}

/// The table of `version`, `None` for a version this glue does not speak.
fn table_for<S: Spec>(version: u32) -> Option<PluginTable> {
    let exports = S::exports();
    let kind = if exports.processor.is_some() { abi::KIND_PROCESSOR } else { 0 }
        | if exports.validator.is_some() { abi::KIND_VALIDATOR } else { 0 };
    let (size, finish, commit): (u32, abi::FinishFn, Option<abi::CommitFn>) = match version {
        abi::ABI_2 => (abi::TABLE_SIZE_2, finish, Some(commit)),
        abi::ABI_1 => (abi::TABLE_SIZE_1, finish_and_commit, None),
        _ => return None,
    };
    Some(PluginTable {
        size,
        kind,
        name: exports.name.as_ptr(),
        version: exports.version.as_ptr(),
        create: Some(create::<S>),
        open: Some(open),
        process: Some(process),
        finish: Some(finish),
        abort: Some(abort),
        validate: Some(validate),
        release_string: Some(release_string),
        last_error: Some(last_error),
        destroy: Some(destroy),
        commit,
    })
}

unsafe extern "C" fn create<S: Spec>(
    options_json: *const c_char,
    host: *const FlightlineHost,
    instance: *mut *mut c_void,
    error: *mut FlightlineError,
) -> Status {
    let _scope = host::enter(host);
    let outcome = catch_unwind(|| make::<S>(options_json, host));
    match outcome.unwrap_or_else(|p| Err((abi::STATUS_PANICKED, panic_message(&*p)))) {
        Ok(exported) => match unsafe { instance.as_mut() } {
            Some(out) => {
                *out = Box::into_raw(Box::new(exported)).cast();
                abi::STATUS_OK
            }
            None => {
                report(Err((abi::STATUS_INVALID_ARGUMENT, "instance is NULL".into())), error, None)
            }
        },
        Err(e) => report(Err(e), error, None),
    }
}

fn make<S: Spec>(
    options_json: *const c_char,
    host: *const FlightlineHost,
) -> Result<Exported, (Status, String)> {
    let refused = |m: String| (abi::STATUS_INVALID_ARGUMENT, m);
    // SAFETY: the header: NULL or a NUL-terminated string valid for the call.
    let text = unsafe { super::cstr::borrow_lossy(options_json) }.unwrap_or("{}".into());
    let options: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| refused(format!("options are not JSON: {e}")))?;
    let exports = S::exports();
    let processor = exports.processor.map(|f| f(options.clone())).transpose();
    let validator = exports.validator.map(|f| f(options)).transpose();
    Ok(Exported {
        processor: processor.map_err(|e| refused(Chain(&e).to_string()))?,
        validator: validator.map_err(|e| refused(Chain(&e).to_string()))?,
        host,
        poisoned: false,
        last_error: None,
    })
}

/// Runs `f` on the instance: refuses a poisoned instance, routes host helpers to this
/// instance's host, catches a panic and poisons the instance.
unsafe fn guarded(
    instance: *mut c_void,
    error: *mut FlightlineError,
    f: impl FnOnce(&mut Exported) -> Outcome,
) -> Status {
    let Some(this) = (unsafe { instance.cast::<Exported>().as_mut() }) else {
        return report(Err((abi::STATUS_INVALID_ARGUMENT, "instance is NULL".into())), error, None);
    };
    if this.poisoned {
        let message = "an earlier call panicked; this instance refuses further calls".to_string();
        return report(Err((abi::STATUS_PANICKED, message)), error, Some(this));
    }
    let _scope = host::enter(this.host);
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut *this)));
    let outcome = outcome.unwrap_or_else(|p| {
        this.poisoned = true;
        Err((abi::STATUS_PANICKED, panic_message(&*p)))
    });
    report(outcome, error, Some(this))
}

unsafe extern "C" fn open(
    instance: *mut c_void,
    schema: *const FFI_ArrowSchema,
    ctx: *const FlightlineContext,
    error: *mut FlightlineError,
) -> Status {
    unsafe {
        guarded(instance, error, |this| {
            let ctx = context::read(ctx);
            let schema = import_schema(schema)?;
            let p = processor(this)?;
            block_on(p.open(&schema, &ctx)).map_err(|e| internal(Chain(&e)))
        })
    }
}

unsafe extern "C" fn process(
    instance: *mut c_void,
    batch: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
    ctx: *const FlightlineContext,
    error: *mut FlightlineError,
) -> Status {
    unsafe {
        guarded(instance, error, |this| {
            let ctx = context::read(ctx);
            let batch = import_batch(batch, schema)?;
            let p = processor(this)?;
            block_on(p.process(&batch, &ctx)).map_err(|e| internal(Chain(&e)))
        })
    }
}

unsafe extern "C" fn finish(
    instance: *mut c_void,
    ctx: *const FlightlineContext,
    report_json: *mut *mut c_char,
    error: *mut FlightlineError,
) -> Status {
    unsafe { finish_then(instance, ctx, report_json, error, false) }
}

/// `finish` of the version 1 table: nothing calls `commit` there, so finishing publishes.
unsafe extern "C" fn finish_and_commit(
    instance: *mut c_void,
    ctx: *const FlightlineContext,
    report_json: *mut *mut c_char,
    error: *mut FlightlineError,
) -> Status {
    unsafe { finish_then(instance, ctx, report_json, error, true) }
}

unsafe fn finish_then(
    instance: *mut c_void,
    ctx: *const FlightlineContext,
    report_json: *mut *mut c_char,
    error: *mut FlightlineError,
    commit: bool,
) -> Status {
    unsafe {
        guarded(instance, error, |this| {
            let ctx = context::read(ctx);
            let p = processor(this)?;
            let report = block_on(p.finish(&ctx)).map_err(|e| internal(Chain(&e)))?;
            if commit {
                block_on(p.commit()).map_err(|e| internal(Chain(&e)))?;
            }
            let json = serde_json::to_string(&report).map_err(|e| internal(e.to_string()))?;
            write_string(report_json, json)
        })
    }
}

unsafe extern "C" fn commit(instance: *mut c_void, error: *mut FlightlineError) -> Status {
    unsafe {
        guarded(instance, error, |this| {
            block_on(processor(this)?.commit()).map_err(|e| internal(Chain(&e)))
        })
    }
}

unsafe extern "C" fn abort(instance: *mut c_void) {
    unsafe {
        guarded(instance, std::ptr::null_mut(), |this| {
            if let Some(p) = this.processor.as_mut() {
                block_on(p.abort());
            }
            Ok(())
        });
    }
}

unsafe extern "C" fn validate(
    instance: *mut c_void,
    sql: *const c_char,
    schema: *const FFI_ArrowSchema,
    findings_json: *mut *mut c_char,
    error: *mut FlightlineError,
) -> Status {
    unsafe {
        guarded(instance, error, |this| {
            let Some(v) = this.validator.as_ref() else {
                return Err((
                    abi::STATUS_NOT_IMPLEMENTED,
                    "this plugin exports no validator".into(),
                ));
            };
            let Some(sql) = super::cstr::borrow_lossy(sql) else {
                return Err((abi::STATUS_INVALID_ARGUMENT, "sql is NULL".into()));
            };
            let mut ctx = ValidationContext::new(sql);
            if !schema.is_null() {
                let schema = import_schema(schema)?;
                ctx =
                    ctx.with_schema(SchemaAnalysis::from_schema(&schema, &SizeOptions::default()));
            }
            let findings = block_on(v.validate(&ctx));
            let json = serde_json::to_string(&findings).map_err(|e| internal(e.to_string()))?;
            write_string(findings_json, json)
        })
    }
}

unsafe extern "C" fn release_string(string: *mut c_char) {
    if !string.is_null() {
        // SAFETY: every string handed out came from `CString::into_raw` in `write_string`.
        drop(unsafe { CString::from_raw(string) });
    }
}

unsafe extern "C" fn last_error(instance: *mut c_void) -> *const c_char {
    match unsafe { instance.cast::<Exported>().as_ref() } {
        Some(this) => this.last_error.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
        None => std::ptr::null(),
    }
}

unsafe extern "C" fn destroy(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: `instance` came from `Box::into_raw` in `create`; the host destroys it once.
    let exported = unsafe { Box::from_raw(instance.cast::<Exported>()) };
    let _scope = host::enter(exported.host);
    // A processor's Drop may panic too; it must not unwind into the host.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(exported)));
}

fn processor(this: &mut Exported) -> Result<&mut Box<dyn BatchProcessor>, (Status, String)> {
    this.processor
        .as_mut()
        .ok_or_else(|| (abi::STATUS_NOT_IMPLEMENTED, "this plugin exports no processor".into()))
}

fn internal(e: impl ToString) -> (Status, String) {
    (abi::STATUS_INTERNAL, e.to_string())
}

unsafe fn import_schema(schema: *const FFI_ArrowSchema) -> Result<SchemaRef, (Status, String)> {
    let schema = unsafe { schema.as_ref() }
        .ok_or_else(|| (abi::STATUS_INVALID_ARGUMENT, "schema is NULL".to_string()))?;
    Schema::try_from(schema)
        .map(Arc::new)
        .map_err(|e| (abi::STATUS_INVALID_ARGUMENT, format!("unreadable schema: {e}")))
}

/// Takes ownership of the batch (moving it out, as the header allows) without copying a buffer.
unsafe fn import_batch(
    batch: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
) -> Result<RecordBatch, (Status, String)> {
    let invalid = |m: String| (abi::STATUS_INVALID_ARGUMENT, m);
    if batch.is_null() {
        return Err(invalid("batch is NULL".into()));
    }
    let schema = unsafe { schema.as_ref() }.ok_or_else(|| invalid("schema is NULL".into()))?;
    let array = unsafe { FFI_ArrowArray::from_raw(batch) };
    let data = unsafe { from_ffi(array, schema) }
        .map_err(|e| invalid(format!("unreadable batch: {e}")))?;
    if !matches!(data.data_type(), arrow::datatypes::DataType::Struct(_)) {
        return Err(invalid(format!("a batch must be a struct array, got {}", data.data_type())));
    }
    Ok(RecordBatch::from(StructArray::from(data)))
}

unsafe fn write_string(out: *mut *mut c_char, text: String) -> Outcome {
    let out = unsafe { out.as_mut() }
        .ok_or_else(|| (abi::STATUS_INVALID_ARGUMENT, "output is NULL".into()))?;
    *out = CString::new(text).map_err(|e| internal(e.to_string()))?.into_raw();
    Ok(())
}

/// Writes a failure into `error` (and the instance's last error); returns its status.
fn report(outcome: Outcome, error: *mut FlightlineError, this: Option<&mut Exported>) -> Status {
    let (status, message) = match outcome {
        Ok(()) => {
            if let Some(this) = this {
                this.last_error = None;
            }
            return abi::STATUS_OK;
        }
        Err(e) => e,
    };
    let text = super::cstr::lossy(&message);
    if let Some(this) = this {
        this.last_error = Some(text.clone());
    }
    // SAFETY: the header: `error` is NULL or a zeroed error the host releases.
    if let Some(error) = unsafe { error.as_mut() } {
        error.message = text.into_raw();
        error.release = Some(release_error);
    }
    status
}

unsafe extern "C" fn release_error(error: *mut FlightlineError) {
    if let Some(error) = unsafe { error.as_mut() } {
        if !error.message.is_null() {
            // SAFETY: set from `CString::into_raw` in `report`.
            drop(unsafe { CString::from_raw(error.message) });
        }
        *error = FlightlineError::empty();
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

/// Exports a processor and/or a validator from a `cdylib` crate: defines
/// `flightline_plugin_init` and every function of the table.
///
/// ```no_run
/// use arrow::array::RecordBatch;
/// use flightline_core::plugin::export::FromOptions;
/// use flightline_core::process::{
///     BatchProcessor, ProcessContext, ProcessError, Report, async_trait,
/// };
/// use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
///
/// /// Counts rows.
/// #[derive(Default)]
/// pub struct CountRows(u64);
///
/// #[async_trait]
/// impl BatchProcessor for CountRows {
///     fn name(&self) -> &str {
///         "count_rows"
///     }
///     async fn process(&mut self, batch: &RecordBatch, _: &ProcessContext) -> Result<(), ProcessError> {
///         self.0 += batch.num_rows() as u64;
///         Ok(())
///     }
///     async fn finish(&mut self, _: &ProcessContext) -> Result<Report, ProcessError> {
///         let mut report = Report::default();
///         report.counts.insert("rows".into(), self.0);
///         Ok(report)
///     }
/// }
///
/// impl FromOptions for CountRows {
///     fn from_options(_: serde_json::Value) -> Result<Self, ProcessError> {
///         Ok(Self::default())
///     }
/// }
///
/// /// Denies every statement that mentions `secrets`.
/// pub struct DenySecrets;
///
/// #[async_trait]
/// impl QueryValidator for DenySecrets {
///     fn name(&self) -> &str {
///         "deny_secrets"
///     }
///     async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
///         if !ctx.sql().contains("secrets") {
///             return Vec::new();
///         }
///         vec![Finding::new(Severity::Deny, "secrets", "reads `secrets`", "query another table")]
///     }
/// }
///
/// impl FromOptions for DenySecrets {
///     fn from_options(_: serde_json::Value) -> Result<Self, ProcessError> {
///         Ok(Self)
///     }
/// }
///
/// flightline_core::export_plugin! {
///     name: "count_rows", version: env!("CARGO_PKG_VERSION"),
///     processor: CountRows,
///     validator: DenySecrets,
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, version: $version:expr $(, processor: $p:ty)? $(, validator: $v:ty)? $(,)?) => {
        /// The exports of this plugin library (generated by `flightline_core::export_plugin!`).
        #[doc(hidden)]
        pub struct __FlightlinePluginSpec;

        impl $crate::plugin::export::Spec for __FlightlinePluginSpec {
            fn exports() -> &'static $crate::plugin::export::Exports {
                static EXPORTS: ::std::sync::OnceLock<$crate::plugin::export::Exports> =
                    ::std::sync::OnceLock::new();
                EXPORTS.get_or_init(|| {
                    $crate::plugin::export::Exports::new($name, $version)
                        $(.processor::<$p>())?
                        $(.validator::<$v>())?
                })
            }
        }

        /// The plugin entry point (generated by `flightline_core::export_plugin!`).
        ///
        /// # Safety
        /// Called by a Flightline host as `flightline_plugin.h` states.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn flightline_plugin_init(
            version: u32,
            table: *mut ::std::ffi::c_void,
            error: *mut $crate::plugin::abi::FlightlineError,
        ) -> $crate::plugin::abi::Status {
            unsafe { $crate::plugin::export::init::<__FlightlinePluginSpec>(version, table, error) }
        }
    };
}

/// Exports one [`BatchProcessor`] (that also implements [`FromOptions`]) as the plugin, named
/// after the crate (or `name = "..."`), at the crate's version.
///
/// ```no_run
/// # use arrow::array::RecordBatch;
/// # use flightline_core::plugin::export::FromOptions;
/// # use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
/// # #[derive(Default)]
/// # pub struct TopTargets;
/// # #[async_trait]
/// # impl BatchProcessor for TopTargets {
/// #     fn name(&self) -> &str { "top_targets" }
/// #     async fn process(&mut self, _: &RecordBatch, _: &ProcessContext) -> Result<(), ProcessError> { Ok(()) }
/// #     async fn finish(&mut self, _: &ProcessContext) -> Result<Report, ProcessError> { Ok(Report::default()) }
/// # }
/// # impl FromOptions for TopTargets {
/// #     fn from_options(_: serde_json::Value) -> Result<Self, ProcessError> { Ok(Self) }
/// # }
/// // Named after the crate: `flightline_core::export_processor!(TopTargets);`
/// flightline_core::export_processor!(TopTargets, name = "top_targets");
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_processor {
    ($p:ty) => {
        $crate::export_plugin! { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION"), processor: $p }
    };
    ($p:ty, name = $name:expr) => {
        $crate::export_plugin! { name: $name, version: env!("CARGO_PKG_VERSION"), processor: $p }
    };
}

/// Exports one [`QueryValidator`] (that also implements [`FromOptions`]) as the plugin.
#[macro_export]
macro_rules! export_validator {
    ($v:ty) => {
        $crate::export_plugin! { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION"), validator: $v }
    };
    ($v:ty, name = $name:expr) => {
        $crate::export_plugin! { name: $name, version: env!("CARGO_PKG_VERSION"), validator: $v }
    };
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    struct Empty;

    impl Spec for Empty {
        fn exports() -> &'static Exports {
            static EXPORTS: OnceLock<Exports> = OnceLock::new();
            EXPORTS.get_or_init(|| Exports::new("empty", "0.0.1"))
        }
    }

    const CANARY: u8 = 0xA5;

    /// A table buffer as a host of `version` gives it: zeroed up to that version's size, and
    /// canary bytes after it where a larger, newer table would go.
    fn host_buffer(version: u32) -> Vec<u64> {
        let words = std::mem::size_of::<PluginTable>().div_ceil(8) + 2;
        let mut buffer = vec![u64::from_ne_bytes([CANARY; 8]); words];
        let size = abi::table_size(version).unwrap() as usize;
        let bytes = buffer.as_mut_ptr().cast::<u8>();
        // SAFETY: `size` is below the buffer's length in bytes.
        unsafe { std::ptr::write_bytes(bytes, 0, size) };
        buffer
    }

    fn bytes(buffer: &[u64]) -> &[u8] {
        // SAFETY: a u64 slice is readable as bytes.
        unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), buffer.len() * 8) }
    }

    #[test]
    fn version_1_fills_exactly_its_table_and_leaves_commit_to_finish() {
        let mut buffer = host_buffer(abi::ABI_1);
        let mut error = FlightlineError::empty();
        let table = buffer.as_mut_ptr().cast::<c_void>();
        // SAFETY: a zeroed version 1 table and a zeroed error, as the header asks.
        assert_eq!(unsafe { init::<Empty>(abi::ABI_1, table, &mut error) }, abi::STATUS_OK);
        let size = abi::TABLE_SIZE_1 as usize;
        assert!(bytes(&buffer)[size..].iter().all(|b| *b == CANARY), "wrote past version 1");
        // SAFETY: the plugin filled a version 1 table.
        let filled = unsafe { &*buffer.as_ptr().cast::<PluginTable>() };
        assert_eq!(filled.size, abi::TABLE_SIZE_1);
        assert_eq!(
            filled.finish.map(|f| f as *const () as usize),
            Some(finish_and_commit as *const () as usize)
        );
    }

    #[test]
    fn version_2_fills_commit_and_an_unknown_version_is_refused() {
        let mut buffer = host_buffer(abi::ABI_2);
        let mut error = FlightlineError::empty();
        let table = buffer.as_mut_ptr().cast::<c_void>();
        // SAFETY: as above, for version 2.
        assert_eq!(unsafe { init::<Empty>(abi::ABI_2, table, &mut error) }, abi::STATUS_OK);
        // SAFETY: the plugin filled a version 2 table.
        let filled = unsafe { &*buffer.as_ptr().cast::<PluginTable>() };
        assert_eq!(filled.size, abi::TABLE_SIZE_2);
        assert!(filled.commit.is_some());
        assert_eq!(
            filled.finish.map(|f| f as *const () as usize),
            Some(finish as *const () as usize)
        );

        let mut buffer = host_buffer(abi::ABI_2);
        let table = buffer.as_mut_ptr().cast::<c_void>();
        // SAFETY: as above.
        let status = unsafe { init::<Empty>(3, table, &mut error) };
        assert_eq!(status, abi::STATUS_NOT_IMPLEMENTED);
        // SAFETY: the plugin set `error` with its release function.
        if let Some(release) = error.release {
            unsafe { release(&mut error) };
        }
    }
}
