//! Incremental checkpoints: an operator's entry may be a delta on its
//! entry in an earlier checkpoint, so restoring it means walking back to
//! a whole state and applying the deltas forward. Savepoints resolve every
//! chain into pieces of their own, so that they stand alone.

use std::collections::HashMap;

use crate::checkpoint::encoding::{self, Checkpoint, Entry};
use crate::checkpoint::storage::{CheckpointStorage, StoredCheckpoint};
use crate::error::EngineError;

/// One operator's state on one worker, ready to restore: the pieces in
/// order, and the checkpoint the chain starts at.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub pieces: Vec<Vec<u8>>,
    pub starts_at: u64,
}

/// Every worker's states of `stored`, chains followed back through
/// `storage`.
pub fn resolve(
    storage: &dyn CheckpointStorage,
    stored: &StoredCheckpoint,
) -> Result<Vec<Vec<(String, Resolved)>>, EngineError> {
    let latest = encoding::decode_checkpoint(&stored.state)?;
    let mut earlier: HashMap<u64, Checkpoint> = HashMap::new();
    let mut workers = Vec::with_capacity(latest.workers.len());
    for (worker, entries) in latest.workers.iter().enumerate() {
        let mut states = Vec::with_capacity(entries.len());
        for (id, entry) in entries {
            let mut pieces = entry.pieces.clone();
            let mut starts_at = stored.id;
            let mut previous = entry.previous;
            while let Some(at) = previous {
                if at >= starts_at {
                    return Err(corrupt(format!(
                        "state {id} of checkpoint {} builds on checkpoint {at}, which is not older",
                        stored.id
                    )));
                }
                let base = match earlier.get(&at) {
                    Some(base) => base,
                    None => {
                        let fetched = storage.get(at)?.ok_or_else(|| {
                            corrupt(format!(
                                "checkpoint {at}, which checkpoint {} builds on, is gone",
                                stored.id
                            ))
                        })?;
                        let decoded = encoding::decode_checkpoint(&fetched.state)?;
                        earlier.entry(at).or_insert(decoded)
                    }
                };
                let base_entry = entry_of(base, worker, id).ok_or_else(|| {
                    corrupt(format!(
                        "checkpoint {at} has no state {id} for checkpoint {} to build on",
                        stored.id
                    ))
                })?;
                let mut before = base_entry.pieces.clone();
                before.append(&mut pieces);
                pieces = before;
                starts_at = at;
                previous = base_entry.previous;
            }
            states.push((id.clone(), Resolved { pieces, starts_at }));
        }
        workers.push(states);
    }
    Ok(workers)
}

/// `stored` with every chain resolved into its own pieces: a checkpoint
/// that needs no other, as a savepoint must be.
pub fn standalone(
    storage: &dyn CheckpointStorage,
    stored: &StoredCheckpoint,
) -> Result<StoredCheckpoint, EngineError> {
    let workers = resolve(storage, stored)?
        .into_iter()
        .map(|states| {
            states
                .into_iter()
                .map(|(id, resolved)| {
                    let entry = Entry {
                        previous: None,
                        pieces: resolved.pieces,
                    };
                    (id, entry)
                })
                .collect()
        })
        .collect();
    Ok(StoredCheckpoint {
        state: encoding::encode_checkpoint(&Checkpoint {
            needs_from: None,
            workers,
        }),
        ..stored.clone()
    })
}

fn entry_of<'c>(checkpoint: &'c Checkpoint, worker: usize, id: &str) -> Option<&'c Entry> {
    checkpoint
        .workers
        .get(worker)?
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, entry)| entry)
}

fn corrupt(what: String) -> EngineError {
    EngineError::Runtime(format!("checkpoint is corrupt: {what}"))
}
