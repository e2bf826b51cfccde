//! The result as an aligned text table (`flightline query --format table`), at most a given
//! number of rows: the table is built in memory to size its columns.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::{pretty_format_batches, pretty_format_batches_with_schema};
use flightline_core::process::ProcessError;

use super::sink::{SinkFormat, SinkOutput};

/// The table format: at most `cap` rows; once a row beyond them arrives the writer is full
/// ([`SinkFormat::is_full`]) and `note` goes under the table.
#[derive(Debug, Clone)]
pub struct TableFormat {
    cap: usize,
    note: String,
}

impl TableFormat {
    /// A table of at most `cap` rows, with `note` under it when rows were left out.
    pub fn capped(cap: usize, note: impl Into<String>) -> Self {
        Self { cap, note: note.into() }
    }
}

/// The rows kept so far.
pub struct TableWriter {
    out: SinkOutput,
    format: TableFormat,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: usize,
    truncated: bool,
}

impl SinkFormat for TableFormat {
    type Writer = TableWriter;

    fn open(&self, out: SinkOutput, schema: &SchemaRef) -> Result<Self::Writer, ProcessError> {
        Ok(TableWriter {
            out,
            format: self.clone(),
            schema: schema.clone(),
            batches: Vec::new(),
            rows: 0,
            truncated: false,
        })
    }

    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError> {
        let room = writer.format.cap - writer.rows;
        if batch.num_rows() > room {
            writer.truncated = true;
        }
        let kept = batch.num_rows().min(room);
        if kept > 0 {
            writer.batches.push(batch.slice(0, kept));
            writer.rows += kept;
        }
        Ok(())
    }

    fn close(mut writer: Self::Writer) -> Result<SinkOutput, ProcessError> {
        // Without rows the header still shows the columns.
        let table = if writer.batches.is_empty() {
            pretty_format_batches_with_schema(writer.schema.clone(), &writer.batches)?.to_string()
        } else {
            pretty_format_batches(&writer.batches)?.to_string()
        };
        writeln!(writer.out, "{table}")?;
        if writer.truncated {
            writeln!(writer.out, "{}", writer.format.note)?;
        }
        writer.out.flush()?;
        Ok(writer.out)
    }

    fn is_full(writer: &Self::Writer) -> bool {
        writer.truncated
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// An output whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batch(schema: &SchemaRef, n: i32) -> RecordBatch {
        let column = Arc::new(Int32Array::from((0..n).collect::<Vec<_>>()));
        RecordBatch::try_new(schema.clone(), vec![column]).unwrap()
    }

    #[test]
    fn the_table_keeps_exactly_cap_rows_across_batches_and_notes_the_rest() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let out = Shared::default();
        let format = TableFormat::capped(7, "more rows");
        let mut writer = format.open(Box::new(out.clone()), &schema).unwrap();
        for rows in [4, 3, 0] {
            TableFormat::write(&mut writer, &batch(&schema, rows)).unwrap();
            assert!(!TableFormat::is_full(&writer), "full after {rows} more rows");
        }
        TableFormat::write(&mut writer, &batch(&schema, 2)).unwrap();
        assert!(TableFormat::is_full(&writer));
        assert_eq!(writer.rows, 7);
        TableFormat::close(writer).unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("| ")).count(), 8, "{text}");
        assert!(text.ends_with("+\nmore rows\n"), "{text}");
    }

    #[test]
    fn an_empty_table_shows_its_columns_and_no_note() {
        let schema = Arc::new(Schema::new(vec![Field::new("level", DataType::Int32, false)]));
        let out = Shared::default();
        let writer =
            TableFormat::capped(3, "more rows").open(Box::new(out.clone()), &schema).unwrap();
        TableFormat::close(writer).unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "+-------+\n| level |\n+-------+\n+-------+\n");
    }
}
