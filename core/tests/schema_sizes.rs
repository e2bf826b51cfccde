//! `SchemaAnalysis` estimates checked against hand-computed sizes for every Arrow type.

use std::sync::Arc;

use arrow::datatypes::{
    DataType, Field, Fields, IntervalUnit, Schema, TimeUnit, UnionFields, UnionMode,
};
use flightline_core::schema::{SchemaAnalysis, SizeOptions, estimate_bytes, format_bytes};

fn field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

fn item(data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", data_type, true))
}

/// One column per Arrow type, with the size the cost model must give it under the default
/// options (strings 32 bytes, binaries 64 bytes, lists of 4), worked out by hand.
fn every_type() -> Vec<(Field, f64)> {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ])),
        false,
    );
    let sparse = UnionFields::try_new(
        vec![0, 1],
        vec![field("i", DataType::Int32), field("s", DataType::Utf8)],
    )
    .unwrap();
    let dense = UnionFields::try_new(
        vec![0, 1],
        vec![field("i", DataType::Int64), field("f", DataType::Float64)],
    )
    .unwrap();
    vec![
        (field("null", DataType::Null), 0.0),
        (field("boolean", DataType::Boolean), 0.125),
        (field("int8", DataType::Int8), 1.0),
        (field("int16", DataType::Int16), 2.0),
        (field("int32", DataType::Int32), 4.0),
        (field("int64", DataType::Int64), 8.0),
        (field("uint8", DataType::UInt8), 1.0),
        (field("uint16", DataType::UInt16), 2.0),
        (field("uint32", DataType::UInt32), 4.0),
        (field("uint64", DataType::UInt64), 8.0),
        (field("float16", DataType::Float16), 2.0),
        (field("float32", DataType::Float32), 4.0),
        (field("float64", DataType::Float64), 8.0),
        (field("time", DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))), 8.0),
        (field("date32", DataType::Date32), 4.0),
        (field("date64", DataType::Date64), 8.0),
        (field("time32", DataType::Time32(TimeUnit::Millisecond)), 4.0),
        (field("time64", DataType::Time64(TimeUnit::Nanosecond)), 8.0),
        (field("duration", DataType::Duration(TimeUnit::Second)), 8.0),
        (field("interval_ym", DataType::Interval(IntervalUnit::YearMonth)), 4.0),
        (field("interval_dt", DataType::Interval(IntervalUnit::DayTime)), 8.0),
        (field("interval_mdn", DataType::Interval(IntervalUnit::MonthDayNano)), 16.0),
        // 64 bytes + one i32 offset
        (field("binary", DataType::Binary), 68.0),
        (field("fixed_binary", DataType::FixedSizeBinary(16)), 16.0),
        // 64 bytes + one i64 offset
        (field("large_binary", DataType::LargeBinary), 72.0),
        // 16-byte view + 64 bytes out of line (longer than the 12 a view inlines)
        (field("binary_view", DataType::BinaryView), 80.0),
        (field("utf8", DataType::Utf8), 36.0),
        (field("large_utf8", DataType::LargeUtf8), 40.0),
        (field("utf8_view", DataType::Utf8View), 48.0),
        // offset 4 + 4 × Int32
        (field("list", DataType::List(item(DataType::Int32))), 20.0),
        // offset and size 8 + 4 × Int32
        (field("list_view", DataType::ListView(item(DataType::Int32))), 24.0),
        // 3 × Float64
        (field("fixed_list", DataType::FixedSizeList(item(DataType::Float64), 3)), 24.0),
        // offset 8 + 4 × (32 + 4)
        (field("large_list", DataType::LargeList(item(DataType::Utf8))), 152.0),
        // offset and size 16 + 4 × Int8
        (field("large_list_view", DataType::LargeListView(item(DataType::Int8))), 20.0),
        // Int64 + Utf8 + Boolean
        (
            field(
                "struct",
                DataType::Struct(Fields::from(vec![
                    field("a", DataType::Int64),
                    field("b", DataType::Utf8),
                    field("c", DataType::Boolean),
                ])),
            ),
            44.125,
        ),
        // type id 1 + Int32 4 + Utf8 36
        (field("sparse_union", DataType::Union(sparse, UnionMode::Sparse)), 41.0),
        // type id 1 + offset 4 + max(Int64, Float64) 8
        (field("dense_union", DataType::Union(dense, UnionMode::Dense)), 13.0),
        // Int32 key + Utf8 value
        (
            field(
                "target",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            ),
            40.0,
        ),
        (field("decimal32", DataType::Decimal32(9, 2)), 4.0),
        (field("decimal64", DataType::Decimal64(18, 2)), 8.0),
        (field("decimal128", DataType::Decimal128(38, 10)), 16.0),
        (field("decimal256", DataType::Decimal256(76, 10)), 32.0),
        // offset 4 + 4 × (key Utf8 36 + value Float64 8)
        (field("properties", DataType::Map(Arc::new(entries), false)), 180.0),
        // Int32 run end + Utf8 value
        (
            field(
                "ree",
                DataType::RunEndEncoded(
                    Arc::new(Field::new("run_ends", DataType::Int32, false)),
                    Arc::new(Field::new("values", DataType::Utf8, true)),
                ),
            ),
            40.0,
        ),
    ]
}

