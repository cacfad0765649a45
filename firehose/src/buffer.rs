//! The durable buffer: every record of a delivery stream is a key
//! `<stream id><sequence>` in `firehose.records` until it is delivered.
//! One writer thread group-commits puts: it drains whatever puts are
//! queued, writes them in one synced WAL write and only then answers each
//! caller, so concurrent puts share one fsync.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use rocksdb::{DB, WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use crate::Clock;
use crate::error::{FirehoseError, Result};
use crate::state::CF_META;
use crate::stream::Entry;

pub const CF_RECORDS: &str = "firehose.records";
pub const KEY_LEN: usize = 16;
/// Bounds one group commit so a flood of puts is still answered steadily.
const MAX_COMMIT_BYTES: usize = 32 * 1024 * 1024;

pub fn record_key(stream: u64, seq: u64) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&stream.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub fn seq_of(key: &[u8]) -> Option<u64> {
    key.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// A record's data is sealed with the server's key (the stream had
/// encryption on when it arrived).
pub const FLAG_SEALED: u8 = 1;

/// A buffered record's value: its arrival time, its flags, then its bytes.
pub fn record_value(arrival_ms: u64, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(9 + data.len());
    value.extend_from_slice(&arrival_ms.to_be_bytes());
    value.push(flags);
    value.extend_from_slice(data);
    value
}

pub fn split_value(value: &[u8]) -> Option<(u64, u8, &[u8])> {
    let (arrival, rest) = value.split_at_checked(8)?;
    let (&flags, data) = rest.split_first()?;
    Some((u64::from_be_bytes(arrival.try_into().ok()?), flags, data))
}

/// Seals (or opens: the same operation) a record's data. Delivery streams
/// take their own half of the key-derivation space (the top bit of the id)
/// so no keystream is shared with a Kinesis stream of the same id; the
/// sequence is unique within the stream.
pub fn seal(key: &[u8; 32], stream: u64, seq: u64, data: &[u8]) -> Vec<u8> {
    runnel_streams::crypto::apply(key, stream | 1 << 63, 0, seq, data)
}

/// A buffered record's arrival and data, opened if it was sealed.
pub fn open_value<'a>(
    value: &'a [u8],
    key: Option<&[u8; 32]>,
    stream: u64,
    seq: u64,
) -> Result<(u64, std::borrow::Cow<'a, [u8]>)> {
    let (arrival, flags, data) = split_value(value)
        .ok_or_else(|| FirehoseError::Internal("a buffered record is malformed".into()))?;
    if flags & FLAG_SEALED == 0 {
        return Ok((arrival, std::borrow::Cow::Borrowed(data)));
    }
    let key = key.ok_or_else(|| {
        FirehoseError::Internal(
            "a buffered record is encrypted and no encryption key is configured (streams.encryption_key)".into(),
        )
    })?;
    Ok((
        arrival,
        std::borrow::Cow::Owned(seal(key, stream, seq, data)),
    ))
}

/// One record's outcome: its sequence in the buffer, or refused because
/// the buffer is full (the destination has been failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Buffered(u64),
    BufferFull,
}

pub type PutReply = oneshot::Sender<Result<Vec<Accepted>>>;

pub struct Put {
    pub entry: Arc<Entry>,
    pub records: Vec<Vec<u8>>,
    pub reply: PutReply,
    /// A source's position, written in the same batch as its records, and
    /// only with all of them: a restart neither skips nor repeats.
    pub position: Option<(Vec<u8>, Vec<u8>)>,
}

pub fn run_writer(
    db: Arc<DB>,
    clock: Clock,
    max_buffer_bytes: u64,
    key: Option<[u8; 32]>,
    puts: Receiver<Put>,
) {
    while let Ok(first) = puts.recv() {
        let (Some(cf), Some(meta)) = (db.cf_handle(CF_RECORDS), db.cf_handle(CF_META)) else {
            let _ = first.reply.send(Err(FirehoseError::Internal(format!(
                "column family {CF_RECORDS} or {CF_META} is not open"
            ))));
            continue;
        };
        let mut commit = Commit::default();
        let mut next = Some(first);
        while let Some(put) = next.take() {
            commit.stage([cf, meta], put, clock(), max_buffer_bytes, key.as_ref());
            if commit.batch.size_in_bytes() < MAX_COMMIT_BYTES {
                next = puts.try_recv().ok();
            }
        }
        commit.finish(&db);
    }
}

#[derive(Default)]
struct Commit {
    batch: WriteBatch,
    /// Per stream touched: bytes and the arrival of what this commit adds.
    added: Vec<(Arc<Entry>, u64, u64)>,
    replies: Vec<(PutReply, Result<Vec<Accepted>>)>,
}

impl Commit {
    fn stage(
        &mut self,
        [cf, meta]: [&rocksdb::ColumnFamily; 2],
        put: Put,
        now_ms: u64,
        max_buffer_bytes: u64,
        key: Option<&[u8; 32]>,
    ) {
        let Put {
            entry,
            records,
            reply,
            position,
        } = put;
        if entry.is_deleted() {
            let _ = reply.send(Err(FirehoseError::NotFound(entry.not_found_message())));
            return;
        }
        let buffered = entry.buffered_bytes() + self.pending_bytes(&entry);
        if let Some((key, value)) = position {
            let size: u64 = records.iter().map(|r| r.len() as u64).sum();
            if buffered + size > max_buffer_bytes && !records.is_empty() {
                let _ = reply.send(Ok(vec![Accepted::BufferFull; records.len()]));
                return;
            }
            self.batch.put_cf(meta, key, value);
        }
        let mut outcomes = Vec::with_capacity(records.len());
        let mut bytes = 0u64;
        for data in &records {
            if buffered + bytes >= max_buffer_bytes {
                outcomes.push(Accepted::BufferFull);
                continue;
            }
            let seq = entry.next_seq.fetch_add(1, Ordering::AcqRel);
            let value = match key.filter(|_| entry.is_encrypted()) {
                Some(secret) => {
                    record_value(now_ms, FLAG_SEALED, &seal(secret, entry.id, seq, data))
                }
                None => record_value(now_ms, 0, data),
            };
            self.batch.put_cf(cf, record_key(entry.id, seq), value);
            bytes += data.len() as u64;
            outcomes.push(Accepted::Buffered(seq));
        }
        if outcomes.iter().any(|o| matches!(o, Accepted::Buffered(_))) {
            match self
                .added
                .iter_mut()
                .find(|(e, _, _)| Arc::ptr_eq(e, &entry))
            {
                Some(slot) => slot.1 += bytes,
                None => self.added.push((entry, bytes, now_ms)),
            }
        }
        self.replies.push((reply, Ok(outcomes)));
    }

    fn pending_bytes(&self, entry: &Arc<Entry>) -> u64 {
        self.added
            .iter()
            .find(|(e, _, _)| Arc::ptr_eq(e, entry))
            .map_or(0, |slot| slot.1)
    }

    fn finish(self, db: &DB) {
        let Commit {
            batch,
            added,
            replies,
        } = self;
        let written = if batch.is_empty() {
            Ok(())
        } else {
            let mut options = WriteOptions::default();
            options.set_sync(true);
            db.write_opt(batch, &options)
        };
        match written {
            Ok(()) => {
                for (entry, bytes, arrival) in added {
                    entry.buffered(bytes, arrival);
                }
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "firehose buffer write failed");
                for (reply, _) in replies {
                    let _ = reply.send(Err(FirehoseError::Internal(format!(
                        "buffer write failed: {error}"
                    ))));
                }
            }
        }
    }
}
