//! The exception classes, one per kind of failure a Python caller handles differently, and the
//! mapping from the SDK's [`Error`].

use flightline_core::Error;
use flightline_core::error::Chain;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    flightline,
    FlightlineError,
    PyException,
    "Base class of every error flightline raises."
);
create_exception!(
    flightline,
    QueryError,
    FlightlineError,
    "The query or a request option is wrong (bad SQL, unknown table, bad time range): fix it; \
     retrying will not help."
);
create_exception!(
    flightline,
    TransportError,
    FlightlineError,
    "The server could not be reached, went away, timed out or said it is busy: retrying may help."
);
create_exception!(
    flightline,
    AuthError,
    FlightlineError,
    "The server wants credentials, refused them, or does not allow this caller."
);
create_exception!(
    flightline,
    ProcessorError,
    FlightlineError,
    "A processor failed; `processor`, `stage` and `batch` say which, where and at which batch."
);
create_exception!(
    flightline,
    ValidationError,
    FlightlineError,
    "Validation refused the query; `findings` lists what the validators found."
);
create_exception!(
    flightline,
    ConfigError,
    FlightlineError,
    "An argument is malformed (URI, TLS file, processor options) or the server answered \
     something this client cannot use."
);

/// Registers the exception classes in `module`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("FlightlineError", py.get_type::<FlightlineError>())?;
    module.add("QueryError", py.get_type::<QueryError>())?;
    module.add("TransportError", py.get_type::<TransportError>())?;
    module.add("AuthError", py.get_type::<AuthError>())?;
    module.add("ProcessorError", py.get_type::<ProcessorError>())?;
    module.add("ValidationError", py.get_type::<ValidationError>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    class_defaults(py)
}

/// Attributes every instance has, also when raised without an SDK error behind it (a malformed
/// argument caught before any request): `to_py` overrides them with the error's own values.
fn class_defaults(py: Python<'_>) -> PyResult<()> {
    py.get_type::<FlightlineError>().setattr("retryable", false)?;
    py.get_type::<TransportError>().setattr("retryable", true)?;
    let processor = py.get_type::<ProcessorError>();
    for name in ["processor", "stage", "batch", "reason"] {
        processor.setattr(name, py.None())?;
    }
    py.get_type::<ValidationError>().setattr("findings", pyo3::types::PyTuple::empty(py))?;
    Ok(())
}

/// The Python exception for `err`, its message the whole chain of causes. Failures of a
/// processor and refusals by validation carry their details as attributes.
pub fn to_py(err: Error) -> PyErr {
    let message = Chain(&err).to_string();
    let py_err = match &err {
        Error::InvalidQuery { .. }
        | Error::TimeRange { .. }
        | Error::NotFound { .. }
        | Error::ResourceExhausted { .. }
        | Error::Unimplemented { .. } => QueryError::new_err(message),
        Error::Unauthenticated { .. }
        | Error::CredentialsRefused { .. }
        | Error::PermissionDenied { .. }
        | Error::Oidc { .. } => AuthError::new_err(message),
        Error::Processor { .. } => ProcessorError::new_err(message),
        Error::ValidationDenied { .. } => ValidationError::new_err(message),
        Error::Unavailable { .. }
        | Error::Transport { .. }
        | Error::Timeout { .. }
        | Error::Cancelled { .. }
        | Error::Server { .. } => TransportError::new_err(message),
        _ => ConfigError::new_err(message),
    };
    Python::attach(|py| {
        // Attributes are a convenience: a failure to set them must not hide the error itself.
        let _ = details(py, &py_err, &err);
    });
    py_err
}

fn details(py: Python<'_>, py_err: &PyErr, err: &Error) -> PyResult<()> {
    let value = py_err.value(py);
    value.setattr("retryable", err.is_retryable())?;
    match err {
        Error::Processor { processor, stage, batch, source } => {
            value.setattr("processor", processor)?;
            value.setattr("stage", stage.to_string())?;
            value.setattr("batch", *batch)?;
            value.setattr("reason", source.message())?;
        }
        Error::ValidationDenied { findings } => {
            value.setattr("findings", crate::convert::to_python(py, findings)?)?;
        }
        _ => {}
    }
    Ok(())
}
