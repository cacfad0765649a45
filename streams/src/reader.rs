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
        options.set_iterate_upper_bound(keys::shard_end(token.stream_id, token.shard).to_vec());
        let mut cursor = self.db.raw_iterator_cf_opt(cf, options);
        cursor.seek(keys::record_key(
            token.stream_id,
            token.shard,
            token.position,
        ));

        let limit = limit.clamp(1, MAX_GET_RECORDS);
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut position = token.position;
        let mut last_arrival = 0;
        while records.len() < limit {
            let (Some(key), Some(value)) = (cursor.key(), cursor.value()) else {
                break;
            };
            let counter = keys::key_counter(key)
                .ok_or_else(|| StreamsError::Internal("corrupt record key".into()))?;
            let record = keys::decode_value(value)
                .ok_or_else(|| StreamsError::Internal("corrupt record value".into()))?;
            if record.arrival_ms >= cutoff && record.arrival_ms >= token.min_arrival_ms {
                let size = record.data.len() + record.partition_key.len();
                if !records.is_empty() && bytes + size > MAX_GET_BYTES {
                    break;
                }
                bytes += size;
                let encrypted = record.flags & keys::FLAG_ENCRYPTED != 0;
                let data = match (&self.config.encryption_key, encrypted) {
                    (Some(key), true) => {
                        crypto::apply(key, token.stream_id, token.shard, counter, record.data)
                    }
                    (None, true) => {
                        return Err(StreamsError::Internal(
                            "record is encrypted and no encryption key is configured".into(),
                        ));
                    }
                    _ => record.data.to_vec(),
                };
                last_arrival = record.arrival_ms;
                records.push(Record {
                    sequence_number: crate::model::sequence_number(token.shard, counter),
                    arrival_ms: record.arrival_ms,
                    partition_key: record.partition_key.to_string(),
                    data,
                    encrypted,
                });
            }
            position = counter.saturating_add(1);
            cursor.next();
        }
        cursor.status()?;
        let more = cursor.valid();
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
        Ok(GetRecordsOutput {
            records,
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