#[test]
fn every_type_costs_what_the_table_says() {
    let options = SizeOptions::default();
    for (field, expected) in every_type() {
        let got = estimate_bytes(field.data_type(), &options);
        assert_eq!(got, expected, "column {} ({})", field.name(), field.data_type());
    }
}

#[test]
fn analysis_of_every_type_sums_the_columns() {
    let columns = every_type();
    let schema = Schema::new(columns.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>());
    let analysis = SchemaAnalysis::from_schema(&schema, &SizeOptions::default());

    assert_eq!(analysis.column_count, 44);
    // The hand-computed figures above, added up.
    assert_eq!(analysis.estimated_row_bytes, 1130.25);
    assert_eq!(analysis.columns[1].name, "boolean");
    assert_eq!(analysis.columns[1].estimated_bytes, 0.125);
    assert!(analysis.columns[1].nullable);
    assert_eq!(analysis.temporal_columns().collect::<Vec<_>>(), vec!["time", "date32", "date64"]);
    assert_eq!(analysis.estimated_bytes_for_rows(4), 4521.0);
}

#[test]
fn options_change_the_variable_width_estimates() {
    let options = SizeOptions { string_bytes: 10, binary_bytes: 100, list_length: 2 };
    assert_eq!(estimate_bytes(&DataType::Utf8, &options), 14.0);
    // 10 bytes fit inside the view
    assert_eq!(estimate_bytes(&DataType::Utf8View, &options), 16.0);
    assert_eq!(estimate_bytes(&DataType::BinaryView, &options), 116.0);
    assert_eq!(estimate_bytes(&DataType::LargeBinary, &options), 108.0);
    // 4 + 2 × (4 + 2 × 14): lists of lists recurse
    let nested = DataType::List(item(DataType::List(item(DataType::Utf8))));
    assert_eq!(estimate_bytes(&nested, &options), 68.0);
}

#[test]
fn nullability_and_types_are_reported_per_column() {
    let schema = Schema::new(vec![
        Field::new("level", DataType::Int32, false),
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())), false),
        Field::new("msg", DataType::Utf8, true),
    ]);
    let analysis = SchemaAnalysis::from_schema(&schema, &SizeOptions::default());
    let level = analysis.column("level").unwrap();
    assert!(!level.nullable);
    assert_eq!(level.data_type, DataType::Int32);
    assert!(analysis.column("msg").unwrap().nullable);
    assert!(analysis.column("missing").is_none());
    assert_eq!(analysis.estimated_row_bytes, 48.0);
}

#[test]
fn json_names_types_the_way_arrow_prints_them() {
    let schema = Schema::new(vec![
        Field::new(
            "target",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("flag", DataType::Boolean, false),
    ]);
    let analysis = SchemaAnalysis::from_schema(&schema, &SizeOptions::default());
    let json = serde_json::to_value(&analysis).unwrap();
    assert_eq!(json["column_count"], 2);
    assert_eq!(json["estimated_row_bytes"], 40.125);
    assert_eq!(json["columns"][0]["name"], "target");
    assert_eq!(json["columns"][0]["data_type"], "Dictionary(Int32, Utf8)");
    assert_eq!(json["columns"][0]["nullable"], true);
    assert_eq!(json["columns"][0]["estimated_bytes"], 40.0);
    assert_eq!(json["columns"][1]["estimated_bytes"], 0.125);
    assert_eq!(json["options"]["string_bytes"], 32);
}

#[test]
fn display_prints_one_line_per_column_and_the_totals() {
    let schema = Schema::new(vec![
        Field::new("level", DataType::Int32, false),
        Field::new("msg", DataType::Utf8, true),
        Field::new("ok", DataType::Boolean, true),
    ]);
    let text = SchemaAnalysis::from_schema(&schema, &SizeOptions::default()).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["column", "type", "nullable", "est.", "bytes"]
    );
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["level", "Int32", "no", "4"]);
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["msg", "Utf8", "yes", "36"]);
    assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["ok", "Boolean", "yes", "0.125"]);
    assert!(text.contains("total columns: 3"), "{text}");
    assert!(text.ends_with("estimated row size: 40.125 bytes"), "{text}");
}

#[test]
fn byte_figures_print_without_useless_decimals() {
    assert_eq!(format_bytes(604.0), "604");
    assert_eq!(format_bytes(0.125), "0.125");
    assert_eq!(format_bytes(44.5), "44.5");
}
