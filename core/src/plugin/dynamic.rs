//! A plugin instance as an ordinary [`BatchProcessor`] or [`QueryValidator`], so the executor,
//! the runner and validation pipelines cannot tell static from dynamic.
//!
//! Plugin calls are blocking C calls, never made on a runtime worker thread. A processor says
//! so ([`BatchProcessor::blocking`]), and the executor gives it a thread of its own, where its
//! calls run inline. Elsewhere on a tokio runtime they run on the blocking pool
//! (`spawn_blocking`): the caller's tracing subscriber and span are carried to that thread, so
//! the plugin's log lines land where the caller's would. Outside a runtime (e.g.
//! `futures::executor::block_on`) they run inline. One call at a time per instance:
//! the instance sits behind a mutex, which also holds if a cancelled call is still running.
//! Only `abort` does not wait for ever on it: a call that never returns must not hold up a
//! cancelled run (and a shutdown) with it. (In the executor, `abort` comes from the instance's
//! own thread once its call returned, and the executor bounds the wait for that thread.)

use std::ffi::CString;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};

use super::call::CallError;
use super::context::OwnedContext;
use super::error::PluginErrorKind;
use super::instance::Instance;
use super::library::Plugin;
use crate::error::Result;
use crate::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use crate::validate::{Finding, QueryValidator, Severity, ValidationContext};

type Shared = Arc<Mutex<Instance>>;

/// How long `abort` waits for a call still running on the instance (a cancelled `process`
/// that has not returned) before giving up: a plugin blocked for good (I/O without a
/// timeout) must not block the shutdown too. Below the executor's own abort deadline.
const ABORT_WAIT: Duration = Duration::from_secs(2);

/// Runs `work` on the instance, on the blocking pool when there is a runtime.
async fn run<T: Send + 'static>(
    instance: &Shared,
    work: impl FnOnce(&mut Instance) -> T + Send + 'static,
) -> std::result::Result<T, ProcessError> {
    let instance = instance.clone();
    blocking(move || {
        let mut guard = instance.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut guard)
    })
    .await
}

/// Runs `work` on the instance once the call running on it (if any) returns, waiting at most
/// `wait`; `None` when that call is still running.
async fn run_when_idle<T: Send + 'static>(
    instance: &Shared,
    wait: Duration,
    work: impl FnOnce(&mut Instance) -> T + Send + 'static,
) -> std::result::Result<Option<T>, ProcessError> {
    let instance = instance.clone();
    blocking(move || lock_within(&instance, wait).map(|mut guard| work(&mut guard))).await
}

/// The instance's lock, polled until `wait` has passed: a blocked call holds it forever, and a
/// thread waiting on it for ever would be one more thing a shutdown cannot get past.
fn lock_within(instance: &Mutex<Instance>, wait: Duration) -> Option<MutexGuard<'_, Instance>> {
    let deadline = Instant::now() + wait;
    loop {
        match instance.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// Runs a blocking plugin call on the blocking pool when there is a runtime, under the
/// caller's tracing subscriber and span; inline on a processor's own thread or without a
/// runtime.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, ProcessError> {
    if crate::exec::on_own_thread() {
        return Ok(call());
    }
    let job = crate::exec::in_callers_trace(call);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(job)
            .await
            .map_err(|e| ProcessError::new(format!("the plugin call did not complete: {e}"))),
        Err(_) => Ok(job()),
    }
}

/// Whether batches of `b` can reuse the type exported for `a`: the same `Arc` for every batch
/// of one result, equal fields otherwise.
fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    Arc::ptr_eq(a, b) || a.fields() == b.fields()
}

fn process_error(plugin: &Plugin, e: CallError) -> ProcessError {
    ProcessError::new(format!("plugin {:?} ({}): {e}", plugin.name(), plugin.path().display()))
}

/// A processor plugin instance, made by [`Plugin::processor`].
#[derive(Debug)]
pub struct DynamicProcessor {
    name: String,
    plugin: Arc<Plugin>,
    instance: Shared,
    /// `finish` was called: a version 1 plugin must then get no `abort` (its header says so).
    finished: bool,
    /// The batches' type as exported for the last `process`, kept for the next batch of the
    /// same schema: a result's batches share one, and exporting it allocated per batch.
    exported: Option<(SchemaRef, FFI_ArrowSchema)>,
}

