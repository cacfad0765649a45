//! Shard iterators and GetRecords.

use std::sync::Arc;

use rocksdb::ReadOptions;

use crate::crypto;
use crate::error::{Result, StreamsError};
use crate::iterator::IteratorToken;
use crate::keys;
use crate::model::{ShardMeta, parse_sequence_number, shard_id};
use crate::state::{CF_RECORDS, Inner, ShardState};

/// GetRecords never returns more than this many bytes of data.
pub const MAX_GET_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_GET_RECORDS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtSequence(String),
    AfterSequence(String),
    /// Epoch milliseconds.
    AtTimestamp(u64),
}

#[derive(Debug, Clone)]
pub struct Record {
    pub sequence_number: String,
    pub arrival_ms: u64,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub encrypted: bool,
}

/// A record as `read_with` hands it over, borrowed from the store.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub shard: u32,
    pub counter: u64,
    pub arrival_ms: u64,
    pub partition_key: &'a [u8],
    pub data: &'a [u8],
    pub encrypted: bool,
}

impl RecordRef<'_> {
    pub fn sequence_number(&self) -> String {
        crate::model::sequence_number(self.shard, self.counter)
    }
}

/// Where a `read_with` ended: what GetRecords answers besides records.
pub struct ReadEnd {
    pub next_iterator: Option<String>,
    pub millis_behind_latest: u64,
    pub child_shards: Vec<ShardMeta>,
    pub continuation_sequence: String,
}

#[derive(Debug, Clone)]
pub struct GetRecordsOutput {
    pub records: Vec<Record>,
    /// None once a closed shard has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: u64,
    /// The shards that continue a closed shard, given at its end.
    pub child_shards: Vec<ShardMeta>,
    /// Where a subscription resumes: reading AFTER this sequence number
    /// continues exactly after what was returned.
    pub continuation_sequence: String,
}

struct Located {
    stream_id: u64,
    shard: ShardMeta,
    state: Arc<ShardState>,
    retention_ms: u64,
    children: Vec<ShardMeta>,
}

impl Inner {
    fn locate(&self, stream: &str, shard: u32, stream_id: Option<u64>) -> Result<Located> {
        let registry = self.read();
        let entry = registry
            .streams
            .get(stream)
            .filter(|e| stream_id.is_none_or(|id| id == e.meta.id))
            .ok_or_else(|| self.not_found(stream))?;
        let meta = entry
            .meta
            .shard(shard)
            .zip(entry.shards.get(&shard))
            .ok_or_else(|| {
                StreamsError::NotFound(format!(
                    "Shard {} in stream {stream} under account {} does not exist",
                    shard_id(shard),
                    self.config.account
                ))
            })?;
        Ok(Located {
            stream_id: entry.meta.id,
            shard: meta.0.clone(),
            state: meta.1.clone(),
            retention_ms: u64::from(entry.meta.retention_hours) * 3_600_000,
            children: entry.meta.children_of(shard).into_iter().cloned().collect(),
        })
    }

