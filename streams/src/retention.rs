//! Trimming by time: records older than a stream's retention are deleted,
//! and closed shards whose records are all gone leave the shard list, as
//! Kinesis drops them after the retention period.

use rocksdb::{ReadOptions, WriteBatch};

use crate::error::Result;
use crate::keys;
use crate::state::{CF_RECORDS, Inner};

impl Inner {
    /// Runs on the writer thread. Returns how many records were trimmed.
    pub fn trim_expired(&self) -> Result<u64> {
        let now = self.now();
        let cf = self.cf(CF_RECORDS)?;
        let mut batch = WriteBatch::default();
        let mut trimmed = 0u64;
        let mut emptied: Vec<(String, u32)> = Vec::new();
        {
            let registry = self.read();
            for entry in registry.streams.values() {
                let meta = &entry.meta;
                let cutoff = now.saturating_sub(u64::from(meta.retention_hours) * 3_600_000);
                for shard in &meta.shards {
                    let start = keys::record_key(meta.id, shard.index, 0);
                    let end = keys::shard_end(meta.id, shard.index);
                    let mut options = ReadOptions::default();
                    options.set_iterate_upper_bound(end.to_vec());
                    let mut cursor = self.db.raw_iterator_cf_opt(cf, options);
                    cursor.seek(start);
                    let mut keep_from = None;
                    // A block goes once all its records are past retention;
                    // readers skip the expired ones of a block that stays.
                    while let (Some(key), Some(value)) = (cursor.key(), cursor.value()) {
                        let summary = keys::block_summary(key, value).ok_or_else(|| {
                            crate::StreamsError::Internal("corrupt record block".into())
                        })?;
                        if summary.max_arrival_ms >= cutoff {
                            keep_from = Some(key.to_vec());
                            break;
                        }
                        trimmed += summary.records;
                        cursor.next();
                    }
                    cursor.status()?;
                    match keep_from {
                        Some(key) => batch.delete_range_cf(cf, &start[..], &key[..]),
                        None => {
                            batch.delete_range_cf(cf, start, end);
                            if shard.closed_ms.is_some_and(|closed| closed < cutoff) {
                                emptied.push((meta.name.clone(), shard.index));
                            }
                        }
                    }
                }
            }
        }
        if trimmed > 0 {
            self.write_synced(batch)?;
        }
        for (stream, index) in emptied {
            self.update(&stream, |entry, _| {
                entry.meta.shards.retain(|s| s.index != index);
                entry.shards.remove(&index);
                Ok(())
            })?;
        }
        Ok(trimmed)
    }
}
