//! One plugin instance on the host side: made by `create`, freed by `destroy`; every call in
//! between goes through [`super::call`].

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use super::abi::{self, FlightlineError, FlightlineHost, Status};
use super::call::{CallError, call};
use super::callbacks::{HostData, host_table};
use super::cstr;
use super::error::PluginErrorKind;
use super::library::Plugin;
use crate::error::Result;

/// A live instance. Dropping it calls `destroy`.
///
/// `Send` because the header requires instances to accept calls from any thread, one at a time;
/// every call takes `&mut self`, so Rust enforces "one at a time".
#[derive(Debug)]
pub(crate) struct Instance {
    plugin: Arc<Plugin>,
    ptr: *mut c_void,
    // Both outlive `ptr`: the plugin may keep the host pointer until `destroy`.
    _host: Box<FlightlineHost>,
    data: Box<HostData>,
}

// SAFETY: see the type's doc; the host table and data are only read by callbacks.
unsafe impl Send for Instance {}

impl Instance {
    /// Calls `create` with `options` as JSON.
    pub(crate) fn create(plugin: Arc<Plugin>, options: &serde_json::Value) -> Result<Self> {
        let json = CString::new(options.to_string()).map_err(|_| {
            plugin.error(PluginErrorKind::OptionsRefused {
                message: "the options contain a NUL character".into(),
            })
        })?;
        let data = HostData::new(plugin.name());
        let host = host_table(&data);
        let create = plugin.table.create.ok_or_else(|| missing(&plugin, "create"))?;
        let mut ptr = std::ptr::null_mut();
        let result =
            call("create", |error| unsafe { create(json.as_ptr(), &*host, &mut ptr, error) });
        match result {
            Ok(()) if !ptr.is_null() => Ok(Self { plugin, ptr, _host: host, data }),
            Ok(()) => Err(plugin.error(PluginErrorKind::CallFailed {
                call: "create",
                status: "OK",
                message: "create returned OK without an instance".into(),
            })),
            Err(e) if e.status == abi::STATUS_INVALID_ARGUMENT => {
                Err(plugin.error(PluginErrorKind::OptionsRefused { message: e.message }))
            }
            Err(e) => Err(plugin.error(e.into_kind())),
        }
    }

    pub(crate) fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub(crate) fn ptr(&self) -> *mut c_void {
        self.ptr
    }

    pub(crate) fn host_data(&self) -> &HostData {
        &self.data
    }

    /// Runs one ABI call on this instance; a failure without a message falls back to
    /// `last_error`.
    pub(crate) fn call(
        &mut self,
        name: &'static str,
        f: impl FnOnce(*mut c_void, *mut FlightlineError) -> Status,
    ) -> Result<(), CallError> {
        let ptr = self.ptr;
        call(name, |error| f(ptr, error)).map_err(|mut e| {
            if e.message.is_empty() {
                e.message =
                    self.last_error().unwrap_or_else(|| "the plugin gave no message".into());
            }
            e
        })
    }

    fn last_error(&self) -> Option<String> {
        let last_error = self.plugin.table.last_error?;
        // SAFETY: the header: NULL or a string owned by the instance, valid until the next call.
        let message = unsafe { last_error(self.ptr) };
        // SAFETY: as above.
        unsafe { cstr::read_lossy(message) }
    }

    /// Takes a string the plugin returned and frees it with `release_string`.
    ///
    /// # Safety
    /// `ptr` is NULL or a string returned by this plugin's `finish` / `validate`.
    pub(crate) unsafe fn take_string(&self, ptr: *mut c_char) -> Option<String> {
        // SAFETY: the caller's promise.
        let text = unsafe { cstr::read_lossy(ptr) }?;
        if let Some(release) = self.plugin.table.release_string {
            unsafe { release(ptr) };
        }
        Some(text)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(destroy) = self.plugin.table.destroy {
            // SAFETY: `ptr` came from `create` and is destroyed exactly once, here.
            unsafe { destroy(self.ptr) };
        }
    }
}

fn missing(plugin: &Plugin, function: &str) -> crate::Error {
    plugin.error(PluginErrorKind::BadTable {
        version: plugin.abi_version(),
        message: format!("`{function}` is NULL"),
    })
}
