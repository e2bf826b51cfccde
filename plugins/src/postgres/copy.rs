//! Record batches in PostgreSQL's binary COPY format: a header, one tuple per row (a field
//! count, then each field as a length and its bytes, `-1` for NULL), a trailer.
//!
//! A column whose Arrow type the encoder cannot read as it is (a narrower integer, a dictionary,
//! nanoseconds) is first cast to the Arrow type of its [`PgType`]; strings and binaries of any
//! offset width are read in place. Then rows are written column after column into one buffer per
//! batch, which the sink sends as one message.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimestampMicrosecondType,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::{BufMut, BytesMut};

use super::types::PgType;

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i32 = 10_957;
/// The same in microseconds.
const EPOCH_MICROS: i64 = EPOCH_DAYS as i64 * 86_400_000_000;

/// Encodes batches of one schema, after constant fields that every row starts with.
#[derive(Debug, Clone)]
pub struct CopyEncoder {
    columns: Vec<(PgType, DataType)>,
    constants: BytesMut,
    constant_fields: usize,
}

impl CopyEncoder {
    /// An encoder for `schema`, whose columns map to `types` (see [`PgType::for_arrow`]).
    pub fn new(schema: &SchemaRef, types: &[PgType]) -> Self {
        let columns = schema
            .fields()
            .iter()
            .zip(types)
            .map(|(field, pg)| (*pg, pg.arrow(field.data_type())))
            .collect();
        Self { columns, constants: BytesMut::new(), constant_fields: 0 }
    }

    /// Every row starts with `text` (a `text` column), after the constants added before.
    pub fn with_text(mut self, text: &str) -> Result<Self, ArrowError> {
        variable(&mut self.constants, text.as_bytes())?;
        self.constant_fields += 1;
        Ok(self)
    }

    /// Every row starts with `instant` (a `timestamptz` column; NULL for `None`), after the
    /// constants added before.
    pub fn with_instant(mut self, instant: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        match instant {
            Some(t) => {
                fixed(&mut self.constants, &(t.timestamp_micros() - EPOCH_MICROS).to_be_bytes())
            }
            None => self.constants.put_i32(-1),
        }
        self.constant_fields += 1;
        self
    }

    /// The signature, flags and header extension that open a COPY.
    pub fn header(buf: &mut BytesMut) {
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
    }

    /// The end of the data.
    pub fn trailer(buf: &mut BytesMut) {
        buf.put_i16(-1);
    }

