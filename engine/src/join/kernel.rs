//! The hash-join kernel the window and interval join operators share: which
//! rows of two batches match on their equi-keys and an extra condition, and
//! the output rows for each join kind.

use crate::fast_hash::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::EngineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    LeftSemi,
    LeftAnti,
    RightSemi,
    RightAnti,
}

impl JoinKind {
    /// Whether unmatched left rows are output (with nulls, or alone).
    pub fn keeps_unmatched_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full | JoinKind::LeftAnti)
    }

    pub fn keeps_unmatched_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full | JoinKind::RightAnti)
    }
}

pub struct JoinSpec {
    pub kind: JoinKind,
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// A condition over the left columns followed by the right columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub left_schema: SchemaRef,
    pub right_schema: SchemaRef,
    /// Left columns then right columns, both nullable: what `filter` reads.
    pub joined_schema: SchemaRef,
    /// The operator's output: `joined_schema`, or one side for semi/anti joins.
    pub output_schema: SchemaRef,
}

/// The key rows of a batch in Arrow's row format, for hashing and equality
/// across batches. Rows with a null key never match (SQL `=`).
pub struct KeyedBatch {
    pub batch: RecordBatch,
    rows: Rows,
    valid: Vec<bool>,
}

impl KeyedBatch {
    pub fn new(
        batch: RecordBatch,
        keys: &[Arc<dyn PhysicalExpr>],
        converter: &RowConverter,
    ) -> Result<Self, EngineError> {
        let n = batch.num_rows();
        let columns = keys
            .iter()
            .map(|k| k.evaluate(&batch).and_then(|v| v.into_array(n)))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let valid = (0..n)
            .map(|i| columns.iter().all(|c| c.is_valid(i)))
            .collect();
        let rows = converter.convert_columns(&columns)?;
        Ok(KeyedBatch { batch, rows, valid })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each row's key bytes, or `None` where a key is NULL (it matches
    /// nothing).
    pub fn keys(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.rows
            .iter()
            .zip(&self.valid)
            .map(|(row, &valid)| valid.then(|| row.data()))
    }

    /// Row indices by key, for the side that is probed.
    pub fn index(&self) -> KeyIndex {
        let mut index: KeyIndex = HashMap::default();
        for (i, key) in self.keys().enumerate() {
            if let Some(key) = key {
                index.entry(key.into()).or_default().push(i as u32);
            }
        }
        index
    }

    /// Pairs (row of `self`, row of the indexed batch) with equal keys.
    pub fn probe(&self, index: &KeyIndex) -> (Vec<u32>, Vec<u32>) {
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for (i, key) in self.keys().enumerate() {
            if let Some(found) = key.and_then(|key| index.get(key)) {
                for &j in found {
                    mine.push(i as u32);
                    theirs.push(j);
                }
            }
        }
        (mine, theirs)
    }
}

/// Row indices of one batch by key bytes.
pub type KeyIndex = HashMap<Box<[u8]>, Vec<u32>>;

/// A row converter for the key types of `keys` evaluated over `schema`.
pub fn key_converter(
    keys: &[Arc<dyn PhysicalExpr>],
    schema: &SchemaRef,
) -> Result<RowConverter, EngineError> {
    let fields = keys
        .iter()
        .map(|k| Ok(SortField::new(k.data_type(schema)?)))
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(RowConverter::new(fields)?)
}

/// The pairs of `left` and `right` rows that match on keys and filter.
pub struct Matches {
    pub left: Vec<u32>,
    pub right: Vec<u32>,
}

impl JoinSpec {
    /// Keeps the key-matched pairs `(l, r)` of `left` and `right` that pass
    /// the join condition.
    pub fn filter_pairs(
        &self,
        left: &RecordBatch,
        right: &RecordBatch,
        l: Vec<u32>,
        r: Vec<u32>,
    ) -> Result<Matches, EngineError> {
        let Some(filter) = &self.filter else {
            return Ok(Matches { left: l, right: r });
        };
        if l.is_empty() {
            return Ok(Matches { left: l, right: r });
        }
        let joined = self.pairs(
            left,
            right,
            &UInt32Array::from(l.clone()),
            &UInt32Array::from(r.clone()),
        )?;
        let mask = filter.evaluate(&joined)?.into_array(joined.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| EngineError::Plan("a join condition must be boolean".into()))?;
        let keep = |k: usize| mask.is_valid(k) && mask.value(k);
        let (l, r) = l
            .into_iter()
            .zip(r)
            .enumerate()
            .filter(|(k, _)| keep(*k))
            .map(|(_, pair)| pair)
            .unzip();
        Ok(Matches { left: l, right: r })
    }

