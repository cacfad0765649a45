//! The group-commit writer: one thread owns every change to the record log
//! and to shard layouts. It drains whatever puts are queued, assigns their
//! sequence numbers, writes them all in one synced WAL write and only then
//! answers each caller, so concurrent puts share one fsync.
//!
//! Resharding and stream creation/deletion run on the same thread between
//! batches, so a shard is never closed while a put into it is in flight.
//!
//! A transaction (`Job::Commit`) is written on its own: the group batch
//! pending before it is committed first, so that a transaction that fails
//! can neither drop nor half-write other callers' puts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use rocksdb::WriteBatch;
use tokio::sync::oneshot;

use crate::crypto;
use crate::error::{Result, StreamsError};
use crate::hash::partition_hash;
use crate::keys;
use crate::model::StreamStatus;
use crate::state::{CF_RECORDS, Inner, ShardState};

/// Bounds one group commit so a flood of puts still gets answered steadily.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<u128>,
    pub data: Vec<u8>,
}

/// Where a record went, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written {
        shard: u32,
        counter: u64,
    },
    /// The shard's write limit was reached; the record was not written.
    Throttled {
        message: String,
    },
}

/// A write to another column family of the same store, made in the same
/// RocksDB write as a transaction's records (a job's checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraWrite {
    pub column_family: String,
    pub key: Vec<u8>,
    /// `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

pub type PutReply = oneshot::Sender<Result<Vec<PutOutcome>>>;

pub enum Job {
    Put {
        stream: String,
        records: Vec<PutEntry>,
        reply: PutReply,
    },
    /// Records of any streams and extra writes, all in one synced write or
    /// none of them.
    Commit {
        puts: Vec<(String, Vec<PutEntry>)>,
        extra: Vec<ExtraWrite>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Runs on the writer thread after the puts queued before it are durable.
    Control(Box<dyn FnOnce(&Inner) + Send>),
}

/// Whether a record may be refused by its shard's write limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Throttle {
    /// A client's put.
    ByLimits,
    /// Records a job already produced (a checkpoint's): they must all go in.
    Never,
}

pub fn run(inner: Arc<Inner>, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = GroupCommit::default();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Put {
                    stream,
                    records,
                    reply,
                } => batch.add(&inner, &stream, records, reply),
                Job::Commit { puts, extra, reply } => {
                    batch.commit(&inner);
                    let _ = reply.send(transaction(&inner, puts, &extra));
                }
                Job::Control(run) => {
                    batch.commit(&inner);
                    run(&inner);
                    inner.appends.wake(None);
                }
            }
            if batch.bytes < MAX_BATCH_BYTES {
                next = jobs.try_recv().ok();
            }
        }
        batch.commit(&inner);
    }
}

#[derive(Default)]
struct GroupCommit {
    /// Finished blocks, written in key order at commit: RocksDB's memtable
    /// inserts neighbouring keys far faster than keys alternating between
    /// shards.
    staged: Vec<([u8; keys::KEY_LEN], Vec<u8>)>,
    /// Each shard's block being filled, with its first counter.
    filling: HashMap<(u64, u32), (u64, keys::BlockBuilder)>,
    bytes: usize,
    /// Counters assigned in this batch but not yet durable.
    assigned: Assigned,
    replies: Vec<(PutReply, Result<Vec<PutOutcome>>)>,
}

impl GroupCommit {
    fn add(&mut self, inner: &Inner, stream: &str, records: Vec<PutEntry>, reply: PutReply) {
        let result = self.stage(inner, stream, records, Throttle::ByLimits);
        self.replies.push((reply, result));
    }

