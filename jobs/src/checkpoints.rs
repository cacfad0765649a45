//! A job's checkpoints in RocksDB (`jobs.checkpoints`, keyed by job id and
//! checkpoint id), a large state in a file the value names
//! (`state_files`). In the server the write goes through its streams'
//! writer (`Publish`), so that the records an exactly-once sink held back
//! land in the same write batch as the checkpoint that covers them.

use std::sync::Arc;

use rocksdb::{DB, WriteBatch, WriteOptions};
use runnel_engine::EngineError;

use crate::at_rest;
use crate::state_files::{FileRef, MIN_FILE_BYTES, StateFiles};
use runnel_engine::checkpoint::encoding::{
    Checkpoint, Reader, encoded_len, needs_from, put_bytes, put_i64, write_checkpoint,
};
use runnel_engine::checkpoint::storage::{commit_encoded, needs_from_stored, retained_from};
use runnel_engine::checkpoint::{CheckpointStorage, SinkOutput, StoredCheckpoint};

pub const CF_CHECKPOINTS: &str = "jobs.checkpoints";

/// A key written or (`None`) deleted in `jobs.checkpoints`.
pub type CheckpointWrite = (Vec<u8>, Option<Vec<u8>>);

/// Marks a trailer of the state's length and CRC-32: the state is in the
/// checkpoint's file, not in the value. (`at_rest` marks its own after.)
const IN_FILE: u8 = 2;

/// Writes checkpoint keys together with sink outputs, atomically.
pub trait Publish: Send + Sync {
    fn publish(&self, outputs: Vec<SinkOutput>, writes: Vec<CheckpointWrite>)
    -> Result<(), String>;
}

pub struct RocksCheckpoints {
    db: Arc<DB>,
    job: String,
    publish: Option<Arc<dyn Publish>>,
    files: StateFiles,
    /// State is encrypted at rest under it (`at_rest`).
    key: Option<at_rest::Key>,
    /// The job's checkpoint ids, once read: a chain of incremental
    /// checkpoints keeps many large values, which a scan on every commit
    /// would read again.
    known_ids: std::sync::Mutex<Option<Vec<u64>>>,
    /// The oldest checkpoint each one written here builds on, so that
    /// retention reads no old value to learn it.
    built_on: std::sync::Mutex<std::collections::HashMap<u64, Option<u64>>>,
}