    /// Left and right columns side by side for index pairs; a null index
    /// gives a null row on that side (outer joins).
    pub fn pairs(
        &self,
        left: &RecordBatch,
        right: &RecordBatch,
        left_indices: &UInt32Array,
        right_indices: &UInt32Array,
    ) -> Result<RecordBatch, EngineError> {
        let mut columns = Vec::with_capacity(self.joined_schema.fields().len());
        for column in left.columns() {
            columns.push(take(column.as_ref(), left_indices, None)?);
        }
        for column in right.columns() {
            columns.push(take(column.as_ref(), right_indices, None)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(left_indices.len()));
        Ok(RecordBatch::try_new_with_options(
            self.joined_schema.clone(),
            columns,
            &options,
        )?)
    }

    /// The output for matched pairs plus the given unmatched rows of each
    /// side (which the caller chose by the join kind).
    pub fn output(
        &self,
        left: &RecordBatch,
        right: &RecordBatch,
        matches: &Matches,
        unmatched_left: &[u32],
        unmatched_right: &[u32],
    ) -> Result<Option<RecordBatch>, EngineError> {
        let batch = match self.kind {
            JoinKind::LeftSemi => take_rows(left, &distinct(&matches.left))?,
            JoinKind::RightSemi => take_rows(right, &distinct(&matches.right))?,
            JoinKind::LeftAnti => take_rows(left, unmatched_left)?,
            JoinKind::RightAnti => take_rows(right, unmatched_right)?,
            _ => {
                let mut l: Vec<Option<u32>> = matches.left.iter().copied().map(Some).collect();
                let mut r: Vec<Option<u32>> = matches.right.iter().copied().map(Some).collect();
                l.extend(unmatched_left.iter().copied().map(Some));
                r.extend(unmatched_left.iter().map(|_| None));
                l.extend(unmatched_right.iter().map(|_| None));
                r.extend(unmatched_right.iter().copied().map(Some));
                self.pairs(left, right, &UInt32Array::from(l), &UInt32Array::from(r))?
            }
        };
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        Ok(Some(RecordBatch::try_new(
            self.output_schema.clone(),
            batch.columns().to_vec(),
        )?))
    }

    /// Joins two complete sets of rows (one window's) in one go.
    pub fn join_all(
        &self,
        left: &[RecordBatch],
        right: &[RecordBatch],
    ) -> Result<Option<RecordBatch>, EngineError> {
        let left = concat(&self.left_schema, left)?;
        let right = concat(&self.right_schema, right)?;
        let converter = key_converter(&self.left_keys, &self.left_schema)?;
        let left = KeyedBatch::new(left, &self.left_keys, &converter)?;
        let right = KeyedBatch::new(right, &self.right_keys, &converter)?;
        let (l, r) = left.probe(&right.index());
        let matches = self.filter_pairs(&left.batch, &right.batch, l, r)?;
        let unmatched_left = if self.kind.keeps_unmatched_left() {
            unmatched(left.len(), &matches.left)
        } else {
            Vec::new()
        };
        let unmatched_right = if self.kind.keeps_unmatched_right() {
            unmatched(right.len(), &matches.right)
        } else {
            Vec::new()
        };
        self.output(
            &left.batch,
            &right.batch,
            &matches,
            &unmatched_left,
            &unmatched_right,
        )
    }
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, EngineError> {
    match batches {
        [one] => Ok(one.clone()),
        _ => Ok(datafusion::arrow::compute::concat_batches(schema, batches)?),
    }
}

/// Indices in `0..len` that are not in `matched`.
pub fn unmatched(len: usize, matched: &[u32]) -> Vec<u32> {
    let mut seen = vec![false; len];
    for &i in matched {
        seen[i as usize] = true;
    }
    (0..len as u32).filter(|&i| !seen[i as usize]).collect()
}

fn distinct(indices: &[u32]) -> Vec<u32> {
    let mut out = indices.to_vec();
    out.sort_unstable();
    out.dedup();
    out
}

pub fn take_rows(batch: &RecordBatch, indices: &[u32]) -> Result<RecordBatch, EngineError> {
    Ok(datafusion::arrow::compute::take_record_batch(
        batch,
        &UInt32Array::from(indices.to_vec()),
    )?)
}
