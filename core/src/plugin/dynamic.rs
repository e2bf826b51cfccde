//! A plugin instance as an ordinary [`BatchProcessor`] or [`QueryValidator`], so the executor,
//! the runner and validation pipelines cannot tell static from dynamic.
//!
//! Plugin calls are blocking C calls. On a tokio runtime they run on the blocking pool
//! (`spawn_blocking`), never on a worker thread; the caller's tracing subscriber and span are
//! carried to that thread, so the plugin's log lines land where the caller's would. Outside a
//! runtime (e.g. `futures::executor::block_on`) they run inline. One call at a time per instance:
//! the instance sits behind a mutex, which also holds if a cancelled call is still running.

use std::ffi::CString;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};

use super::context::OwnedContext;
use super::error::PluginErrorKind;
use super::instance::{CallError, Instance};
use super::library::Plugin;
use crate::error::Result;
use crate::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use crate::validate::{Finding, QueryValidator, Severity, ValidationContext};

type Shared = Arc<Mutex<Instance>>;

/// Runs `work` on the instance, on the blocking pool when there is a runtime.
async fn run<T: Send + 'static>(
    instance: &Shared,
    work: impl FnOnce(&mut Instance) -> T + Send + 'static,
) -> std::result::Result<T, ProcessError> {
    let instance = instance.clone();
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let span = tracing::Span::current();
    let job = move || {
        tracing::dispatcher::with_default(&dispatch, || {
            span.in_scope(|| {
                let mut guard = instance.lock().unwrap_or_else(PoisonError::into_inner);
                work(&mut guard)
            })
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(job)
            .await
            .map_err(|e| ProcessError::new(format!("the plugin call did not complete: {e}"))),
        Err(_) => Ok(job()),
    }
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
        let (mut ffi_array, ffi_schema) = arrow::ffi::to_ffi(&array)?;
        let ctx = OwnedContext::new(ctx);
        let result = run(&self.instance, move |instance| {
            let process = instance.plugin().table.process;
            let result = instance.call("process", |ptr, error| match process {
                // SAFETY: as in `open`; the plugin may move `ffi_array` out (release set to NULL).
                Some(process) => unsafe {
                    process(
                        ptr,
                        &mut ffi_array as *mut FFI_ArrowArray,
                        &ffi_schema,
                        ctx.as_ptr(),
                        error,
                    )
                },
                None => super::abi::STATUS_NOT_IMPLEMENTED,
            });
            drop(ffi_array); // releases the batch unless the plugin took it
            result
        })
        .await?;
        result.map_err(|e| process_error(&self.plugin, e))
    }

    async fn finish(&mut self, ctx: &ProcessContext) -> std::result::Result<Report, ProcessError> {
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

    async fn abort(&mut self) {
        let _ = run(&self.instance, |instance| {
            if let Some(abort) = instance.plugin().table.abort {
                // SAFETY: the instance is alive; abort takes nothing else.
                unsafe { abort(instance.ptr()) };
            }
        })
        .await;
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
