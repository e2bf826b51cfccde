//! `BatchStream`: a query's record batches, read one at a time from Python (`for batch in
//! stream`) or handed whole to any Arrow consumer through the C stream interface
//! (`__arrow_c_stream__`). Either way a batch's buffers are the ones Rust received: nothing is
//! copied.

use std::sync::{Arc, Mutex, TryLockError};

use arrow::array::{Array, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use flightline_core::QueryStream;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::errors::{ConfigError, to_py};
use crate::read_ahead::ReadAhead;
use crate::runtime::{block_in_slices, runtime, wait};

/// The record batches of one query, in arrival order.
#[pyclass(module = "flightline._native")]
pub struct BatchStream {
    schema: SchemaRef,
    /// `None` once the stream ended or was handed to a consumer.
    inner: Mutex<Option<ReadAhead>>,
    /// The last batch handed out, for `_buffer_addresses` (an Arc per column: nothing is
    /// copied, and it is freed when the next batch replaces it).
    last: Mutex<Option<RecordBatch>>,
    /// Cancelled by `close()`: ends a wait in `__next__` on another thread (an asyncio
    /// worker's, when its task was cancelled), which holds `inner` meanwhile.
    closed: CancellationToken,
    /// The process that started the query: its connection does not survive a fork.
    pid: u32,
}

impl BatchStream {
    /// Starts reading `stream` ahead; its schema comes from the server's answer.
    pub fn new(stream: QueryStream) -> PyResult<Self> {
        let schema =
            stream.schema().cloned().unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        let batches = ReadAhead::spawn(&*runtime()?, stream);
        Ok(Self {
            schema,
            inner: Mutex::new(Some(batches)),
            last: Mutex::new(None),
            closed: CancellationToken::new(),
            pid: std::process::id(),
        })
    }

    /// Refuses a stream started before the process forked: its connection stayed in the parent.
    fn check_process(&self) -> PyResult<()> {
        if self.pid != std::process::id() {
            return Err(ConfigError::new_err(
                "this stream was started before the process forked; call flightline.connect \
                 again in the child and run the query there",
            ));
        }
        Ok(())
    }
}

#[pymethods]
impl BatchStream {
    /// The schema of the batches, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.schema.as_ref().to_pyarrow(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next batch as a `pyarrow.RecordBatch`; waits without the GIL, and Ctrl-C interrupts
    /// the wait (the stream stays usable).
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.check_process()?;
        let mut guard = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "this stream is being read by another thread; read each stream from one \
                     thread at a time",
                ));
            }
        };
        let Some(stream) = guard.as_mut() else {
            return Err(PyStopIteration::new_err(()));
        };
        let closed = self.closed.clone();
        let next = wait(py, async {
            tokio::select! {
                // A closed stream yields nothing more, even when a batch is ready too.
                biased;
                () = closed.cancelled() => None,
                item = stream.recv() => item,
            }
        })?;
        match next {
            Some(Ok(batch)) => {
                let converted = batch.to_pyarrow(py);
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(batch);
                converted
            }
            Some(Err(err)) => {
                *guard = None;
                Err(to_py(err))
            }
            None => {
                *guard = None;
                Err(PyStopIteration::new_err(()))
            }
        }
    }

    /// The Arrow PyCapsule stream interface: hands the rest of the stream to the consumer
    /// (pyarrow, polars, DuckDB), which then reads it directly from Rust. The stream can be
    /// handed out once.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The schema is the server's; a consumer that wanted another one casts it itself.
        let _ = requested_schema;
        self.check_process()?;
        let stream =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).take().ok_or_else(|| {
                PyRuntimeError::new_err("this stream was already read to its end or handed out")
            })?;
        let reader = BlockingReader { schema: self.schema.clone(), stream, runtime: runtime()? };
        let ffi = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, ffi, c"arrow_array_stream")
    }

    /// Stops the query: the server is told to stop sending, a read waiting on another thread
    /// ends, and the stream yields no more batches. Closing twice is harmless.
    fn close(&self) {
        self.closed.cancel();
        if let Ok(mut guard) = self.inner.try_lock() {
            *guard = None;
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Leaving a `with` block closes the stream.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    /// For tests and diagnostics: the addresses of the data buffers of the last batch
    /// `__next__` returned, one list per column, as Rust holds them. A consumer's buffers at
    /// the same addresses show that nothing was copied.
    fn _buffer_addresses(&self) -> Vec<Vec<usize>> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or_else(Vec::new, buffer_addresses)
    }
}

fn buffer_addresses(batch: &RecordBatch) -> Vec<Vec<usize>> {
    batch
        .columns()
        .iter()
        .map(|column| column.to_data().buffers().iter().map(|b| b.as_ptr() as usize).collect())
        .collect()
}

/// The stream as a synchronous reader, for consumers on the other side of the C interface.
/// They call it without the GIL from their own threads, never from the runtime's.
struct BlockingReader {
    schema: SchemaRef,
    stream: ReadAhead,
    runtime: Arc<Runtime>,
}

impl Iterator for BlockingReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Some(Err(ArrowError::ExternalError(
                "a flightline stream cannot be read from flightline's own threads".into(),
            )));
        }
        let interrupted = || Python::attach(|py| py.check_signals()).is_err();
        match block_in_slices(&self.runtime, self.stream.recv(), interrupted) {
            Some(item) => item.map(|r| r.map_err(|e| ArrowError::ExternalError(Box::new(e)))),
            None => {
                // Ctrl-C. An error would become the consumer's own exception, and pyarrow
                // fails (SystemError) when it finds the KeyboardInterrupt already set while it
                // builds it. So the stream ends here and the signal is pending again: Python
                // raises KeyboardInterrupt as soon as the consumer returns, before its
                // (partial) result can be used.
                // SAFETY: PyErr_SetInterrupt only marks SIGINT as tripped; it is
                // async-signal-safe and needs no GIL.
                unsafe { pyo3::ffi::PyErr_SetInterrupt() };
                None
            }
        }
    }
}

impl RecordBatchReader for BlockingReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
