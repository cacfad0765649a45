//! The durable buffer: a delivery stream's records sit in
//! `firehose.records` until they are delivered, in blocks of up to 64 KiB
//! keyed `<stream id><first sequence>` (the stream log's block format, with
//! empty partition keys), so reading and writing cost one RocksDB entry per
//! block rather than per record. One writer thread group-commits puts: it
//! drains whatever puts are queued, writes them in one synced WAL write
//! and only then answers each caller, so concurrent puts share one fsync.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};
use runnel_streams::keys::{BLOCK_BYTES, BlockBuilder, block_records, block_summary};
use tokio::sync::oneshot;

use crate::Clock;
use crate::error::{FirehoseError, Result};
use crate::state::CF_META;
use crate::stream::Entry;

pub const CF_RECORDS: &str = "firehose.records";
pub const KEY_LEN: usize = 16;
/// Bounds one group commit so a flood of puts is still answered steadily.
const MAX_COMMIT_BYTES: usize = 32 * 1024 * 1024;

/// A record's data is sealed with the server's key (the stream had
/// encryption on when it arrived).
pub const FLAG_SEALED: u8 = runnel_streams::keys::FLAG_ENCRYPTED;

pub fn record_key(stream: u64, seq: u64) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&stream.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Seals (or opens: the same operation) a record's data. Delivery streams
/// take their own half of the key-derivation space (the top bit of the id)
/// so no keystream is shared with a Kinesis stream of the same id; the
/// sequence is unique within the stream.
pub fn seal(key: &[u8; 32], stream: u64, seq: u64, data: &[u8]) -> Vec<u8> {
    runnel_streams::crypto::apply(key, stream | 1 << 63, 0, seq, data)
}

/// A buffered record as a scan hands it over.
pub struct Buffered<'a> {
    pub seq: u64,
    pub arrival_ms: u64,
    /// Opened if it was sealed.
    pub data: Cow<'a, [u8]>,
}

fn malformed() -> FirehoseError {
    FirehoseError::Internal("a buffered record block is malformed".into())
}

/// How a scan hands over sealed records.
#[derive(Clone, Copy)]
pub enum Opening<'k> {
    /// Opened with the key; a sealed record without one is an error, so
    /// ciphertext is never delivered as data.
    Open(Option<&'k [u8; 32]>),
    /// As stored: for counting sizes and arrivals.
    Raw,
}

/// Visits `stream`'s buffered records from sequence `from` on, in order,
/// until `visit` says stop (false).
pub fn scan(
    db: &DB,
    stream: u64,
    from: u64,
    opening: Opening<'_>,
    mut visit: impl FnMut(Buffered<'_>) -> Result<bool>,
) -> Result<()> {
    let cf = crate::state::cf(db, CF_RECORDS)?;
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(record_key(stream, 0).to_vec());
    options.set_iterate_upper_bound(record_key(stream + 1, 0).to_vec());
    let mut cursor = db.raw_iterator_cf_opt(cf, options);
    // The block holding `from` is keyed at or before it.
    let start = record_key(stream, from);
    cursor.seek_for_prev(start);
    if !cursor.valid() {
        cursor.seek(start);
    }
    while let (Some(block_key), Some(value)) = (cursor.key(), cursor.value()) {
        for record in block_records(block_key, value).ok_or_else(malformed)? {
            let (seq, record) = record.ok_or_else(malformed)?;
            if seq < from {
                continue;
            }
            let data = match opening {
                Opening::Open(key) if record.flags & FLAG_SEALED != 0 => {
                    let key = key.ok_or_else(|| {
                        FirehoseError::Internal(
                            "a buffered record is encrypted and no encryption key is configured (streams.encryption_key)".into(),
                        )
                    })?;
                    Cow::Owned(seal(key, stream, seq, record.data))
                }
                _ => Cow::Borrowed(record.data),
            };
            let more = visit(Buffered {
                seq,
                arrival_ms: record.arrival_ms,
                data,
            })?;
            if !more {
                return Ok(());
            }
        }
        cursor.next();
    }
    cursor.status()?;
    Ok(())
}

/// The key below which every block is delivered once records through
/// `last_seq` are: the start of the block holding `last_seq + 1` if one
/// does (that block is kept), else `last_seq + 1`.
pub fn delivered_bound(db: &DB, stream: u64, last_seq: u64) -> Result<[u8; KEY_LEN]> {
    let cf = crate::state::cf(db, CF_RECORDS)?;
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(record_key(stream, 0).to_vec());
    let mut cursor = db.raw_iterator_cf_opt(cf, options);
    let next = record_key(stream, last_seq + 1);
    cursor.seek_for_prev(next);
    if let (Some(block_key), Some(value)) = (cursor.key(), cursor.value())
        && let Some(summary) = block_summary(block_key, value)
        && summary.last_counter > last_seq
    {
        let mut bound = [0u8; KEY_LEN];
        bound.copy_from_slice(block_key.get(..KEY_LEN).ok_or_else(malformed)?);
        return Ok(bound);
    }
    cursor.status()?;
    Ok(next)
}

/// One record's outcome: its sequence in the buffer, or refused because
/// the buffer is full (the destination has been failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Buffered(u64),
    BufferFull,
}

