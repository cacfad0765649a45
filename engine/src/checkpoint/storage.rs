//! Where completed checkpoints go. The server keeps them in its data dir
//! (RocksDB, next to the streams an exactly-once sink writes into, so
//! that both commit in one write); `MemoryStorage` keeps them in memory,
//! for embedded runs and tests that restore within one process.

use std::sync::Mutex;

use crate::checkpoint::committer::lock;
use crate::checkpoint::encoding::{Checkpoint, encode_checkpoint};
use crate::error::EngineError;

/// One record an exactly-once sink held back for a stream of this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<u128>,
    pub data: Vec<u8>,
}

/// What one sink of one worker owes since the last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOutput {
    /// The stream's name.
    pub stream: String,
    pub records: Vec<OutputRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub id: u64,
    /// Wall-clock milliseconds when the checkpoint started.
    pub taken_at_ms: i64,
    /// The encoded states (`encoding::encode`).
    pub state: Vec<u8>,
}

pub trait CheckpointStorage: Send + Sync {
    /// The newest completed checkpoint, to restore from.
    fn latest(&self) -> Result<Option<StoredCheckpoint>, EngineError>;

    /// A completed checkpoint by id (one that a newer one builds on).
    fn get(&self, id: u64) -> Result<Option<StoredCheckpoint>, EngineError>;

    /// The ids of the checkpoints held, oldest first.
    fn ids(&self) -> Result<Vec<u64>, EngineError>;

    /// Forgets the checkpoints newer than `id` (a process of a cluster
    /// whose newest ones no other process completed).
    fn discard_after(&self, id: u64) -> Result<(), EngineError>;

    /// Makes `checkpoint` and `outputs` durable together, or neither; then
    /// forgets all but the newest `retained` checkpoints and those they
    /// build on (`retained_from`).
    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError>;

    /// `commit` of checkpoint `id` given as its entries; returns its size
    /// encoded. Storage that writes the entries out itself overrides it,
    /// to spare gathering a large state into one buffer first.
    fn commit_entries(
        &self,
        id: u64,
        taken_at_ms: i64,
        checkpoint: &Checkpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<u64, EngineError> {
        commit_encoded(self, id, taken_at_ms, checkpoint, outputs, retained)
    }
}

/// `commit_entries` by encoding the entries into one buffer and `commit`.
pub fn commit_encoded<S: CheckpointStorage + ?Sized>(
    storage: &S,
    id: u64,
    taken_at_ms: i64,
    checkpoint: &Checkpoint,
    outputs: Vec<SinkOutput>,
    retained: usize,
) -> Result<u64, EngineError> {
    let stored = StoredCheckpoint {
        id,
        taken_at_ms,
        state: encode_checkpoint(checkpoint),
    };
    storage.commit(&stored, outputs, retained)?;
    Ok(stored.state.len() as u64)
}

/// Checkpoints in memory; outputs are kept as they were committed, in
/// order, so that a test can read what an exactly-once sink published.
#[derive(Default)]
pub struct MemoryStorage {
    checkpoints: Mutex<Vec<StoredCheckpoint>>,
    pub published: Mutex<Vec<SinkOutput>>,
}

impl CheckpointStorage for MemoryStorage {
    fn latest(&self) -> Result<Option<StoredCheckpoint>, EngineError> {
        Ok(lock(&self.checkpoints).last().cloned())
    }

    fn get(&self, id: u64) -> Result<Option<StoredCheckpoint>, EngineError> {
        Ok(lock(&self.checkpoints).iter().find(|c| c.id == id).cloned())
    }

    fn ids(&self) -> Result<Vec<u64>, EngineError> {
        Ok(lock(&self.checkpoints).iter().map(|c| c.id).collect())
    }

    fn discard_after(&self, id: u64) -> Result<(), EngineError> {
        lock(&self.checkpoints).retain(|c| c.id <= id);
        Ok(())
    }

    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        let mut checkpoints = lock(&self.checkpoints);
        checkpoints.push(checkpoint.clone());
        let ids: Vec<u64> = checkpoints.iter().map(|c| c.id).collect();
        let keep_from = retained_from(&ids, retained, |id| {
            needs_from_stored(checkpoints.iter().find(|c| c.id == id).cloned())
        })?;
        checkpoints.retain(|c| c.id >= keep_from);
        lock(&self.published).extend(outputs);
        Ok(())
    }
}

/// The oldest checkpoint id to keep when the newest `retained` of `ids`
/// (ascending, the new one last) are kept: the oldest of them, or the
/// oldest any of them builds on. Chains only move forward, so the oldest
/// kept one builds on the oldest base.
pub fn retained_from(
    ids: &[u64],
    retained: usize,
    needs_from: impl Fn(u64) -> Result<Option<u64>, EngineError>,
) -> Result<u64, EngineError> {
    let Some(&oldest_kept) = ids.iter().rev().take(retained.max(1)).next_back() else {
        return Ok(0);
    };
    Ok(needs_from(oldest_kept)?.map_or(oldest_kept, |from| from.min(oldest_kept)))
}

/// The oldest checkpoint a stored one builds on, if it is there.
pub fn needs_from_stored(stored: Option<StoredCheckpoint>) -> Result<Option<u64>, EngineError> {
    match stored {
        Some(checkpoint) => crate::checkpoint::encoding::needs_from(&checkpoint.state),
        None => Ok(None),
    }
}
