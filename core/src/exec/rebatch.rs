//! Re-batching to a target size in bytes: big batches are split with zero-copy slices, small
//! ones are coalesced with arrow's `concat_batches`. Every row is kept, in order.

use std::collections::VecDeque;

use arrow::compute::concat_batches;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// The bytes a batch's rows occupy, counting only the part of each buffer the batch uses (a
/// slice of a big buffer counts its share, not the whole buffer).
pub fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

/// Turns a sequence of batches into batches of about `target` bytes each. The row count per
/// output batch follows the bytes per row of the most recent input batch.
#[derive(Debug)]
pub struct Rebatcher {
    target: usize,
    rows_per_batch: usize,
    pending: VecDeque<RecordBatch>,
    pending_rows: usize,
}

impl Rebatcher {
    /// A re-batcher aiming at `target` bytes per batch (at least one row per batch).
    pub fn new(target: usize) -> Self {
        Self { target: target.max(1), rows_per_batch: 1, pending: VecDeque::new(), pending_rows: 0 }
    }

    /// Adds `batch` and returns the batches that are now complete.
    pub fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, ArrowError> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let bytes_per_row = (batch_bytes(&batch) / rows).max(1);
        self.rows_per_batch = (self.target / bytes_per_row).max(1);
        self.pending_rows += rows;
        self.pending.push_back(batch);
        let mut out = Vec::new();
        while self.pending_rows >= self.rows_per_batch {
            out.push(self.take(self.rows_per_batch)?);
        }
        Ok(out)
    }

    /// The rows still held, as one batch, at the end of the stream.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.pending_rows == 0 {
            return Ok(None);
        }
        self.take(self.pending_rows).map(Some)
    }

    /// Removes the first `rows` pending rows as one batch: a slice when they lie in one batch,
    /// a concatenation of slices otherwise.
    fn take(&mut self, rows: usize) -> Result<RecordBatch, ArrowError> {
        let mut parts = Vec::new();
        let mut needed = rows;
        while needed > 0 {
            let Some(front) = self.pending.pop_front() else { break };
            let n = front.num_rows();
            if n <= needed {
                needed -= n;
                parts.push(front);
            } else {
                parts.push(front.slice(0, needed));
                self.pending.push_front(front.slice(needed, n - needed));
                needed = 0;
            }
        }
        self.pending_rows -= rows - needed;
        match parts.len() {
            1 => Ok(parts.remove(0)),
            _ => {
                let schema = parts[0].schema();
                concat_batches(&schema, &parts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(range: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(range))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                col.values().to_vec()
            })
            .collect()
    }

    fn run(target: usize, inputs: Vec<RecordBatch>) -> Vec<RecordBatch> {
        let mut rebatcher = Rebatcher::new(target);
        let mut out = Vec::new();
        for input in inputs {
            out.extend(rebatcher.push(input).unwrap());
        }
        out.extend(rebatcher.flush().unwrap());
        out
    }

    #[test]
    fn splits_big_batches_into_slices() {
        // 8 bytes per row: 80 bytes is 10 rows.
        let out = run(80, vec![batch(0..95)]);
        assert_eq!(out.len(), 10);
        assert!(out[..9].iter().all(|b| b.num_rows() == 10));
        assert_eq!(out[9].num_rows(), 5);
        assert_eq!(values(&out), (0..95).collect::<Vec<_>>());
    }

    #[test]
    fn coalesces_small_batches() {
        let inputs: Vec<_> = (0..50).map(|i| batch(i * 3..i * 3 + 3)).collect();
        let out = run(8 * 40, inputs);
        assert_eq!(out.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), vec![40, 40, 40, 30]);
        assert_eq!(values(&out), (0..150).collect::<Vec<_>>());
    }

    #[test]
    fn counts_only_the_sliced_bytes() {
        let whole = batch(0..1000);
        assert_eq!(batch_bytes(&whole), 8000);
        assert_eq!(batch_bytes(&whole.slice(10, 100)), 800);
        assert_eq!(whole.slice(10, 100).column(0).len(), 100);
    }

    #[test]
    fn tiny_target_gives_one_row_per_batch_and_empty_batches_vanish() {
        let out = run(1, vec![batch(0..5), batch(5..5), batch(5..7)]);
        assert_eq!(out.len(), 7);
        assert_eq!(values(&out), (0..7).collect::<Vec<_>>());
    }
}
