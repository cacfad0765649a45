//! What a durable write costs on this machine's disk, and how much grouping
//! buys: the numbers behind Streams' group commit. Prints a table.
//!
//! cargo bench -p runnel-store --bench store

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::{WriteBatch, WriteOptions};
use runnel_store::Store;

const RECORD: [u8; 100] = [7u8; 100];
const RUN_FOR: Duration = Duration::from_secs(2);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(dir.path(), &["bench.records"]).expect("open store"));
    println!(
        "{:<44} {:>14} {:>10}",
        "100-byte records into RocksDB", "records/s", "MB/s"
    );
    for (name, sync, batch, threads) in [
        ("unsynced put, 1 thread", false, 1, 1),
        ("synced put, 1 thread", true, 1, 1),
        ("synced put, 8 threads (RocksDB group commit)", true, 1, 8),
        ("synced batch of 100, 1 thread", true, 100, 1),
        ("synced batch of 500, 1 thread", true, 500, 1),
        ("synced batch of 500, 4 threads", true, 500, 4),
    ] {
        let rate = measure(&store, sync, batch, threads);
        println!(
            "{name:<44} {rate:>14.0} {:>10.1}",
            rate * RECORD.len() as f64 / 1e6
        );
    }
}

fn measure(store: &Arc<Store>, sync: bool, batch: usize, threads: usize) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let store = store.clone();
            std::thread::spawn(move || {
                let cf = store.cf("bench.records").expect("column family");
                let mut options = WriteOptions::default();
                options.set_sync(sync);
                let mut written = 0u64;
                while started.elapsed() < RUN_FOR {
                    let mut writes = WriteBatch::default();
                    for _ in 0..batch {
                        let key = [(thread as u64).to_be_bytes(), written.to_be_bytes()].concat();
                        writes.put_cf(cf, key, RECORD);
                        written += 1;
                    }
                    store.db().write_opt(writes, &options).expect("write");
                }
                written
            })
        })
        .collect();
    let total: u64 = workers
        .into_iter()
        .map(|w| w.join().expect("bench thread"))
        .sum();
    total as f64 / started.elapsed().as_secs_f64()
}
