//! A job's checkpoints in RocksDB (`jobs.checkpoints`, keyed by job id and
//! checkpoint id). In the server the write goes through its streams'
//! writer (`Publish`), so that the records an exactly-once sink held back
//! land in the same write batch as the checkpoint that covers them.

use std::sync::Arc;

use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use runnel_engine::EngineError;

use crate::at_rest;
use runnel_engine::checkpoint::encoding::{Reader, put_bytes, put_i64};
use runnel_engine::checkpoint::{CheckpointStorage, SinkOutput, StoredCheckpoint};

pub const CF_CHECKPOINTS: &str = "jobs.checkpoints";

/// A key written or (`None`) deleted in `jobs.checkpoints`.
pub type CheckpointWrite = (Vec<u8>, Option<Vec<u8>>);

/// Writes checkpoint keys together with sink outputs, atomically.
pub trait Publish: Send + Sync {
    fn publish(&self, outputs: Vec<SinkOutput>, writes: Vec<CheckpointWrite>)
    -> Result<(), String>;
}

pub struct RocksCheckpoints {
    db: Arc<DB>,
    job: String,
    publish: Option<Arc<dyn Publish>>,
    /// State is encrypted at rest under it (`at_rest`).
    key: Option<at_rest::Key>,
}

impl RocksCheckpoints {
    /// `publish` is how outputs reach streams; without it, a checkpoint
    /// with outputs fails (there is no stream to put them in).
    pub fn new(db: Arc<DB>, job: &str, publish: Option<Arc<dyn Publish>>) -> Self {
        RocksCheckpoints {
            db,
            job: job.to_string(),
            publish,
            key: None,
        }
    }

    /// Encrypts the state it writes under `key`.
    pub fn with_key(mut self, key: Option<at_rest::Key>) -> Self {
        self.key = key;
        self
    }

    fn prefix(&self) -> Vec<u8> {
        let mut prefix = self.job.as_bytes().to_vec();
        prefix.push(0);
        prefix
    }

    fn key(&self, id: u64) -> Vec<u8> {
        let mut key = self.prefix();
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    fn cf(&self) -> Result<&rocksdb::ColumnFamily, EngineError> {
        self.db.cf_handle(CF_CHECKPOINTS).ok_or_else(|| {
            storage_error(format!(
                "the data dir has no column family {CF_CHECKPOINTS}"
            ))
        })
    }

    /// The ids of this job's checkpoints, oldest first.
    pub fn ids(&self) -> Result<Vec<u64>, EngineError> {
        let prefix = self.prefix();
        let mut ids = Vec::new();
        for entry in self
            .db
            .iterator_cf(self.cf()?, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, _) = entry.map_err(storage_error)?;
            let Some(id) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let id: [u8; 8] = id
                .try_into()
                .map_err(|_| storage_error("a checkpoint key is malformed"))?;
            ids.push(u64::from_be_bytes(id));
        }
        Ok(ids)
    }

    pub fn get(&self, id: u64) -> Result<Option<StoredCheckpoint>, EngineError> {
        let Some(value) = self
            .db
            .get_cf(self.cf()?, self.key(id))
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        let mut reader = Reader::new(&value);
        let taken_at_ms = reader.i64()?;
        let stored = reader.bytes()?;
        let state = at_rest::open(self.key.as_ref(), stored, &mut reader).map_err(storage_error)?;
        Ok(Some(StoredCheckpoint {
            id,
            taken_at_ms,
            state,
        }))
    }

    /// Makes `checkpoint` (a savepoint) this job's latest, to start from.
    /// Written directly, not through `Publish` (which may block on a
    /// writer thread): a savepoint has no outputs to publish.
    pub fn seed(&self, checkpoint: &StoredCheckpoint) -> Result<(), EngineError> {
        self.clear()?;
        self.write_locally(vec![(
            self.key(checkpoint.id),
            Some(self.encode(checkpoint)),
        )])
    }

    fn write_locally(&self, writes: Vec<CheckpointWrite>) -> Result<(), EngineError> {
        let cf = self.cf()?;
        let mut batch = WriteBatch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.put_cf(cf, key, value),
                None => batch.delete_cf(cf, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(storage_error)
    }

    /// Forgets every checkpoint of the job (a job started afresh).
    pub fn clear(&self) -> Result<(), EngineError> {
        let mut batch = WriteBatch::default();
        let cf = self.cf()?;
        for id in self.ids()? {
            batch.delete_cf(cf, self.key(id));
        }
        self.db.write(batch).map_err(storage_error)
    }
}

impl RocksCheckpoints {
    fn encode(&self, checkpoint: &StoredCheckpoint) -> Vec<u8> {
        let (stored, trailer) = at_rest::seal(self.key.as_ref(), &checkpoint.state);
        let mut value = Vec::with_capacity(stored.len() + 40);
        put_i64(&mut value, checkpoint.taken_at_ms);
        put_bytes(&mut value, &stored);
        value.extend_from_slice(&trailer);
        value
    }
}

fn storage_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Runtime(format!("checkpoint storage: {error}"))
}

impl CheckpointStorage for RocksCheckpoints {
    fn latest(&self) -> Result<Option<StoredCheckpoint>, EngineError> {
        match self.ids()?.last() {
            Some(&id) => self.get(id),
            None => Ok(None),
        }
    }

    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        let mut writes = vec![(self.key(checkpoint.id), Some(self.encode(checkpoint)))];
        let older: Vec<u64> = self
            .ids()?
            .into_iter()
            .filter(|id| *id < checkpoint.id)
            .collect();
        let keep_older = retained.max(1) - 1;
        for id in &older[..older.len().saturating_sub(keep_older)] {
            writes.push((self.key(*id), None));
        }
        let has_outputs = outputs.iter().any(|o| !o.records.is_empty());
        match &self.publish {
            Some(publish) => publish.publish(outputs, writes).map_err(storage_error),
            None if has_outputs => Err(storage_error(
                "an exactly-once sink has records to publish, but this job has no streams to put them in",
            )),
            None => self.write_locally(writes),
        }
    }
}
