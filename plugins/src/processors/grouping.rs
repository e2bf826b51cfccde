//! Group ids for rows, keyed by arrow's row format: the group columns of each row become one
//! comparable byte string, so any column types (strings, dictionaries, numbers, timestamps)
//! group the same way, and sorting the keys sorts the groups as the values would sort.

use std::collections::HashMap;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::compute::filter;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use foldhash::fast::RandomState;

/// Assigns a dense group id to each distinct combination of the group columns.
pub(crate) struct Grouper {
    columns: Vec<String>,
    indices: Vec<usize>,
    converter: Option<RowConverter>,
    /// foldhash (seeded at random per process), not the standard SipHash: every counted row
    /// is looked up here.
    ids: HashMap<Box<[u8]>, u32, RandomState>,
    keys: Vec<Box<[u8]>>,
}

impl Grouper {
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            indices: Vec::new(),
            converter: None,
            ids: HashMap::default(),
            keys: Vec::new(),
        }
    }

    /// Resolves the group columns in `schema`; an unknown column is an error naming it.
    pub fn open(&mut self, schema: &SchemaRef) -> Result<(), String> {
        self.indices = self
            .columns
            .iter()
            .map(|name| {
                schema.index_of(name).map_err(|_| {
                    format!(
                        "no column `{name}` in the result; the columns are: {}",
                        column_list(schema)
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let fields = self
            .indices
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        self.converter = Some(RowConverter::new(fields).map_err(|err| err.to_string())?);
        Ok(())
    }

    /// The group id of every row of `batch` (all 0 when there are no group columns).
    pub fn ids(&mut self, batch: &RecordBatch) -> Result<Vec<u32>, ArrowError> {
        let columns: Vec<ArrayRef> =
            self.indices.iter().map(|&i| batch.column(i).clone()).collect();
        self.ids_of(&columns, batch.num_rows())
    }

    /// The group id of every row of `batch` that `mask` selects. Only the group columns are
    /// filtered: the selected rows of every other column (a message column, say) were copied
    /// and thrown away.
    pub fn ids_where(
        &mut self,
        batch: &RecordBatch,
        mask: &BooleanArray,
    ) -> Result<Vec<u32>, ArrowError> {
        let columns = self
            .indices
            .iter()
            .map(|&i| filter(batch.column(i), mask))
            .collect::<Result<Vec<_>, _>>()?;
        self.ids_of(&columns, mask.true_count())
    }

    fn ids_of(&mut self, columns: &[ArrayRef], rows: usize) -> Result<Vec<u32>, ArrowError> {
        let converter = self.converter.as_ref().ok_or_else(not_open)?;
        if self.indices.is_empty() {
            if self.keys.is_empty() {
                self.keys.push(Box::default());
            }
            return Ok(vec![0; rows]);
        }
        let rows = converter.convert_columns(columns)?;
        let mut ids = Vec::with_capacity(rows.num_rows());
        for row in rows.iter() {
            let bytes = row.as_ref();
            let id = match self.ids.get(bytes) {
                Some(id) => *id,
                None => {
                    let id = self.keys.len() as u32;
                    self.ids.insert(bytes.into(), id);
                    self.keys.push(bytes.into());
                    id
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// How many groups exist so far.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Group ids ordered by their key values, and the key columns in that order.
    pub fn sorted_keys(&self) -> Result<(Vec<u32>, Vec<ArrayRef>), ArrowError> {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_by(|a, b| self.keys[*a as usize].cmp(&self.keys[*b as usize]));
        if self.indices.is_empty() {
            return Ok((order, Vec::new()));
        }
        let converter = self.converter.as_ref().ok_or_else(not_open)?;
        let parser = converter.parser();
        let rows = order.iter().map(|id| parser.parse(&self.keys[*id as usize]));
        Ok((order.clone(), converter.convert_rows(rows)?))
    }

    /// The group column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

fn not_open() -> ArrowError {
    ArrowError::InvalidArgumentError("the processor was not opened".into())
}

/// The schema's column names, for error messages.
pub(crate) fn column_list(schema: &SchemaRef) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}