    pub fn shard_iterator(
        &self,
        stream: &str,
        shard: u32,
        start: &IteratorStart,
    ) -> Result<String> {
        let located = self.locate(stream, shard, None)?;
        let now = self.now();
        let in_shard = |text: &str| -> Result<u64> {
            let (owner, counter) = parse_sequence_number(text).ok_or_else(|| {
                StreamsError::InvalidArgument(format!(
                    "StartingSequenceNumber {text} used in GetShardIterator on shard {} in stream {stream} under account {} is invalid.",
                    shard_id(shard),
                    self.config.account
                ))
            })?;
            if owner != shard {
                return Err(StreamsError::InvalidArgument(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id(owner),
                    shard_id(shard)
                )));
            }
            Ok(counter)
        };
        let (position, min_arrival_ms) = match start {
            IteratorStart::TrimHorizon => (0, 0),
            IteratorStart::Latest => (
                located
                    .state
                    .last_counter()
                    .max(located.shard.end_counter.unwrap_or(0))
                    .saturating_add(1),
                0,
            ),
            IteratorStart::AtSequence(text) => (in_shard(text)?, 0),
            IteratorStart::AfterSequence(text) => (in_shard(text)?.saturating_add(1), 0),
            // Counters are never below arrival_ms << 20, so every record that
            // arrived at or after `at` is at or after this position.
            IteratorStart::AtTimestamp(at) => (at.saturating_mul(1 << 20).min(u64::MAX - 1), *at),
        };
        Ok(IteratorToken {
            stream_id: located.stream_id,
            shard,
            position,
            min_arrival_ms,
            issued_ms: now,
            stream_name: stream.to_string(),
        }
        .encode())
    }

    /// `limited` is false for enhanced fan-out reads, which have their own
    /// throughput and do not count against the shard's GetRecords budget.
    pub fn get_records(
        &self,
        iterator: &str,
        limit: usize,
        limited: bool,
    ) -> Result<GetRecordsOutput> {
        let mut records = Vec::new();
        let end = self.read_with(iterator, limit, limited, &mut |record| {
            records.push(Record {
                sequence_number: record.sequence_number(),
                arrival_ms: record.arrival_ms,
                partition_key: String::from_utf8_lossy(record.partition_key).into_owned(),
                data: record.data.to_vec(),
                encrypted: record.encrypted,
            });
        })?;
        Ok(GetRecordsOutput {
            records,
            next_iterator: end.next_iterator,
            millis_behind_latest: end.millis_behind_latest,
            child_shards: end.child_shards,
            continuation_sequence: end.continuation_sequence,
        })
    }

    /// GetRecords that hands each record to `visit` as it is read, with
    /// its data borrowed from the store, rather than collecting copies.
    pub fn read_with(
        &self,
        iterator: &str,
        limit: usize,
        limited: bool,
        // Generic, so that a reader's per-record work is inlined into the
        // block walk (a call through `dyn` per record showed in profiles).
        visit: &mut impl FnMut(RecordRef<'_>),
    ) -> Result<ReadEnd> {
        let token = IteratorToken::decode(iterator)
            .ok_or_else(|| StreamsError::InvalidArgument("Invalid ShardIterator.".into()))?;
        let now = self.now();
        let ttl = self.config.iterator_ttl_ms;
        if now.saturating_sub(token.issued_ms) > ttl {
            return Err(StreamsError::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ttl} milliseconds.",
                token.issued_ms, now
            )));
        }
        let located = self.locate(&token.stream_name, token.shard, Some(token.stream_id))?;
        if limited && self.config.limits.is_some() {
            let mut limiter = located.state.read.lock().unwrap_or_else(|e| e.into_inner());
            if !limiter.admit_call(now) {
                return Err(StreamsError::Throughput(format!(
                    "Rate exceeded for Shard - {} in stream {} under account {}.",
                    located.shard.shard_id(),
                    token.stream_name,
                    self.config.account
                )));
            }
        }

        let cutoff = now.saturating_sub(located.retention_ms);
        let cf = self.cf(CF_RECORDS)?;
        let mut options = ReadOptions::default();
        // A subscriber reads a shard once, front to back: its blocks would
        // only push others out of the block cache.
        options.fill_cache(limited);
        options.set_iterate_lower_bound(keys::record_key(token.stream_id, token.shard, 0).to_vec());
        options.set_iterate_upper_bound(keys::shard_end(token.stream_id, token.shard).to_vec());
        let mut cursor = self.db.raw_iterator_cf_opt(cf, options);
        // The block holding `position` is keyed at or before it.
        let start = keys::record_key(token.stream_id, token.shard, token.position);
        cursor.seek_for_prev(start);
        if !cursor.valid() {
            cursor.seek(start);
        }
        let corrupt = || StreamsError::Internal("corrupt record block".into());

        let limit = limit.clamp(1, MAX_GET_RECORDS);
        let mut count = 0usize;
        let mut bytes = 0usize;
        let mut position = token.position;
        let mut last_arrival = 0;
        // Stopped by the limits with records left in the block.
        let mut cut_short = false;
        'blocks: while let (Some(key), Some(value)) = (cursor.key(), cursor.value()) {
            for item in keys::block_records(key, value).ok_or_else(corrupt)? {
                let (counter, record) = item.ok_or_else(corrupt)?;
                if counter < position {
                    continue;
                }
                if count >= limit {
                    cut_short = true;
                    break 'blocks;
                }
                if record.arrival_ms >= cutoff && record.arrival_ms >= token.min_arrival_ms {
                    let size = record.data.len() + record.partition_key.len();
                    if count > 0 && bytes + size > MAX_GET_BYTES {
                        cut_short = true;
                        break 'blocks;
                    }
                    bytes += size;
                    let encrypted = record.flags & keys::FLAG_ENCRYPTED != 0;
                    let opened;
                    let data = match (&self.config.encryption_key, encrypted) {
                        (Some(key), true) => {
                            opened = crypto::apply(
                                key,
                                token.stream_id,
                                token.shard,
                                counter,
                                record.data,
                            );
                            &opened[..]
                        }
                        (None, true) => {
                            return Err(StreamsError::Internal(
                                "record is encrypted and no encryption key is configured".into(),
                            ));
                        }
                        _ => record.data,
                    };
                    last_arrival = record.arrival_ms;
                    count += 1;
                    visit(RecordRef {
                        shard: token.shard,
                        counter,
                        arrival_ms: record.arrival_ms,
                        partition_key: record.partition_key,
                        data,
                        encrypted,
                    });
                }
                position = counter.saturating_add(1);
            }
            cursor.next();
        }
        cursor.status()?;
        let more = cut_short || cursor.valid();
        drop(cursor);

        if limited && self.config.limits.is_some() {
            let mut limiter = located.state.read.lock().unwrap_or_else(|e| e.into_inner());
            limiter.charge_bytes(bytes as u64, now);
        }
        let millis_behind_latest = if more {
            now.saturating_sub(last_arrival.max(cutoff))
        } else {
            0
        };
        // A closed shard takes no more writes: once nothing is left, its
        // readers move on to its children.
        let at_end = !more && !located.shard.is_open();
        Ok(ReadEnd {
            next_iterator: (!at_end).then(|| {
                IteratorToken {
                    position,
                    issued_ms: now,
                    ..token
                }
                .encode()
            }),
            millis_behind_latest,
            child_shards: if at_end { located.children } else { Vec::new() },
            continuation_sequence: crate::model::sequence_number(
                token.shard,
                position.saturating_sub(1),
            ),
        })
    }
}