impl Plugin {
    /// Makes a processor instance with `options` (the job config's `options` table as JSON).
    /// Refused options give [`PluginErrorKind::OptionsRefused`] with the plugin's message.
    pub fn processor(self: &Arc<Self>, options: &serde_json::Value) -> Result<DynamicProcessor> {
        if !self.kind().processor {
            let actual = self.kind().to_string();
            return Err(self.error(PluginErrorKind::WrongKind { wanted: "processor", actual }));
        }
        let instance = Instance::create(self.clone(), options)?;
        Ok(DynamicProcessor {
            name: self.name().to_string(),
            plugin: self.clone(),
            instance: Arc::new(Mutex::new(instance)),
            finished: false,
            exported: None,
        })
    }

    /// Makes a validator instance with `options`.
    pub fn validator(self: &Arc<Self>, options: &serde_json::Value) -> Result<DynamicValidator> {
        if !self.kind().validator {
            let actual = self.kind().to_string();
            return Err(self.error(PluginErrorKind::WrongKind { wanted: "validator", actual }));
        }
        let instance = Instance::create(self.clone(), options)?;
        Ok(DynamicValidator {
            name: self.name().to_string(),
            plugin: self.clone(),
            instance: Arc::new(Mutex::new(instance)),
        })
    }
}

impl DynamicProcessor {
    /// The plugin this instance was made from.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }
}

#[async_trait]
impl BatchProcessor for DynamicProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    /// Yes: each call is a C call that holds its thread until it returns.
    fn blocking(&self) -> bool {
        true
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        ctx: &ProcessContext,
    ) -> std::result::Result<(), ProcessError> {
        let ffi_schema = FFI_ArrowSchema::try_from(schema.as_ref())?;
        let job = ctx.job.clone();
        let ctx = OwnedContext::new(ctx);
        let result = run(&self.instance, move |instance| {
            instance.host_data().set_job(&job);
            let open = instance.plugin().table.open;
            instance.call("open", |ptr, error| match open {
                // SAFETY: every pointer is valid for the call, as the header requires.
                Some(open) => unsafe { open(ptr, &ffi_schema, ctx.as_ptr(), error) },
                None => super::abi::STATUS_NOT_IMPLEMENTED,
            })
        })
        .await?;
        result.map_err(|e| process_error(&self.plugin, e))
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> std::result::Result<(), ProcessError> {
        // Zero-copy: the C structs point at the batch's buffers; the Arcs they hold keep them
        // alive however long the plugin keeps the batch.
        let array = StructArray::from(batch.clone()).into_data();
        let mut ffi_array = FFI_ArrowArray::new(&array);
        let exported = match self.exported.take() {
            Some((schema, ffi)) if same_schema(&schema, batch.schema_ref()) => (schema, ffi),
            _ => (batch.schema(), FFI_ArrowSchema::try_from(array.data_type())?),
        };
        let ctx = OwnedContext::new(ctx);
        let (result, exported) = run(&self.instance, move |instance| {
            let ffi_schema = &exported.1;
            let process = instance.plugin().table.process;
            let result = instance.call("process", |ptr, error| match process {
                // SAFETY: as in `open`; the plugin may move `ffi_array` out (release set to NULL).
                Some(process) => unsafe {
                    process(
                        ptr,
                        &mut ffi_array as *mut FFI_ArrowArray,
                        ffi_schema,
                        ctx.as_ptr(),
                        error,
                    )
                },
                None => super::abi::STATUS_NOT_IMPLEMENTED,
            });
            drop(ffi_array); // releases the batch unless the plugin took it
            (result, exported)
        })
        .await?;
        self.exported = Some(exported);
        result.map_err(|e| process_error(&self.plugin, e))
    }

    async fn finish(&mut self, ctx: &ProcessContext) -> std::result::Result<Report, ProcessError> {
        self.finished = true;
        let ctx = OwnedContext::new(ctx);
        let result = run(&self.instance, move |instance| {
            let finish = instance.plugin().table.finish;
            let mut out = std::ptr::null_mut();
            let result = instance.call("finish", |ptr, error| match finish {
                // SAFETY: as in `open`.
                Some(finish) => unsafe { finish(ptr, ctx.as_ptr(), &mut out, error) },
                None => super::abi::STATUS_NOT_IMPLEMENTED,
            });
            // SAFETY: `out` is NULL or the plugin's string, released exactly once here.
            let text = unsafe { instance.take_string(out) };
            result.map(|()| text)
        })
        .await?;
        let text = result.map_err(|e| process_error(&self.plugin, e))?;
        let text = text.unwrap_or_else(|| "{}".into());
        serde_json::from_str(&text).map_err(|e| {
            ProcessError::new(format!(
                "plugin {:?}: finish returned an unreadable report: {e}",
                self.name
            ))
        })
    }

    /// Calls the plugin's `commit` (ABI 2). A version 1 plugin, or one without `commit`,
    /// published in `finish` already.
    async fn commit(&mut self) -> std::result::Result<(), ProcessError> {
        if self.plugin.abi_version() < super::abi::ABI_2 {
            return Ok(());
        }
        let result = run(&self.instance, |instance| {
            let commit = instance.plugin().table.commit;
            instance.call("commit", |ptr, error| match commit {
                // SAFETY: the instance is alive and `error` is the zeroed error `call` gives.
                Some(commit) => unsafe { commit(ptr, error) },
                None => super::abi::STATUS_OK,
            })
        })
        .await?;
        result.map_err(|e| process_error(&self.plugin, e))
    }

    /// Calls the plugin's `abort` once no call is running on the instance. A cancelled call
    /// that does not return within `ABORT_WAIT` (2 s) is abandoned with the instance (destroyed
    /// if that call ever returns): `abort` is then skipped, as the header allows one call at a
    /// time only.
    async fn abort(&mut self) {
        if self.finished && self.plugin.abi_version() < super::abi::ABI_2 {
            // Version 1 published in `finish`: there is nothing it could take back.
            return;
        }
        let aborted = run_when_idle(&self.instance, ABORT_WAIT, |instance| {
            if let Some(abort) = instance.plugin().table.abort {
                // SAFETY: the instance is alive; abort takes nothing else.
                unsafe { abort(instance.ptr()) };
            }
        })
        .await;
        if let Ok(None) = aborted {
            tracing::warn!(
                plugin = %self.name,
                path = %self.plugin.path().display(),
                waited = ?ABORT_WAIT,
                "a cancelled call of the plugin is still running: abort skipped, the instance \
                 is abandoned; partial output may remain"
            );
        }
    }
}

