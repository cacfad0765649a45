//! Splitting a batch into per-worker pieces by the hash of its key columns.

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::hash_utils::{RandomState, create_hashes};

use crate::error::EngineError;

/// Fixed seeds: every worker in every process must route a key to the same
/// place.
const ROUTING_STATE: RandomState = RandomState::with_seed(0x52_75_6e_6e_65_6c);

/// Hashes the key columns of every row, deterministically across processes.
pub fn hash_rows(keys: &[ArrayRef], rows: usize, hashes: &mut Vec<u64>) -> Result<(), EngineError> {
    hashes.clear();
    hashes.resize(rows, 0);
    if !keys.is_empty() {
        create_hashes(keys, &ROUTING_STATE, hashes)?;
    }
    Ok(())
}

/// The worker that owns a key hash.
#[inline]
pub fn owner(hash: u64, workers: usize) -> usize {
    // Multiply-shift maps the hash onto [0, workers) without a division and
    // uses its high bits, which foldhash mixes best.
    ((hash as u128 * workers as u128) >> 64) as usize
}

/// Splits `batch` into one piece per worker; a piece is `None` when no row
/// goes there. A batch whose rows all go to one worker is not copied.
pub fn split_by_owner(
    batch: &RecordBatch,
    hashes: &[u64],
    workers: usize,
) -> Result<Vec<Option<RecordBatch>>, EngineError> {
    let mut pieces: Vec<Option<RecordBatch>> = vec![None; workers];
    if batch.num_rows() == 0 {
        return Ok(pieces);
    }
    let first = owner(hashes[0], workers);
    if hashes.iter().all(|&h| owner(h, workers) == first) {
        pieces[first] = Some(batch.clone());
        return Ok(pieces);
    }
    let mut indices: Vec<Vec<u32>> = vec![Vec::new(); workers];
    for (row, &hash) in hashes.iter().enumerate() {
        indices[owner(hash, workers)].push(row as u32);
    }
    for (worker, rows) in indices.into_iter().enumerate() {
        if !rows.is_empty() {
            pieces[worker] = Some(take_record_batch(batch, &UInt32Array::from(rows))?);
        }
    }
    Ok(pieces)
}