pub type PutReply = oneshot::Sender<Result<Vec<Accepted>>>;

/// Records for the writer: to one buffer, or (when records move from a
/// stream's buffer to its partitions') to several in one write. The reply
/// answers each record in order, part after part.
pub struct Put {
    pub parts: Vec<Part>,
    pub reply: PutReply,
    /// A source's position, written in the same batch as its records, and
    /// only with all of them: a restart neither skips nor repeats.
    pub position: Option<(Vec<u8>, Vec<u8>)>,
}

pub struct Part {
    pub entry: Arc<Entry>,
    pub records: Vec<Vec<u8>>,
    /// Each record's arrival when it arrived earlier (a record moved to
    /// its partition keeps its own); empty: the time of the write.
    pub arrivals: Vec<u64>,
}

impl Put {
    pub fn new(
        entry: Arc<Entry>,
        records: Vec<Vec<u8>>,
        reply: PutReply,
        position: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Put {
        Put {
            parts: vec![Part {
                entry,
                records,
                arrivals: Vec::new(),
            }],
            reply,
            position,
        }
    }
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
        commit.seal_blocks(cf);
        commit.finish(&db);
    }
}

#[derive(Default)]
struct Commit {
    batch: WriteBatch,
    /// Each stream's block being filled: its id, first sequence, block.
    filling: Vec<(u64, u64, BlockBuilder)>,
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
            parts,
            reply,
            position,
        } = put;
        if let Some(part) = parts.iter().find(|part| part.entry.is_deleted()) {
            let _ = reply.send(Err(FirehoseError::NotFound(part.entry.not_found_message())));
            return;
        }
        let total: usize = parts.iter().map(|part| part.records.len()).sum();
        if let Some((key, value)) = position {
            let over = parts.iter().any(|part| {
                let size: u64 = part.records.iter().map(|r| r.len() as u64).sum();
                let buffered = part.entry.buffered_bytes() + self.pending_bytes(&part.entry);
                buffered + size > max_buffer_bytes && !part.records.is_empty()
            });
            if over {
                let _ = reply.send(Ok(vec![Accepted::BufferFull; total]));
                return;
            }
            self.batch.put_cf(meta, key, value);
        }
        let mut outcomes = Vec::with_capacity(total);
        for part in parts {
            self.stage_part(cf, part, now_ms, max_buffer_bytes, key, &mut outcomes);
        }
        self.replies.push((reply, Ok(outcomes)));
    }

    fn stage_part(
        &mut self,
        cf: &rocksdb::ColumnFamily,
        part: Part,
        now_ms: u64,
        max_buffer_bytes: u64,
        key: Option<&[u8; 32]>,
        outcomes: &mut Vec<Accepted>,
    ) {
        let Part {
            entry,
            records,
            arrivals,
        } = part;
        let buffered = entry.buffered_bytes() + self.pending_bytes(&entry);
        let mut bytes = 0u64;
        let mut oldest = u64::MAX;
        let mut any = false;
        for (i, data) in records.iter().enumerate() {
            let arrival = arrivals.get(i).copied().unwrap_or(now_ms);
            if buffered + bytes >= max_buffer_bytes {
                outcomes.push(Accepted::BufferFull);
                continue;
            }
            let seq = entry.next_seq.fetch_add(1, Ordering::AcqRel);
            let slot = match self.filling.iter().position(|(id, _, _)| *id == entry.id) {
                Some(slot) => slot,
                None => {
                    self.filling.push((entry.id, seq, BlockBuilder::default()));
                    self.filling.len() - 1
                }
            };
            let block = &mut self.filling[slot].2;
            match key.filter(|_| entry.is_encrypted()) {
                Some(secret) => block.push(
                    seq,
                    arrival,
                    FLAG_SEALED,
                    "",
                    &seal(secret, entry.id, seq, data),
                ),
                None => block.push(seq, arrival, 0, "", data),
            }
            if block.len() >= BLOCK_BYTES {
                let (id, first, full) = self.filling.swap_remove(slot);
                self.batch.put_cf(cf, record_key(id, first), full.finish());
            }
            bytes += data.len() as u64;
            oldest = oldest.min(arrival);
            any = true;
            outcomes.push(Accepted::Buffered(seq));
        }
        if any {
            match self
                .added
                .iter_mut()
                .find(|(e, _, _)| Arc::ptr_eq(e, &entry))
            {
                Some(slot) => {
                    slot.1 += bytes;
                    slot.2 = slot.2.min(oldest);
                }
                None => self.added.push((entry, bytes, oldest)),
            }
        }
    }

    /// Puts every block still being filled into the batch.
    fn seal_blocks(&mut self, cf: &rocksdb::ColumnFamily) {
        for (id, first, block) in self.filling.drain(..) {
            if !block.is_empty() {
                self.batch.put_cf(cf, record_key(id, first), block.finish());
            }
        }
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
            ..
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