impl RocksCheckpoints {
    /// `publish` is how outputs reach streams; without it, a checkpoint
    /// with outputs fails (there is no stream to put them in).
    pub fn new(db: Arc<DB>, job: &str, publish: Option<Arc<dyn Publish>>) -> Self {
        RocksCheckpoints {
            files: StateFiles::for_job(&db, job),
            db,
            job: job.to_string(),
            publish,
            key: None,
            known_ids: std::sync::Mutex::new(None),
            built_on: std::sync::Mutex::new(std::collections::HashMap::new()),
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
        let mut known = self.known();
        if let Some(ids) = known.as_ref() {
            return Ok(ids.clone());
        }
        let ids = self.scan_ids()?;
        *known = Some(ids.clone());
        Ok(ids)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Vec<u64>>> {
        self.known_ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keys only: the values are not copied out.
    fn scan_ids(&self) -> Result<Vec<u64>, EngineError> {
        let prefix = self.prefix();
        let mut ids = Vec::new();
        let mut cursor = self.db.raw_iterator_cf(self.cf()?);
        cursor.seek(&prefix);
        while let Some(key) = cursor.key() {
            let Some(id) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let id: [u8; 8] = id
                .try_into()
                .map_err(|_| storage_error("a checkpoint key is malformed"))?;
            ids.push(u64::from_be_bytes(id));
            cursor.next();
        }
        cursor.status().map_err(storage_error)?;
        Ok(ids)
    }

    /// Notes what a write that succeeded did to the job's ids: each key
    /// written (`true`) or deleted.
    fn written(&self, writes: &[(Vec<u8>, bool)]) {
        let mut known = self.known();
        let Some(ids) = known.as_mut() else { return };
        let prefix = self.prefix();
        for (key, value) in writes {
            let Some(id) = key
                .strip_prefix(prefix.as_slice())
                .and_then(|id| <[u8; 8]>::try_from(id).ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            match value {
                true if !ids.contains(&id) => ids.push(id),
                true => {}
                false => ids.retain(|&known| known != id),
            }
        }
        ids.sort_unstable();
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
        let inline = reader.bytes()?;
        let state = if reader.bytes.get(reader.at) == Some(&IN_FILE) {
            reader.take(1)?;
            // Written as `file_value` puts them: the length's bits as an i64.
            let len = reader.i64()? as u64;
            let crc = reader.u32()?;
            let stored = self
                .files
                .read(id, FileRef { len, crc })
                .map_err(storage_error)?;
            at_rest::open(self.key.as_ref(), &stored, &mut reader)
        } else {
            at_rest::open(self.key.as_ref(), inline, &mut reader)
        }
        .map_err(storage_error)?;
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
            Some(self.encode(checkpoint)?),
        )])
    }

    fn write_locally(&self, writes: Vec<CheckpointWrite>) -> Result<(), EngineError> {
        let cf = self.cf()?;
        let mut batch = WriteBatch::default();
        for (key, value) in &writes {
            match value {
                Some(value) => batch.put_cf(cf, key, value),
                None => batch.delete_cf(cf, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(storage_error)?;
        self.written(&keys_of(&writes));
        Ok(())
    }

    /// Forgets every checkpoint of the job (a job started afresh).
    pub fn clear(&self) -> Result<(), EngineError> {
        let mut batch = WriteBatch::default();
        let cf = self.cf()?;
        for id in self.ids()? {
            batch.delete_cf(cf, self.key(id));
        }
        self.db.write(batch).map_err(storage_error)?;
        *self.known() = Some(Vec::new());
        self.files.remove_all();
        Ok(())
    }
}

impl RocksCheckpoints {
    /// The checkpoint's RocksDB value; a large state is written to its
    /// file first (synced), so that the value is only written naming a
    /// whole file.
    fn encode(&self, checkpoint: &StoredCheckpoint) -> Result<Vec<u8>, EngineError> {
        let (stored, trailer) = at_rest::seal(self.key.as_ref(), &checkpoint.state);
        if stored.len() >= MIN_FILE_BYTES {
            let file = self
                .files
                .write(checkpoint.id, |out| out.write_all(&stored))
                .map_err(storage_error)?;
            return Ok(file_value(checkpoint.taken_at_ms, file, &trailer));
        }
        let mut value = Vec::with_capacity(stored.len() + 64);
        put_i64(&mut value, checkpoint.taken_at_ms);
        put_bytes(&mut value, &stored);
        value.extend_from_slice(&trailer);
        Ok(value)
    }
}

/// The value of a checkpoint whose state is in its file; `trailer` is
/// `at_rest`'s.
fn file_value(taken_at_ms: i64, file: FileRef, trailer: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(64);
    put_i64(&mut value, taken_at_ms);
    put_bytes(&mut value, &[]);
    value.push(IN_FILE);
    value.extend_from_slice(&file.len.to_le_bytes());
    value.extend_from_slice(&file.crc.to_le_bytes());
    value.extend_from_slice(trailer);
    value
}

/// Each write's key, and whether it puts (else deletes).
fn keys_of(writes: &[CheckpointWrite]) -> Vec<(Vec<u8>, bool)> {
    writes
        .iter()
        .map(|(key, value)| (key.clone(), value.is_some()))
        .collect()
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

    fn get(&self, id: u64) -> Result<Option<StoredCheckpoint>, EngineError> {
        RocksCheckpoints::get(self, id)
    }

    fn ids(&self) -> Result<Vec<u64>, EngineError> {
        RocksCheckpoints::ids(self)
    }

    fn discard_after(&self, id: u64) -> Result<(), EngineError> {
        let newer: Vec<u64> = self.ids()?.into_iter().filter(|&n| n > id).collect();
        if newer.is_empty() {
            return Ok(());
        }
        self.built_on
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&n, _| n <= id);
        self.write_locally(newer.iter().map(|&n| (self.key(n), None)).collect())?;
        self.files.remove_outside(0..=id);
        Ok(())
    }

    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        let value = self.encode(checkpoint)?;
        let needs = needs_from(&checkpoint.state)?;
        self.commit_value(checkpoint.id, value, needs, outputs, retained)
    }

    fn commit_entries(
        &self,
        id: u64,
        taken_at_ms: i64,
        checkpoint: &Checkpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<u64, EngineError> {
        let len = encoded_len(checkpoint);
        // Encrypted state is sealed whole, so it is gathered first anyway.
        if self.key.is_some() || len < MIN_FILE_BYTES {
            return commit_encoded(self, id, taken_at_ms, checkpoint, outputs, retained);
        }
        let file = self
            .files
            .write(id, |out| write_checkpoint(checkpoint, out))
            .map_err(storage_error)?;
        let value = file_value(taken_at_ms, file, &[]);
        self.commit_value(id, value, checkpoint.needs_from, outputs, retained)?;
        Ok(len as u64)
    }
}

impl RocksCheckpoints {
    /// Writes checkpoint `id`'s value (with what it builds on, `needs`)
    /// together with `outputs`, and forgets the checkpoints retention no
    /// longer keeps.
    fn commit_value(
        &self,
        id: u64,
        value: Vec<u8>,
        needs: Option<u64>,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        let mut writes = vec![(self.key(id), Some(value))];
        let mut ids: Vec<u64> = self
            .ids()?
            .into_iter()
            .filter(|known| *known < id)
            .collect();
        ids.push(id);
        // Those the kept ones build on (incremental states) stay too.
        let mut built_on = self.built_on.lock().unwrap_or_else(|p| p.into_inner());
        built_on.insert(id, needs);
        let keep_from = retained_from(&ids, retained, |id| match built_on.get(&id) {
            Some(needs) => Ok(*needs),
            None => needs_from_stored(self.get(id)?),
        })?;
        built_on.retain(|&id, _| id >= keep_from);
        drop(built_on);
        for old in ids.iter().filter(|&&old| old < keep_from) {
            writes.push((self.key(*old), None));
        }
        let has_outputs = outputs.iter().any(|o| !o.records.is_empty());
        match &self.publish {
            Some(publish) => {
                let keys = keys_of(&writes);
                publish.publish(outputs, writes).map_err(storage_error)?;
                self.written(&keys);
            }
            None if has_outputs => {
                return Err(storage_error(
                    "an exactly-once sink has records to publish, but this job has no streams to put them in",
                ));
            }
            None => self.write_locally(writes)?,
        }
        self.files.remove_outside(keep_from..=id);
        Ok(())
    }
}
