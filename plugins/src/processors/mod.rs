//! Built-in batch processors, each built by name from serde options so that the runner can
//! make them from a configuration file:
//!
//! | name | what it does |
//! |---|---|
//! | `count_by` | rows with `column <= threshold`, counted per group of columns (the guide's `process_error_logs`) |
//! | `aggregate` | group by columns with count / sum / min / max / mean of value columns |
//! | `parquet_sink`, `csv_sink`, `ndjson_sink` | write the result to a file atomically (temporary file, fsync, rename on finish) |
//! | `postgres_sink` | write the result into a PostgreSQL table, replacing the window's earlier rows in one transaction |
//! | `prometheus_gauges` | result rows become gauge samples, in the manner of sql_exporter |
//! | `print` | the first N rows as a table |
//!
//! Options are checked strictly: an unknown or misspelt option is an error naming the
//! processor and the option.
//!
//! ```
//! use flightline_plugins::processors::build_processor;
//!
//! let processor = build_processor(
//!     "count_by",
//!     serde_json::json!({ "column": "level", "threshold": 2, "group_by": ["level", "target"] }),
//! )
//! .unwrap();
//! assert_eq!(processor.name(), "count_by");
//!
//! let err = build_processor("count_by", serde_json::json!({ "treshold": 2 })).err().unwrap();
//! assert!(err.to_string().contains("treshold"), "{err}");
//! ```

mod aggregate;
mod cells;
mod count_by;
mod csv_sink;
mod grouping;
mod json_array;
mod ndjson_sink;
mod parquet_sink;
mod postgres_sink;
mod print;
mod prometheus_gauges;
mod sink;
mod table;
mod write_sink;

use flightline_core::process::BatchProcessor;
use serde::de::DeserializeOwned;

pub use aggregate::{Aggregate, AggregateFunction, AggregateOptions};
pub use count_by::{CountBy, CountByOptions};
pub use csv_sink::{CsvFormat, CsvSink, CsvSinkOptions};
pub use json_array::JsonArrayFormat;
pub use ndjson_sink::{NdjsonFormat, NdjsonSink, NdjsonSinkOptions};
pub use parquet_sink::{ParquetCompression, ParquetFormat, ParquetSink, ParquetSinkOptions};
pub use postgres_sink::{KEY_COLUMNS, PostgresSink, PostgresSinkOptions, column_types};
pub use print::{Print, PrintOptions};
pub use prometheus_gauges::{PrometheusGauges, PrometheusGaugesOptions};
pub use sink::{FileSink, PathTemplate, SinkFormat, SinkOutput, sink_path};
pub use table::{TableFormat, TableWriter};
pub use write_sink::WriteSink;

use crate::error::PluginsError;

const NAMES: &[&str] = &[
    "count_by",
    "aggregate",
    "parquet_sink",
    "csv_sink",
    "ndjson_sink",
    "postgres_sink",
    "prometheus_gauges",
    "print",
];

/// The names [`build_processor`] accepts.
pub fn processor_names() -> &'static [&'static str] {
    NAMES
}

/// Builds the built-in processor `name` from its options (a JSON object; `null` means all
/// defaults). Errors name the processor and the bad option.
pub fn build_processor(
    name: &str,
    options: serde_json::Value,
) -> Result<Box<dyn BatchProcessor>, PluginsError> {
    Ok(match name {
        "count_by" => Box::new(CountBy::new(parse(name, options)?)?),
        "aggregate" => Box::new(Aggregate::new(parse(name, options)?)?),
        "parquet_sink" => Box::new(ParquetSink::new(parse(name, options)?)?),
        "csv_sink" => Box::new(CsvSink::new(parse(name, options)?)?),
        "ndjson_sink" => Box::new(NdjsonSink::new(parse(name, options)?)?),
        "postgres_sink" => Box::new(PostgresSink::new(parse(name, options)?)?),
        "prometheus_gauges" => Box::new(PrometheusGauges::new(parse(name, options)?)?),
        "print" => Box::new(Print::new(parse(name, options)?)),
        _ => {
            return Err(PluginsError::UnknownProcessor {
                name: name.to_string(),
                known: NAMES.iter().map(|n| n.to_string()).collect(),
            });
        }
    })
}

/// Deserialises `options` for `processor`, naming it and the bad option in the error.
fn parse<T: DeserializeOwned>(
    processor: &str,
    options: serde_json::Value,
) -> Result<T, PluginsError> {
    let options = match options {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value::<T>(options.clone()).map_err(|err| {
        let message = match culprit::<T>(&options, &err) {
            Some(key) if !err.to_string().contains(&format!("`{key}`")) => {
                format!("invalid option `{key}`: {err}")
            }
            _ => format!("invalid options: {err}"),
        };
        options_error(processor, message)
    })
}

/// The option a type error is about: serde_json names unknown and missing fields but not the
/// field of a wrong type, so each key is left out in turn until the error changes.
fn culprit<T: DeserializeOwned>(
    options: &serde_json::Value,
    err: &serde_json::Error,
) -> Option<String> {
    let object = options.as_object()?;
    let original = err.to_string();
    object.keys().find_map(|key| {
        let mut without = object.clone();
        without.remove(key);
        match serde_json::from_value::<T>(serde_json::Value::Object(without)) {
            Err(other) if other.to_string() == original => None,
            _ => Some(key.clone()),
        }
    })
}

/// An options error of `processor`.
fn options_error(processor: &str, message: impl Into<String>) -> PluginsError {
    PluginsError::Options { processor: processor.to_string(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_with_minimal_options_and_unknown_names_are_refused() {
        for name in processor_names() {
            let options = match *name {
                "parquet_sink" | "csv_sink" | "ndjson_sink" => {
                    serde_json::json!({ "path": "/tmp/flightline-unused-{job}.out" })
                }
                "prometheus_gauges" => serde_json::json!({ "metric": "m", "values": ["v"] }),
                "postgres_sink" => {
                    serde_json::json!({ "url": "postgres://u@127.0.0.1:1/db", "table": "t" })
                }
                _ => serde_json::Value::Null,
            };
            let processor = build_processor(name, options).unwrap();
            assert_eq!(processor.name(), *name);
        }
        let err = build_processor("cont_by", serde_json::Value::Null).err().unwrap();
        assert!(err.to_string().contains("cont_by") && err.to_string().contains("count_by"));
    }

    #[test]
    fn unknown_options_name_the_processor_and_the_option() {
        let err = build_processor("print", serde_json::json!({ "rowz": 3 })).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("print") && text.contains("rowz"), "{text}");
    }
}
