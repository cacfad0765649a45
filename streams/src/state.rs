//! What the service holds in memory: every stream's metadata and, per
//! shard, its latest counter and throughput buckets. The metadata is
//! mirrored in `streams.meta`, written synced on every change.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};

use crate::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::keys;
use crate::limits::{ReadLimiter, WriteLimiter};
use crate::model::{CapacityMode, StreamMeta};

pub const CF_META: &str = "streams.meta";
pub const CF_RECORDS: &str = "streams.records";
const STREAM_PREFIX: &str = "stream/";
const NEXT_ID_KEY: &[u8] = b"next_stream_id";

pub struct ShardState {
    /// The newest durable counter in the shard, 0 when it has none. Only
    /// the writer thread stores it, after the WAL write is synced.
    pub last_counter: AtomicU64,
    pub last_arrival_ms: AtomicU64,
    pub write: Mutex<WriteLimiter>,
    pub read: Mutex<ReadLimiter>,
}

impl ShardState {
    pub fn new(config: &StreamsConfig, mode: CapacityMode, now_ms: u64) -> Self {
        let limits = config.limits.unwrap_or_default();
        ShardState {
            last_counter: AtomicU64::new(0),
            last_arrival_ms: AtomicU64::new(0),
            write: Mutex::new(WriteLimiter::new(&limits, write_multiplier(mode), now_ms)),
            read: Mutex::new(ReadLimiter::new(&limits, now_ms)),
        }
    }

    pub fn last_counter(&self) -> u64 {
        self.last_counter.load(Ordering::Acquire)
    }
}

/// On-demand streams take 4 MiB/s per shard, provisioned ones 1 MiB/s.
pub fn write_multiplier(mode: CapacityMode) -> u64 {
    match mode {
        CapacityMode::Provisioned => 1,
        CapacityMode::OnDemand => 4,
    }
}

pub struct StreamEntry {
    pub meta: StreamMeta,
    pub shards: HashMap<u32, Arc<ShardState>>,
}

#[derive(Default)]
pub struct Registry {
    pub streams: BTreeMap<String, StreamEntry>,
    pub next_id: u64,
}

pub struct Inner {
    pub db: Arc<DB>,
    pub config: StreamsConfig,
    registry: RwLock<Registry>,
    pub(crate) appends: crate::appends::AppendWaiters,
}

impl Inner {
    pub fn load(db: Arc<DB>, config: StreamsConfig) -> Result<Self> {
        let now = (config.clock)();
        let mut registry = Registry::default();
        {
            let meta_cf = cf(&db, CF_META)?;
            let records_cf = cf(&db, CF_RECORDS)?;
            if let Some(bytes) = db.get_cf(meta_cf, NEXT_ID_KEY)? {
                let bytes: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StreamsError::Internal("corrupt next_stream_id".into()))?;
                registry.next_id = u64::from_be_bytes(bytes);
            }
            let from = IteratorMode::From(STREAM_PREFIX.as_bytes(), Direction::Forward);
            for item in db.iterator_cf(meta_cf, from) {
                let (key, value) = item?;
                if !key.starts_with(STREAM_PREFIX.as_bytes()) {
                    break;
                }
                let meta: StreamMeta = serde_json::from_slice(&value)
                    .map_err(|e| StreamsError::Internal(format!("corrupt stream metadata: {e}")))?;
                let mut shards = HashMap::new();
                for shard in &meta.shards {
                    let state = ShardState::new(&config, meta.mode, now);
                    let end = keys::shard_end(meta.id, shard.index);
                    let mut last =
                        db.iterator_cf(records_cf, IteratorMode::From(&end, Direction::Reverse));
                    if let Some(item) = last.next() {
                        let (key, value) = item?;
                        let prefix = keys::record_key(meta.id, shard.index, 0);
                        if key.len() == keys::KEY_LEN
                            && key[..12] == prefix[..12]
                            && let Some(block) = keys::block_summary(&key, &value)
                        {
                            state
                                .last_counter
                                .store(block.last_counter, Ordering::Release);
                            state
                                .last_arrival_ms
                                .store(block.max_arrival_ms, Ordering::Release);
                        }
                    }
                    shards.insert(shard.index, Arc::new(state));
                }
                registry.next_id = registry.next_id.max(meta.id + 1);
                registry
                    .streams
                    .insert(meta.name.clone(), StreamEntry { meta, shards });
            }
        }
        Ok(Inner {
            db,
            config,
            registry: RwLock::new(registry),
            appends: Default::default(),
        })
    }

    pub fn now(&self) -> u64 {
        (self.config.clock)()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        cf(&self.db, name)
    }

    pub fn not_found(&self, name: &str) -> StreamsError {
        StreamsError::NotFound(format!(
            "Stream {name} under account {} not found.",
            self.config.account
        ))
    }

    pub fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            self.config.region, self.config.account
        )
    }

    /// Adds the metadata write (and the id counter) to `batch`.
    pub fn stage_meta(
        &self,
        batch: &mut WriteBatch,
        meta: &StreamMeta,
        next_id: u64,
    ) -> Result<()> {
        let cf = self.cf(CF_META)?;
        let value = serde_json::to_vec(meta)
            .map_err(|e| StreamsError::Internal(format!("encoding stream metadata: {e}")))?;
        batch.put_cf(cf, stream_key(&meta.name), value);
        batch.put_cf(cf, NEXT_ID_KEY, next_id.to_be_bytes());
        Ok(())
    }

    pub fn stage_meta_delete(&self, batch: &mut WriteBatch, name: &str) -> Result<()> {
        batch.delete_cf(self.cf(CF_META)?, stream_key(name));
        Ok(())
    }

    pub fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    /// Runs `change` on a stream's entry under the write lock and persists
    /// its metadata if `change` succeeds.
    pub fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut StreamEntry, u64) -> Result<T>,
    ) -> Result<T> {
        let now = self.now();
        let mut registry = self.write();
        let next_id = registry.next_id;
        let entry = registry
            .streams
            .get_mut(name)
            .ok_or_else(|| self.not_found(name))?;
        let backup = entry.meta.clone();
        let result = change(entry, now)?;
        let mut batch = WriteBatch::default();
        let persisted = self
            .stage_meta(&mut batch, &entry.meta, next_id)
            .and_then(|()| self.write_synced(batch));
        if let Err(error) = persisted {
            entry.meta = backup;
            return Err(error);
        }
        Ok(result)
    }
}

fn stream_key(name: &str) -> Vec<u8> {
    format!("{STREAM_PREFIX}{name}").into_bytes()
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| StreamsError::Internal(format!("column family {name} is not open")))
}
