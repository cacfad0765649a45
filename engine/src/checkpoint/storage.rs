//! Where completed checkpoints go. The server keeps them in its data dir
//! (RocksDB, next to the streams an exactly-once sink writes into, so
//! that both commit in one write); `MemoryStorage` keeps them in memory,
//! for embedded runs and tests that restore within one process.

use std::sync::Mutex;

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

    /// Makes `checkpoint` and `outputs` durable together, or neither; then
    /// forgets all but the newest `retained` checkpoints.
    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError>;
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
        Ok(self
            .checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .cloned())
    }

    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        checkpoints.push(checkpoint.clone());
        let excess = checkpoints.len().saturating_sub(retained.max(1));
        checkpoints.drain(..excess);
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(outputs);
        Ok(())
    }
}
