//! The process's one tokio runtime, and waiting on it from Python: without the GIL, in slices
//! short enough that Ctrl-C lands within a fraction of a second.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How long Rust waits before it looks at Python's pending signals again.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// The runtime and the process that built it. A forked child inherits the memory of the
/// parent's runtime but none of its threads, so the child builds its own.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The runtime of this process, built on first use (and again in a forked child).
pub fn runtime() -> PyResult<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pid = std::process::id();
    if let Some((owner, runtime)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(runtime.clone());
    }
    if let Some((_, inherited)) = slot.take() {
        // Its worker threads live only in the parent: dropping it here would wait for them.
        std::mem::forget(inherited);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flightline")
        .build()
        .map_err(|err| {
            PyRuntimeError::new_err(format!("cannot start flightline's runtime: {err}"))
        })?;
    let runtime = Arc::new(runtime);
    *slot = Some((pid, runtime.clone()));
    Ok(runtime)
}

/// Runs `future` to completion on the runtime with the GIL released, checking for signals
/// (Ctrl-C) between slices: a pending `KeyboardInterrupt` drops the future, which cancels
/// whatever it was waiting on, and is raised.
pub fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    refuse_inside_runtime()?;
    let runtime = runtime()?;
    let mut signal = None;
    let output = py.detach(|| {
        block_in_slices(&runtime, future, || {
            signal = Python::attach(|py| py.check_signals()).err();
            signal.is_some()
        })
    });
    match (output, signal) {
        (Some(output), _) => Ok(output),
        (None, Some(signal)) => Err(signal),
        (None, None) => Err(PyRuntimeError::new_err("a wait ended without its result")),
    }
}

/// Blocks this (non-runtime) thread on `future`, asking `interrupted` every [`SIGNAL_SLICE`]
/// whether to give up; `None` when it did, and the future is dropped. The GIL is taken only
/// then, never per item, so other Python threads keep running.
pub fn block_in_slices<F: Future>(
    runtime: &Runtime,
    future: F,
    mut interrupted: impl FnMut() -> bool,
) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    loop {
        let polled =
            runtime.block_on(async { tokio::time::timeout(SIGNAL_SLICE, &mut future).await });
        match polled {
            Ok(output) => return Some(output),
            Err(_) if interrupted() => return None,
            Err(_) => {}
        }
    }
}

/// A processor or token provider written in Python runs on a runtime thread: from there a
/// blocking call into flightline would stall the thread it needs.
fn refuse_inside_runtime() -> PyResult<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PyRuntimeError::new_err(
            "flightline was called from code that flightline itself runs (a Python processor or \
             auth_provider): make the call before or after execute(), not inside it",
        ));
    }
    Ok(())
}
