//! Integration tests of the Firehose service over a real RocksDB store,
//! delivering to a local bucket directory.

#![allow(clippy::unwrap_used, reason = "tests fail on unexpected errors")]

mod buffering;
mod convert;
mod http_endpoint;
mod objects;
mod partitioning;
mod postgres;
mod processing;
mod redshift;
mod search;
mod splunk;
mod stream_source;

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use runnel_firehose::{CreateSpec, Firehose, FirehoseConfig};
use runnel_store::Store;
use serde_json::Value;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Option<Store>,
}

#[allow(
    clippy::new_without_default,
    reason = "a fixture is made, not defaulted"
)]
impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("data"), runnel_firehose::COLUMN_FAMILIES).unwrap();
        Fixture {
            dir,
            store: Some(store),
        }
    }

    pub fn buckets(&self) -> PathBuf {
        self.dir.path().join("buckets")
    }

    pub fn open(&self) -> Firehose {
        let db = self.store.as_ref().unwrap().db().clone();
        Firehose::open(db, FirehoseConfig::new(self.buckets())).unwrap()
    }

    /// Closes and reopens the data dir, as a restarted server does: once
    /// the dropped service's delivery tasks have let go of it.
    pub async fn reopen_store(&mut self) {
        drop(self.store.take());
        let path = self.dir.path().join("data");
        for _ in 0..250 {
            match Store::open(&path, runnel_firehose::COLUMN_FAMILIES) {
                Ok(store) => {
                    self.store = Some(store);
                    return;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("the data dir was not released within 5 s");
    }
}

pub fn create(firehose: &Firehose, name: &str, destination: Value) {
    firehose
        .create(CreateSpec {
            name: name.into(),
            stream_type: "DirectPut".into(),
            destination,
            destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
}

/// Every object under `root`, as (key relative to the bucket root, bytes),
/// in key order.
pub fn objects(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.to_string_lossy().contains("#") {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.push((key, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

pub fn records(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut record = format!("{i:08}:").into_bytes();
            record.resize(size - 1, b'x');
            record.push(b'\n');
            record
        })
        .collect()
}
