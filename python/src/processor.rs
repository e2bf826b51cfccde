//! The processors of `execute`: built-ins by name (run in Rust, without the GIL) and Python
//! objects with `open(schema)`, `process(batch)` and `finish()` (called with the GIL, each
//! batch handed over without a copy).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::convert::from_python;
use crate::errors::ConfigError;

/// Builds every processor of `specs`, each one of: a built-in's name (`"count_by"`), a
/// `(name, options)` pair, a dict `{"name": ..., "options": {...}}`, or a Python object with a
/// `process` method.
pub fn build_all(specs: &[Bound<'_, PyAny>]) -> PyResult<Vec<Box<dyn BatchProcessor>>> {
    specs.iter().map(build).collect()
}

fn build(spec: &Bound<'_, PyAny>) -> PyResult<Box<dyn BatchProcessor>> {
    if let Ok(name) = spec.cast::<PyString>() {
        return builtin(&name.to_string_lossy(), serde_json::Value::Null);
    }
    if let Ok(pair) = spec.cast::<PyTuple>()
        && pair.len() == 2
        && let Ok(name) = pair.get_item(0)?.extract::<String>()
    {
        return builtin(&name, from_python(&pair.get_item(1)?)?);
    }
    if let Ok(dict) = spec.cast::<PyDict>() {
        let name: String = dict
            .get_item("name")?
            .ok_or_else(|| ConfigError::new_err("a processor dict needs a \"name\""))?
            .extract()?;
        let options = match dict.get_item("options")? {
            Some(options) => from_python(&options)?,
            None => serde_json::Value::Null,
        };
        return builtin(&name, options);
    }
    if spec.hasattr("process")? {
        return Ok(Box::new(PythonProcessor::new(spec)?));
    }
    Err(ConfigError::new_err(format!(
        "{} is not a processor: pass a built-in's name ({}), a (name, options) pair, or an \
         object with open(schema), process(batch) and finish() methods",
        spec.repr()?,
        flightline_plugins::processor_names().join(", ")
    )))
}

fn builtin(name: &str, options: serde_json::Value) -> PyResult<Box<dyn BatchProcessor>> {
    flightline_plugins::build_processor(name, options)
        .map_err(|err| ConfigError::new_err(err.to_string()))
}

/// A processor written in Python.
struct PythonProcessor {
    name: String,
    object: Arc<Py<PyAny>>,
}

impl PythonProcessor {
    /// Named by the object's `name` attribute when it has one, else by its class.
    fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name = match object.getattr("name") {
            Ok(name) => name.str()?.to_string(),
            Err(_) => object.get_type().name()?.to_string(),
        };
        Ok(Self { name, object: Arc::new(object.clone().unbind()) })
    }

    /// Calls `method` on a blocking thread (Python code may block), with the GIL.
    async fn call<T, F>(&self, method: F) -> Result<T, ProcessError>
    where
        T: Send + 'static,
        F: FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T> + Send + 'static,
    {
        let object = self.object.clone();
        let called = tokio::task::spawn_blocking(move || {
            Python::attach(|py| method(py, object.bind(py)).map_err(|err| describe(py, err)))
        })
        .await;
        match called {
            Ok(result) => result.map_err(ProcessError::new),
            Err(err) => Err(ProcessError::new(format!("the Python call did not return: {err}"))),
        }
    }
}

/// An exception as `Type: message`, the way Python prints its last line.
fn describe(py: Python<'_>, err: PyErr) -> String {
    let kind =
        err.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    format!("{kind}: {}", err.value(py))
}

#[async_trait]
impl BatchProcessor for PythonProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let schema = schema.clone();
        self.call(move |py, object| {
            if object.hasattr("open")? {
                object.call_method1("open", (schema.as_ref().to_pyarrow(py)?,))?;
            }
            Ok(())
        })
        .await
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let batch = batch.clone();
        self.call(move |py, object| {
            object.call_method1("process", (batch.to_pyarrow(py)?,))?;
            Ok(())
        })
        .await
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let value = self
            .call(|_, object| {
                if !object.hasattr("finish")? {
                    return Ok(serde_json::Value::Null);
                }
                from_python(&object.call_method0("finish")?)
            })
            .await?;
        report(value)
    }
}

/// What `finish()` returned as a report: `None` (nothing to say), a dict of counts
/// (`{"errors": 3}`), or a dict in the shape of a report (`counts`, `tables`, `files`, `notes`).
fn report(value: serde_json::Value) -> Result<Report, ProcessError> {
    const KEYS: [&str; 4] = ["counts", "tables", "files", "notes"];
    match &value {
        serde_json::Value::Null => Ok(Report::default()),
        serde_json::Value::Object(map) if map.keys().all(|k| KEYS.contains(&k.as_str())) => {
            serde_json::from_value(value.clone()).map_err(|err| invalid_report(&value, &err))
        }
        serde_json::Value::Object(_) => serde_json::from_value(value.clone())
            .map(|counts| Report { counts, ..Report::default() })
            .map_err(|err| invalid_report(&value, &err)),
        _ => Err(invalid_report(&value, &"not a dict")),
    }
}

fn invalid_report(value: &serde_json::Value, why: &dyn std::fmt::Display) -> ProcessError {
    ProcessError::new(format!(
        "finish() returned {value}, which is not a report ({why}): return None, a dict of \
         non-negative integer counts, or a dict with counts, tables, files and notes"
    ))
}