/// A validator plugin instance, made by [`Plugin::validator`].
///
/// A plugin that fails to validate (an error status, a panic, unreadable findings) gives one
/// `Warn` finding `plugin_error` with the plugin's message rather than blocking every query.
#[derive(Debug)]
pub struct DynamicValidator {
    name: String,
    plugin: Arc<Plugin>,
    instance: Shared,
}

#[async_trait]
impl QueryValidator for DynamicValidator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        match self.findings(ctx).await {
            Ok(findings) => findings,
            Err(message) => vec![Finding::new(
                Severity::Warn,
                "plugin_error",
                format!("validator plugin {:?} failed: {message}", self.name),
                format!("check the plugin {}", self.plugin.path().display()),
            )],
        }
    }
}

impl DynamicValidator {
    async fn findings(&self, ctx: &ValidationContext) -> std::result::Result<Vec<Finding>, String> {
        let sql =
            CString::new(ctx.sql()).map_err(|_| "the SQL contains a NUL character".to_string())?;
        let schema = match ctx.schema() {
            Some(analysis) => {
                let fields = analysis.columns.iter().map(|c| {
                    arrow::datatypes::Field::new(&c.name, c.data_type.clone(), c.nullable)
                });
                Some(
                    FFI_ArrowSchema::try_from(Schema::new(fields.collect::<Vec<_>>()))
                        .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        let result = run(&self.instance, move |instance| {
            let validate = instance.plugin().table.validate;
            let mut out = std::ptr::null_mut();
            let schema_ptr =
                schema.as_ref().map_or(std::ptr::null(), |s| s as *const FFI_ArrowSchema);
            let result = instance.call("validate", |ptr, error| match validate {
                // SAFETY: as in `open`; `schema_ptr` is NULL or valid for the call.
                Some(validate) => unsafe {
                    validate(ptr, sql.as_ptr(), schema_ptr, &mut out, error)
                },
                None => super::abi::STATUS_NOT_IMPLEMENTED,
            });
            let text = unsafe { instance.take_string(out) };
            result.map(|()| text)
        })
        .await
        .map_err(|e| e.to_string())?;
        let text = result.map_err(|e| e.to_string())?.unwrap_or_else(|| "[]".into());
        serde_json::from_str(&text).map_err(|e| format!("unreadable findings {text:?}: {e}"))
    }
}
