//! SplitShard, MergeShards and UpdateShardCount. Each closes its parents at
//! their last durable counter and opens children that name them, so a
//! consumer that finishes a parent knows where to continue. They run on the
//! writer thread, so no put is in flight into a shard being closed.

use std::sync::Arc;

use crate::error::{Result, StreamsError};
use crate::hash::uniform_ranges;
use crate::model::{CapacityMode, ShardMeta, StreamStatus, shard_id};
use crate::state::{Inner, ShardState, StreamEntry};

impl Inner {
    pub fn split_shard(&self, stream: &str, shard: u32, new_start: u128) -> Result<()> {
        let total = self.open_shard_total();
        self.update(stream, |entry, now| {
            check_reshardable(self, entry, total + 1)?;
            split(self, entry, shard, new_start, now).map(|_| ())
        })
    }

    pub fn merge_shards(&self, stream: &str, shard: u32, adjacent: u32) -> Result<()> {
        self.update(stream, |entry, now| {
            check_reshardable(self, entry, 0)?;
            merge(self, entry, shard, adjacent, now).map(|_| ())
        })
    }

    /// UNIFORM_SCALING: reaches `target` evenly sized open shards through
    /// splits and merges, each with ordinary lineage. Returns the open
    /// shard count before.
    pub fn update_shard_count(&self, stream: &str, target: u32) -> Result<u32> {
        let total = self.open_shard_total();
        self.update(stream, |entry, now| {
            let current = entry.meta.open_shards().count() as u32;
            check_reshardable(self, entry, (total + target).saturating_sub(current))?;
            if target > current.saturating_mul(2) || target.saturating_mul(2) < current {
                return Err(StreamsError::InvalidArgument(format!(
                    "UpdateShardCount cannot scale stream {stream} from {current} to {target} shards: the target must be between half and double the current count."
                )));
            }
            let ranges = uniform_ranges(target);
            for &(boundary, _) in ranges.iter().skip(1) {
                let inside = entry
                    .meta
                    .open_shards()
                    .find(|s| s.start_hash < boundary && boundary <= s.end_hash)
                    .map(|s| s.index);
                if let Some(index) = inside {
                    split(self, entry, index, boundary, now)?;
                }
            }
            for &(start, end) in &ranges {
                loop {
                    let mut pieces: Vec<&ShardMeta> = entry
                        .meta
                        .open_shards()
                        .filter(|s| s.start_hash >= start && s.end_hash <= end)
                        .collect();
                    if pieces.len() < 2 {
                        break;
                    }
                    pieces.sort_by_key(|s| s.start_hash);
                    let (a, b) = (pieces[0].index, pieces[1].index);
                    merge(self, entry, a, b, now)?;
                }
            }
            Ok(current)
        })
    }

    pub fn open_shard_total(&self) -> u32 {
        self.read()
            .streams
            .values()
            .map(|e| e.meta.open_shards().count() as u32)
            .sum()
    }
}

fn check_reshardable(inner: &Inner, entry: &StreamEntry, open_after: u32) -> Result<()> {
    let meta = &entry.meta;
    if meta.mode == CapacityMode::OnDemand {
        return Err(StreamsError::Validation(format!(
            "Stream {} is in ON_DEMAND mode; resharding is only available in PROVISIONED mode.",
            meta.name
        )));
    }
    if meta.status != StreamStatus::Active {
        return Err(StreamsError::InUse(format!(
            "Stream {} under account {} not ACTIVE, instead in state {}",
            meta.name,
            inner.config.account,
            meta.status.as_str()
        )));
    }
    if open_after > inner.config.max_open_shards {
        return Err(StreamsError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard limit for the account is {}.",
            inner.config.account, inner.config.region, inner.config.max_open_shards
        )));
    }
    Ok(())
}

fn open_shard<'a>(inner: &Inner, entry: &'a StreamEntry, index: u32) -> Result<&'a ShardMeta> {
    let shard = entry.meta.shard(index).ok_or_else(|| {
        StreamsError::NotFound(format!(
            "Could not find shard {} in stream {} under account {}.",
            shard_id(index),
            entry.meta.name,
            inner.config.account
        ))
    })?;
    if !shard.is_open() {
        return Err(StreamsError::InvalidArgument(format!(
            "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
            shard.shard_id(),
            entry.meta.name,
            inner.config.account
        )));
    }
    Ok(shard)
}

fn close(entry: &mut StreamEntry, index: u32, now: u64) {
    let last = entry.shards.get(&index).map_or(0, |s| s.last_counter());
    if let Some(shard) = entry.meta.shards.iter_mut().find(|s| s.index == index) {
        shard.end_counter = Some(last.max(shard.start_counter));
        shard.closed_ms = Some(now);
    }
}

fn open_child(
    inner: &Inner,
    entry: &mut StreamEntry,
    range: (u128, u128),
    parent: u32,
    adjacent_parent: Option<u32>,
    now: u64,
) -> u32 {
    let index = entry.meta.next_shard_index;
    entry.meta.next_shard_index += 1;
    entry.meta.shards.push(ShardMeta {
        index,
        start_hash: range.0,
        end_hash: range.1,
        parent: Some(parent),
        adjacent_parent,
        start_counter: now.saturating_mul(1 << 20),
        end_counter: None,
        closed_ms: None,
    });
    entry.shards.insert(
        index,
        Arc::new(ShardState::new(&inner.config, entry.meta.mode, now)),
    );
    index
}

fn split(
    inner: &Inner,
    entry: &mut StreamEntry,
    index: u32,
    new_start: u128,
    now: u64,
) -> Result<(u32, u32)> {
    let parent = open_shard(inner, entry, index)?;
    let (start, end) = (parent.start_hash, parent.end_hash);
    if new_start <= start || new_start > end {
        return Err(StreamsError::InvalidArgument(format!(
            "NewStartingHashKey {new_start} used in SplitShard() on shard {} in stream {} under account {} is not both greater than the shard's StartingHashKey {start} and at most the shard's EndingHashKey {end}.",
            parent.shard_id(),
            entry.meta.name,
            inner.config.account
        )));
    }
    close(entry, index, now);
    let low = open_child(inner, entry, (start, new_start - 1), index, None, now);
    let high = open_child(inner, entry, (new_start, end), index, None, now);
    Ok((low, high))
}

fn merge(
    inner: &Inner,
    entry: &mut StreamEntry,
    index: u32,
    adjacent: u32,
    now: u64,
) -> Result<u32> {
    let a = open_shard(inner, entry, index)?;
    let b = open_shard(inner, entry, adjacent)?;
    let touching = a.end_hash.checked_add(1) == Some(b.start_hash)
        || b.end_hash.checked_add(1) == Some(a.start_hash);
    if !touching || index == adjacent {
        return Err(StreamsError::InvalidArgument(format!(
            "Shards {} and {} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
            a.shard_id(),
            b.shard_id(),
            entry.meta.name,
            inner.config.account
        )));
    }
    let range = (a.start_hash.min(b.start_hash), a.end_hash.max(b.end_hash));
    close(entry, index, now);
    close(entry, adjacent, now);
    Ok(open_child(inner, entry, range, index, Some(adjacent), now))
}
