//! Rows kept by reference, for operators whose state is some rows of many
//! batches (MATCH_RECOGNIZE's partial matches, a temporal join's versions):
//! each batch is kept whole while any row of it is referred to, values are
//! read by reference, and `compact` copies the rows still referred to into
//! one batch when old batches are kept alive by a few rows.

use std::collections::VecDeque;

use datafusion::arrow::array::{Array, ArrayRef, new_null_array};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::EngineError;
use crate::fast_hash::HashMap;

/// A row of a kept batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowRef {
    pub batch: u32,
    pub row: u32,
}

/// One firing's rows with, per aggregate that a condition or measure
/// reads, its argument values.
struct Kept {
    rows: RecordBatch,
    arguments: Vec<Vec<ArrayRef>>,
}

#[derive(Default)]
pub struct Rows {
    kept: VecDeque<Kept>,
    /// The id of `kept[0]`.
    first: u32,
}

impl Rows {
    /// Keeps a firing's rows; its rows are `RowRef { batch: id, .. }`.
    pub fn keep(&mut self, rows: RecordBatch, arguments: Vec<Vec<ArrayRef>>) -> u32 {
        self.kept.push_back(Kept { rows, arguments });
        self.first + self.kept.len() as u32 - 1
    }

    /// Forgets batches older than `oldest_needed`.
    pub fn forget_before(&mut self, oldest_needed: u32) {
        while self.first < oldest_needed && !self.kept.is_empty() {
            self.kept.pop_front();
            self.first += 1;
        }
    }

    pub fn kept_batches(&self) -> usize {
        self.kept.len()
    }

    /// The rows of every batch kept, referred to or not.
    pub fn kept_rows(&self) -> usize {
        self.kept.iter().map(|k| k.rows.num_rows()).sum()
    }

    /// Copies the rows `refs` point at into one new batch (arguments are
    /// not kept: for operators that keep none) and points `refs` at it;
    /// every older batch is forgotten.
    pub fn compact(&mut self, refs: &mut [&mut RowRef]) -> Result<(), EngineError> {
        let wanted: Vec<RowRef> = refs.iter().map(|r| **r).collect();
        let Some(rows) = self.rows_at(&wanted)? else {
            return Ok(());
        };
        let id = self.keep(rows, Vec::new());
        self.forget_before(id);
        for (row, r) in refs.iter_mut().enumerate() {
            **r = RowRef {
                batch: id,
                row: row as u32,
            };
        }
        Ok(())
    }

    /// The rows `refs` point at, in order, copied into one batch of the
    /// newest kept batch's schema (`None` when nothing is kept): what a
    /// checkpoint saves of rows referred to across many batches.
    pub fn rows_at(&self, refs: &[RowRef]) -> Result<Option<RecordBatch>, EngineError> {
        let Some(schema) = self.kept.back().map(|k| k.rows.schema()) else {
            return Ok(None);
        };
        let wanted: Vec<Option<RowRef>> = refs.iter().copied().map(Some).collect();
        let columns = (0..schema.fields().len())
            .map(|c| self.column(c, schema.field(c).data_type(), &wanted))
            .collect::<Result<Vec<_>, _>>()?;
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(wanted.len()));
        Ok(Some(RecordBatch::try_new_with_options(
            schema, columns, &options,
        )?))
    }

    pub fn newest(&self) -> u32 {
        self.first + self.kept.len() as u32
    }

    fn kept(&self, batch: u32) -> Result<&Kept, EngineError> {
        self.kept
            .get(batch.wrapping_sub(self.first) as usize)
            .ok_or_else(|| EngineError::Runtime(format!("MATCH_RECOGNIZE lost row batch {batch}")))
    }

    /// Column `column` at each reference, NULL where there is none.
    pub fn column(
        &self,
        column: usize,
        data_type: &DataType,
        refs: &[Option<RowRef>],
    ) -> Result<ArrayRef, EngineError> {
        self.gather(refs, data_type, |kept| Ok(kept.rows.column(column).clone()))
    }

    /// Argument `argument` of aggregate `aggregate` at each reference.
    pub fn argument(
        &self,
        aggregate: usize,
        argument: usize,
        data_type: &DataType,
        refs: &[Option<RowRef>],
    ) -> Result<ArrayRef, EngineError> {
        self.gather(refs, data_type, |kept| {
            kept.arguments
                .get(aggregate)
                .and_then(|a| a.get(argument))
                .cloned()
                .ok_or_else(|| EngineError::Runtime("MATCH_RECOGNIZE argument missing".into()))
        })
    }

    fn gather(
        &self,
        refs: &[Option<RowRef>],
        data_type: &DataType,
        array_of: impl Fn(&Kept) -> Result<ArrayRef, EngineError>,
    ) -> Result<ArrayRef, EngineError> {
        // Source 0 is one NULL, for references to no row.
        let mut sources: Vec<ArrayRef> = Vec::new();
        let mut source_of: HashMap<u32, usize> = HashMap::default();
        let mut indices = Vec::with_capacity(refs.len());
        for r in refs {
            match r {
                Some(r) => {
                    let at = match source_of.get(&r.batch) {
                        Some(&at) => at,
                        None => {
                            sources.push(array_of(self.kept(r.batch)?)?);
                            source_of.insert(r.batch, sources.len());
                            sources.len()
                        }
                    };
                    indices.push((at, r.row as usize));
                }
                None => indices.push((0, 0)),
            }
        }
        let null = new_null_array(data_type, 1);
        if sources.len() == 1 && indices.iter().all(|&(s, _)| s == 1) {
            let only = &sources[0];
            let rows: Vec<u32> = indices.iter().map(|&(_, r)| r as u32).collect();
            return Ok(datafusion::arrow::compute::take(
                only.as_ref(),
                &datafusion::arrow::array::UInt32Array::from(rows),
                None,
            )?);
        }
        let mut all: Vec<&dyn Array> = Vec::with_capacity(sources.len() + 1);
        all.push(null.as_ref());
        all.extend(sources.iter().map(|a| a.as_ref()));
        Ok(interleave(&all, &indices)?)
    }
}
