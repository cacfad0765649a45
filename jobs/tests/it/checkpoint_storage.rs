//! `jobs.checkpoints` in RocksDB: the newest `num-retained` checkpoints
//! are kept, and with them every older one their incremental states
//! build on, so that the latest always restores; a fresh handle on the
//! same store sees the same ids.

use runnel_engine::checkpoint::encoding::{
    Checkpoint, Entry, decode_checkpoint, encode_checkpoint,
};
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

/// A checkpoint whose one state is `bytes` long, a delta on `previous`.
fn large(bytes: usize, fill: u8, previous: Option<u64>) -> Checkpoint {
    Checkpoint {
        needs_from: previous,
        workers: vec![vec![(
            "AppendJoin#0".to_string(),
            Entry {
                previous,
                pieces: vec![vec![fill; bytes]],
            },
        )]],
    }
}

fn state_files(dir: &std::path::Path) -> Vec<String> {
    let job_dir = dir.join("jobs/checkpoints").join(hex("job"));
    let mut names: Vec<String> = std::fs::read_dir(job_dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn hex(job: &str) -> String {
    job.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn large_states_live_in_files_that_retention_removes_and_corruption_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = runnel_store::Store::open(dir.path(), &[CF_CHECKPOINTS]).unwrap();
    let storage = RocksCheckpoints::new(store.db().clone(), "job", None);
    let size = 3 << 20;
    let first = large(size, 1, None);
    let written = storage
        .commit_entries(1, 10, &first, Vec::new(), 1)
        .unwrap();
    assert_eq!(written as usize, encode_checkpoint(&first).len());
    assert_eq!(state_files(dir.path()), ["00000000000000000001.state"]);
    // A commit that crashed between its file and its value left these.
    let job_dir = dir.path().join("jobs/checkpoints").join(hex("job"));
    std::fs::write(job_dir.join("00000000000000000007.partial"), b"torn").unwrap();
    std::fs::write(job_dir.join("00000000000000000009.state"), b"never named").unwrap();
    // Through `commit` (the encoded form) too; a delta keeps 1.
    let second = large(size, 2, Some(1));
    storage
        .commit(
            &StoredCheckpoint {
                id: 2,
                taken_at_ms: 20,
                state: encode_checkpoint(&second),
            },
            Vec::new(),
            1,
        )
        .unwrap();
    assert_eq!(
        state_files(dir.path()),
        ["00000000000000000001.state", "00000000000000000002.state"]
    );
    // A fresh handle reads both back, byte for byte.
    let again = RocksCheckpoints::new(store.db().clone(), "job", None);
    let latest = again.latest().unwrap().unwrap();
    assert_eq!((latest.id, latest.taken_at_ms), (2, 20));
    assert_eq!(decode_checkpoint(&latest.state).unwrap(), second);
    assert_eq!(
        decode_checkpoint(&again.get(1).unwrap().unwrap().state).unwrap(),
        first
    );
    // A whole state again: 1 and 2 are no longer needed, nor their files.
    let third = large(size, 3, None);
    again.commit_entries(3, 30, &third, Vec::new(), 1).unwrap();
    assert_eq!(again.ids().unwrap(), vec![3]);
    assert_eq!(state_files(dir.path()), ["00000000000000000003.state"]);
    // One flipped byte, or a cut file, is an error, not a wrong state.
    let path = job_dir.join("00000000000000000003.state");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[size / 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let error = again.get(3).unwrap_err().to_string();
    assert!(error.contains("corrupt"), "{error}");
    bytes.truncate(size / 2);
    std::fs::write(&path, &bytes).unwrap();
    assert!(again.get(3).is_err());
    std::fs::remove_file(&path).unwrap();
    assert!(again.get(3).is_err());
    again.clear().unwrap();
    assert!(!job_dir.exists());
}

#[test]
fn a_large_encrypted_state_is_sealed_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = runnel_store::Store::open(dir.path(), &[CF_CHECKPOINTS]).unwrap();
    let key = Some([7u8; runnel_store::crypto::KEY_LEN]);
    let storage = RocksCheckpoints::new(store.db().clone(), "job", None).with_key(key);
    let checkpoint = large(2 << 20, b'x', None);
    storage
        .commit_entries(1, 10, &checkpoint, Vec::new(), 1)
        .unwrap();
    let file = dir
        .path()
        .join("jobs/checkpoints")
        .join(hex("job"))
        .join("00000000000000000001.state");
    let on_disk = std::fs::read(file).unwrap();
    assert!(on_disk.len() > 2 << 20);
    assert!(!on_disk.windows(64).any(|w| w == [b'x'; 64]));
    let read = storage.get(1).unwrap().unwrap();
    assert_eq!(decode_checkpoint(&read.state).unwrap(), checkpoint);
    let keyless = RocksCheckpoints::new(store.db().clone(), "job", None);
    assert!(keyless.get(1).is_err());
}
