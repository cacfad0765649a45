//! `jobs.checkpoints` in RocksDB: the newest `num-retained` checkpoints
//! are kept, and with them every older one their incremental states
//! build on, so that the latest always restores; a fresh handle on the
//! same store sees the same ids.

use runnel_engine::checkpoint::encoding::{Checkpoint, Entry, encode_checkpoint};
use runnel_engine::checkpoint::{CheckpointStorage, StoredCheckpoint};
use runnel_jobs::checkpoints::{CF_CHECKPOINTS, RocksCheckpoints};

/// A checkpoint with one state, a delta on `previous` (whose chain
/// starts at `needs_from`) or whole.
fn checkpoint(id: u64, previous: Option<u64>, needs_from: Option<u64>) -> StoredCheckpoint {
    let state = encode_checkpoint(&Checkpoint {
        needs_from,
        workers: vec![vec![(
            "GroupAggregate#0".to_string(),
            Entry {
                previous,
                pieces: vec![vec![id as u8]],
            },
        )]],
    });
    StoredCheckpoint {
        id,
        taken_at_ms: id as i64,
        state,
    }
}

#[test]
fn checkpoints_that_newer_ones_build_on_are_kept_until_none_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = runnel_store::Store::open(dir.path(), &[CF_CHECKPOINTS]).unwrap();
    let storage = RocksCheckpoints::new(store.db().clone(), "job", None);
    // 1 whole, 2 and 3 deltas on it, 4 whole, 5 a delta on 4.
    let chain = [
        (1, None, None),
        (2, Some(1), Some(1)),
        (3, Some(2), Some(1)),
        (4, None, None),
        (5, Some(4), Some(4)),
    ];
    let mut kept = Vec::new();
    for (id, previous, needs_from) in chain {
        storage
            .commit(&checkpoint(id, previous, needs_from), Vec::new(), 1)
            .unwrap();
        kept.push(storage.ids().unwrap());
    }
    assert_eq!(
        kept,
        vec![vec![1], vec![1, 2], vec![1, 2, 3], vec![4], vec![4, 5]]
    );
    // Two retained: the older of them (4) needs nothing older.
    storage
        .commit(&checkpoint(6, Some(5), Some(4)), Vec::new(), 2)
        .unwrap();
    assert_eq!(storage.ids().unwrap(), vec![4, 5, 6]);
    // A handle opened afresh reads the ids from the store, and the latest
    // with what it builds on.
    let again = RocksCheckpoints::new(store.db().clone(), "job", None);
    assert_eq!(again.ids().unwrap(), vec![4, 5, 6]);
    assert_eq!(again.latest().unwrap().map(|c| c.id), Some(6));
    assert!(again.get(4).unwrap().is_some());
    // Another job's checkpoints are its own.
    let other = RocksCheckpoints::new(store.db().clone(), "job2", None);
    assert!(other.ids().unwrap().is_empty());
    again.clear().unwrap();
    assert!(again.ids().unwrap().is_empty());
    let reopened = RocksCheckpoints::new(store.db().clone(), "job", None);
    assert!(reopened.ids().unwrap().is_empty());
}
