//! The error protocol of every ABI call: the host passes a zeroed [`FlightlineError`], the
//! plugin fills it on failure, the host copies the message out and releases it.

use super::abi::{self, FlightlineError, Status};
use super::cstr;
use super::error::PluginErrorKind;

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
    // SAFETY: the header: NULL or a NUL-terminated string the plugin owns until `release`.
    let message = unsafe { cstr::read_lossy(error.message) };
    if let Some(release) = error.release {
        unsafe { release(error) };
    }
    *error = FlightlineError::empty();
    message
}
