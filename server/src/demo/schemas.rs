//! The schemas of the demo tables, as Micromegas's views define them.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

fn utc_ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
}

pub(super) fn properties_type() -> DataType {
    DataType::List(Arc::new(Field::new("Property", DataType::Struct(property_fields()), false)))
}

pub(super) fn property_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ])
}

fn leading_fields() -> Vec<Field> {
    ["process_id", "stream_id", "block_id", "exe", "username", "computer"]
        .into_iter()
        .map(|n| Field::new(n, DataType::Utf8, false))
        .collect()
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema of `log_entries`.
pub fn log_entries_schema() -> SchemaRef {
    let mut f = leading_fields();
    f.extend([
        Field::new("target", dict_utf8(), false),
        Field::new("insert_time", utc_ts(), false),
        Field::new("time", utc_ts(), false),
        Field::new("level", DataType::Int32, false),
        Field::new("msg", DataType::Utf8, false),
        Field::new("properties", properties_type(), true),
    ]);
    Arc::new(Schema::new(f))
}

/// The schema of `measures`.
pub fn measures_schema() -> SchemaRef {
    let mut f = leading_fields();
    f.extend([
        Field::new("insert_time", utc_ts(), false),
        Field::new("time", utc_ts(), false),
        Field::new("target", dict_utf8(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("properties", properties_type(), true),
    ]);
    Arc::new(Schema::new(f))
}

/// The schema of `processes`.
pub fn processes_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("process_id"),
        s("exe"),
        s("username"),
        s("realname"),
        s("computer"),
        s("distro"),
        s("cpu_brand"),
        Field::new("start_time", utc_ts(), false),
        Field::new("insert_time", utc_ts(), false),
        Field::new("parent_process_id", DataType::Utf8, true),
        Field::new("properties", properties_type(), true),
    ]))
}