    /// Appends every row of `batch`.
    pub fn encode(&self, batch: &RecordBatch, buf: &mut BytesMut) -> Result<(), ArrowError> {
        let arrays = batch
            .columns()
            .iter()
            .zip(&self.columns)
            .map(|(column, (_, target))| match column.data_type() == target {
                true => Ok(column.clone()),
                false => arrow::compute::cast(column, target),
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let fields = i16::try_from(arrays.len() + self.constant_fields).map_err(|_| {
            ArrowError::InvalidArgumentError("more than 32767 columns for PostgreSQL".into())
        })?;
        let writers: Vec<Field<'_>> =
            arrays.iter().zip(&self.columns).map(|(a, (pg, _))| Field::new(*pg, a)).collect();
        for row in 0..batch.num_rows() {
            buf.put_i16(fields);
            buf.put_slice(&self.constants);
            for writer in &writers {
                writer.put(row, buf)?;
            }
        }
        Ok(())
    }
}

/// One column, read through the accessor its (cast) type needs.
struct Field<'a> {
    array: &'a ArrayRef,
    value: Value<'a>,
}

enum Value<'a> {
    Bool(&'a arrow::array::BooleanArray),
    Int2(&'a arrow::array::PrimitiveArray<Int16Type>),
    Int4(&'a arrow::array::PrimitiveArray<Int32Type>),
    Int8(&'a arrow::array::PrimitiveArray<Int64Type>),
    Float4(&'a arrow::array::PrimitiveArray<Float32Type>),
    Float8(&'a arrow::array::PrimitiveArray<Float64Type>),
    Text(&'a arrow::array::StringArray),
    LargeText(&'a arrow::array::LargeStringArray),
    TextView(&'a arrow::array::StringViewArray),
    Bytes(&'a arrow::array::BinaryArray),
    LargeBytes(&'a arrow::array::LargeBinaryArray),
    BytesView(&'a arrow::array::BinaryViewArray),
    Date(&'a arrow::array::PrimitiveArray<Date32Type>),
    Micros(&'a arrow::array::PrimitiveArray<TimestampMicrosecondType>),
}

impl<'a> Field<'a> {
    /// `array` was cast to `pg.arrow(..)`, so each downcast holds.
    fn new(pg: PgType, array: &'a ArrayRef) -> Self {
        let value = match (pg, array.data_type()) {
            (PgType::Bool, _) => Value::Bool(array.as_boolean()),
            (PgType::Int2, _) => Value::Int2(array.as_primitive()),
            (PgType::Int4, _) => Value::Int4(array.as_primitive()),
            (PgType::Int8, _) => Value::Int8(array.as_primitive()),
            (PgType::Float4, _) => Value::Float4(array.as_primitive()),
            (PgType::Float8, _) => Value::Float8(array.as_primitive()),
            (PgType::Text, DataType::Utf8) => Value::Text(array.as_string()),
            (PgType::Text, DataType::Utf8View) => Value::TextView(array.as_string_view()),
            (PgType::Text, _) => Value::LargeText(array.as_string()),
            (PgType::Bytea, DataType::Binary) => Value::Bytes(array.as_binary()),
            (PgType::Bytea, DataType::BinaryView) => Value::BytesView(array.as_binary_view()),
            (PgType::Bytea, _) => Value::LargeBytes(array.as_binary()),
            (PgType::Date, _) => Value::Date(array.as_primitive()),
            (PgType::Timestamp | PgType::Timestamptz, _) => Value::Micros(array.as_primitive()),
        };
        Self { array, value }
    }

    fn put(&self, row: usize, buf: &mut BytesMut) -> Result<(), ArrowError> {
        if self.array.is_null(row) {
            buf.put_i32(-1);
            return Ok(());
        }
        match self.value {
            Value::Bool(a) => {
                buf.put_i32(1);
                buf.put_u8(u8::from(a.value(row)));
            }
            Value::Int2(a) => fixed(buf, &a.value(row).to_be_bytes()),
            Value::Int4(a) => fixed(buf, &a.value(row).to_be_bytes()),
            Value::Int8(a) => fixed(buf, &a.value(row).to_be_bytes()),
            Value::Float4(a) => fixed(buf, &a.value(row).to_be_bytes()),
            Value::Float8(a) => fixed(buf, &a.value(row).to_be_bytes()),
            Value::Text(a) => variable(buf, a.value(row).as_bytes())?,
            Value::LargeText(a) => variable(buf, a.value(row).as_bytes())?,
            Value::TextView(a) => variable(buf, a.value(row).as_bytes())?,
            Value::Bytes(a) => variable(buf, a.value(row))?,
            Value::LargeBytes(a) => variable(buf, a.value(row))?,
            Value::BytesView(a) => variable(buf, a.value(row))?,
            Value::Date(a) => fixed(buf, &(a.value(row) - EPOCH_DAYS).to_be_bytes()),
            Value::Micros(a) => {
                let micros = a.value(row).checked_sub(EPOCH_MICROS).ok_or_else(|| {
                    ArrowError::ComputeError(format!(
                        "timestamp {} µs is before PostgreSQL's range",
                        a.value(row)
                    ))
                })?;
                fixed(buf, &micros.to_be_bytes());
            }
        }
        Ok(())
    }
}

fn fixed(buf: &mut BytesMut, bytes: &[u8]) {
    // At most 8 bytes.
    buf.put_i32(bytes.len() as i32);
    buf.put_slice(bytes);
}

fn variable(buf: &mut BytesMut, bytes: &[u8]) -> Result<(), ArrowError> {
    let len = i32::try_from(bytes.len()).map_err(|_| {
        ArrowError::InvalidArgumentError(format!(
            "a value of {} bytes is over PostgreSQL's 1 GB field limit",
            bytes.len()
        ))
    })?;
    buf.put_i32(len);
    buf.put_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field as ArrowField, Schema};
    use std::sync::Arc;

    #[test]
    fn rows_are_written_in_the_binary_copy_layout() {
        let schema = Arc::new(Schema::new(vec![
            ArrowField::new("n", DataType::Int32, true),
            ArrowField::new("s", DataType::Utf8, true),
            ArrowField::new(
                "t",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(StringArray::from(vec![Some("hé"), Some("")])),
                // 2000-01-01T00:00:01Z and the Unix epoch.
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(946_684_801_000_000_000),
                    Some(0),
                ])),
            ],
        )
        .unwrap();
        let types: Vec<PgType> =
            schema.fields().iter().map(|f| PgType::for_arrow(f.data_type()).unwrap()).collect();
        let mut buf = BytesMut::new();
        let encoder = CopyEncoder::new(&schema, &types).with_text("j").unwrap().with_instant(None);
        encoder.encode(&batch, &mut buf).unwrap();
        let constants = [0, 0, 0, 1, b'j', 0xff, 0xff, 0xff, 0xff];
        let mut want = Vec::new();
        want.extend(5i16.to_be_bytes());
        want.extend(constants);
        want.extend([0, 0, 0, 4, 0, 0, 0, 7]);
        want.extend([0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        want.extend([0, 0, 0, 8]);
        want.extend(1_000_000i64.to_be_bytes());
        want.extend(5i16.to_be_bytes());
        want.extend(constants);
        want.extend((-1i32).to_be_bytes());
        want.extend([0, 0, 0, 0]);
        want.extend([0, 0, 0, 8]);
        want.extend((-EPOCH_MICROS).to_be_bytes());
        assert_eq!(buf.as_ref(), want.as_slice());
    }

    #[test]
    fn every_string_and_binary_layout_is_encoded_alike() {
        use arrow::array::{
            BinaryArray, BinaryViewArray, LargeBinaryArray, LargeStringArray, StringViewArray,
        };
        let values = [Some("short"), None, Some("a value longer than twelve bytes")];
        let bytes = values.map(|v| v.map(str::as_bytes));
        let layouts: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(LargeStringArray::from(values.to_vec())),
            Arc::new(StringViewArray::from(values.to_vec())),
            Arc::new(BinaryArray::from(bytes.to_vec())),
            Arc::new(LargeBinaryArray::from(bytes.to_vec())),
            Arc::new(BinaryViewArray::from(bytes.to_vec())),
        ];
        let encoded: Vec<Vec<u8>> = layouts
            .into_iter()
            .map(|column| {
                let batch = RecordBatch::try_from_iter([("c", column)]).unwrap();
                let schema = batch.schema();
                let types = [PgType::for_arrow(schema.field(0).data_type()).unwrap()];
                let mut buf = BytesMut::new();
                CopyEncoder::new(&schema, &types).encode(&batch, &mut buf).unwrap();
                buf.to_vec()
            })
            .collect();
        for other in &encoded[1..] {
            assert_eq!(other, &encoded[0]);
        }
        let mut want = Vec::new();
        for value in values {
            want.extend(1i16.to_be_bytes());
            match value {
                Some(v) => {
                    want.extend((v.len() as i32).to_be_bytes());
                    want.extend(v.as_bytes());
                }
                None => want.extend((-1i32).to_be_bytes()),
            }
        }
        assert_eq!(encoded[0], want);
    }
}