    fn stage(
        &mut self,
        inner: &Inner,
        stream: &str,
        records: Vec<PutEntry>,
        throttle: Throttle,
    ) -> Result<Vec<PutOutcome>> {
        let registry = inner.read();
        let entry = registry
            .streams
            .get(stream)
            .ok_or_else(|| inner.not_found(stream))?;
        let meta = &entry.meta;
        if matches!(meta.status, StreamStatus::Creating | StreamStatus::Deleting) {
            return Err(inner.not_found(stream));
        }
        let max_record = meta.max_record_bytes();
        if let Some(i) = records
            .iter()
            .position(|r| r.data.len() + r.partition_key.len() > max_record)
        {
            return Err(StreamsError::RecordTooLarge {
                index: i,
                max_bytes: max_record,
            });
        }
        let now = inner.now();
        let floor = now.saturating_mul(1 << 20);
        let encryption = match (&meta.encryption_key_id, &inner.config.encryption_key) {
            (Some(_), Some(key)) => Some(key),
            _ => None,
        };
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let hash = record
                .explicit_hash_key
                .unwrap_or_else(|| partition_hash(&record.partition_key));
            let Some(shard) = meta.open_shards().find(|s| s.contains(hash)) else {
                return Err(StreamsError::Internal(format!(
                    "no open shard of {stream} covers hash key {hash}"
                )));
            };
            let Some(state) = entry.shards.get(&shard.index) else {
                return Err(StreamsError::Internal(format!(
                    "shard {} of {stream} has no state",
                    shard.index
                )));
            };
            let size = (record.data.len() + record.partition_key.len()) as u64;
            if throttle == Throttle::ByLimits && inner.config.limits.is_some() {
                let mut limiter = state.write.lock().unwrap_or_else(|e| e.into_inner());
                if !limiter.admit(size, now) {
                    outcomes.push(PutOutcome::Throttled {
                        message: format!(
                            "Rate exceeded for shard {} in stream {stream} under account {}.",
                            shard.shard_id(),
                            inner.config.account
                        ),
                    });
                    continue;
                }
            }
            let slot = self
                .assigned
                .entry((meta.id, shard.index))
                .or_insert_with(|| (state.clone(), state.last_counter(), 0));
            let counter = (slot.1 + 1).max(floor).max(shard.start_counter);
            slot.1 = counter;
            slot.2 = now;
            let (_, block) = self
                .filling
                .entry((meta.id, shard.index))
                .or_insert_with(|| (counter, keys::BlockBuilder::default()));
            let before = block.len();
            match encryption {
                Some(key) => {
                    let sealed = crypto::apply(key, meta.id, shard.index, counter, &record.data);
                    block.push(
                        counter,
                        now,
                        keys::FLAG_ENCRYPTED,
                        &record.partition_key,
                        &sealed,
                    );
                }
                None => block.push(counter, now, 0, &record.partition_key, &record.data),
            }
            self.bytes += block.len() - before;
            if block.len() >= keys::BLOCK_BYTES
                && let Some((first, full)) = self.filling.remove(&(meta.id, shard.index))
            {
                self.staged
                    .push((keys::record_key(meta.id, shard.index, first), full.finish()));
            }
            outcomes.push(PutOutcome::Written {
                shard: shard.index,
                counter,
            });
        }
        Ok(outcomes)
    }

    /// The staged blocks, finished and in key order.
    fn take_blocks(&mut self) -> Vec<([u8; keys::KEY_LEN], Vec<u8>)> {
        let mut staged = std::mem::take(&mut self.staged);
        for ((stream, shard), (first, block)) in self.filling.drain() {
            if !block.is_empty() {
                staged.push((keys::record_key(stream, shard, first), block.finish()));
            }
        }
        self.bytes = 0;
        staged.sort_unstable_by_key(|entry| entry.0);
        staged
    }

    /// Makes the staged records durable, publishes their counters to
    /// readers and answers every caller.
    fn commit(&mut self, inner: &Inner) {
        let staged = self.take_blocks();
        let assigned = std::mem::take(&mut self.assigned);
        let replies = std::mem::take(&mut self.replies);
        let written = if staged.is_empty() {
            Ok(())
        } else {
            write(inner, &staged, &[])
        };
        match written {
            Ok(()) => {
                publish(inner, assigned);
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "stream write failed");
                for (reply, result) in replies {
                    let _ = reply.send(result.and(Err(StreamsError::Internal(format!(
                        "write failed: {error}"
                    )))));
                }
            }
        }
    }
}

/// Counters assigned in a batch, per shard: its state, the last counter
/// and the arrival time.
type Assigned = HashMap<(u64, u32), (Arc<ShardState>, u64, u64)>;

/// One synced write of record blocks and extra writes.
fn write(
    inner: &Inner,
    blocks: &[([u8; keys::KEY_LEN], Vec<u8>)],
    extra: &[ExtraWrite],
) -> Result<()> {
    let records = inner.cf(CF_RECORDS)?;
    let mut batch = WriteBatch::default();
    for (key, value) in blocks {
        batch.put_cf(records, key, value);
    }
    for write in extra {
        let cf = inner.cf(&write.column_family)?;
        match &write.value {
            Some(value) => batch.put_cf(cf, &write.key, value),
            None => batch.delete_cf(cf, &write.key),
        }
    }
    inner.write_synced(batch)
}

/// Once a write is durable: readers may see its counters, and are woken.
fn publish(inner: &Inner, assigned: Assigned) {
    let mut appended: Vec<u64> = Vec::new();
    for ((stream_id, _), (state, counter, arrival)) in assigned {
        state.last_arrival_ms.store(arrival, Ordering::Release);
        state.last_counter.store(counter, Ordering::Release);
        if !appended.contains(&stream_id) {
            appended.push(stream_id);
        }
    }
    if !appended.is_empty() {
        inner.appends.wake(Some(&appended));
    }
}

/// Stages every record of `puts` unthrottled and writes them with `extra`
/// in one synced write. Staging only assigns counters in a batch of its
/// own; shard states change only once the write is durable, so a failure
/// anywhere leaves nothing behind.
fn transaction(
    inner: &Inner,
    puts: Vec<(String, Vec<PutEntry>)>,
    extra: &[ExtraWrite],
) -> Result<()> {
    let mut batch = GroupCommit::default();
    for (stream, records) in puts {
        batch.stage(inner, &stream, records, Throttle::Never)?;
    }
    let blocks = batch.take_blocks();
    if blocks.is_empty() && extra.is_empty() {
        return Ok(());
    }
    write(inner, &blocks, extra)?;
    publish(inner, std::mem::take(&mut batch.assigned));
    Ok(())
}
