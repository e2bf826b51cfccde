//! One plugin instance on the host side: made by `create`, freed by `destroy`, and the error
//! protocol of every call in between.

use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Arc;

use super::abi::{self, FlightlineError, FlightlineHost, Status};
use super::callbacks::{HostData, host_table};
use super::error::PluginErrorKind;
use super::library::Plugin;
use crate::error::Result;

/// A failed ABI call: its status and the plugin's message.
#[derive(Debug, Clone)]
pub(crate) struct CallError {
    pub(crate) call: &'static str,
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl CallError {
    /// The error kind for calls outside a processor run (create, validate).
    pub(crate) fn into_kind(self) -> PluginErrorKind {
        match self.status {
            abi::STATUS_PANICKED => {
                PluginErrorKind::Panicked { call: self.call, message: self.message }
            }
            _ => PluginErrorKind::CallFailed {
                call: self.call,
                status: abi::status_name(self.status),
                message: self.message,
            },
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == abi::STATUS_PANICKED {
            write!(f, "the plugin panicked in {}: {}", self.call, self.message)
        } else {
            write!(f, "{} failed ({}): {}", self.call, abi::status_name(self.status), self.message)
        }
    }
}

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
        (!message.is_null())
            .then(|| unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned())
    }

    /// Takes a string the plugin returned and frees it with `release_string`.
    ///
    /// # Safety
    /// `ptr` is NULL or a string returned by this plugin's `finish` / `validate`.
    pub(crate) unsafe fn take_string(&self, ptr: *mut c_char) -> Option<String> {
        if ptr.is_null() {
            return None;
        }
        let text = unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned();
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

/// Runs `f` with a zeroed error; maps a non-OK status to [`CallError`] with the plugin's message.
pub(crate) fn call(
    name: &'static str,
    f: impl FnOnce(*mut FlightlineError) -> Status,
) -> Result<(), CallError> {
    let mut error = FlightlineError::empty();
    let status = f(&mut error);
    // SAFETY: the plugin filled `error` per the header, or left it zeroed.
    let message = unsafe { take_error(&mut error) };
    if status == abi::STATUS_OK {
        return Ok(());
    }
    Err(CallError { call: name, status, message: message.unwrap_or_default() })
}

/// Copies the message out of `error` and releases it.
///
/// # Safety
/// `error` was zeroed before the call and filled per the header.
pub(crate) unsafe fn take_error(error: &mut FlightlineError) -> Option<String> {
    let message = (!error.message.is_null())
        .then(|| unsafe { CStr::from_ptr(error.message) }.to_string_lossy().into_owned());
    if let Some(release) = error.release {
        unsafe { release(error) };
    }
    *error = FlightlineError::empty();
    message
}
