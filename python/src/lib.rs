//! # flightline-python
//!
//! The native half of the `flightline` Python package (`flightline._native`): the Micromegas
//! client's calls (`query`, `query_stream`, `query_arrow`, `prepare_statement`) and the guide's
//! extras (`analyze_schema`, `validate`, `execute` with processors) running on Flightline's Rust
//! SDK. The Python half (python/flightline/) shapes arguments and results the way Python users
//! expect; everything that waits on the network runs here, without the GIL.
//!
//! | module | concept |
//! |---|---|
//! | `client` | `Client`: connecting, queries, schemas, validation |
//! | `stream` | `BatchStream`: batches one by one, or through `__arrow_c_stream__` |
//! | `read_ahead` | a query's batches read ahead of Python by a task on the runtime |
//! | `execute` | `Client.execute`: the streaming executor, its statistics and progress |
//! | `processor` | built-in processors by name, and processors written in Python |
//! | `errors` | the exception classes and the mapping from the SDK's errors |
//! | `runtime` | the process's tokio runtime, and waiting on it with Ctrl-C honoured |
//! | `convert` | time-range arguments, and results as plain dicts |
//!
//! Build it with `pip install ./python` (maturin, the workspace's dev profile).
#![warn(missing_docs)]

mod client;
mod convert;
mod errors;
mod execute;
mod processor;
mod read_ahead;
mod runtime;
mod stream;

use pyo3::prelude::*;

/// The `flightline._native` module.
#[pymodule]
#[pyo3(name = "_native")]
fn flightline_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<client::Client>()?;
    module.add_class::<stream::BatchStream>()?;
    module.add_function(wrap_pyfunction!(client::connect, module)?)?;
    module.add_function(wrap_pyfunction!(processor_names, module)?)?;
    errors::register(module)?;
    Ok(())
}

/// The names of the built-in processors `execute` accepts.
#[pyfunction]
fn processor_names() -> Vec<&'static str> {
    flightline_plugins::processor_names().to_vec()
}
