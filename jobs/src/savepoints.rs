//! Savepoints: checkpoints taken on request and kept under a name until
//! deleted, to start a job from (the same SQL, or changed SQL whose
//! operators still take the state). Kinesis Analytics' application
//! snapshots are savepoints too.

use std::sync::Arc;

use rocksdb::{DB, Direction, IteratorMode, WriteOptions};
use runnel_engine::checkpoint::StoredCheckpoint;
use runnel_engine::checkpoint::encoding::{Reader, put_bytes, put_i64};
use serde::{Deserialize, Serialize};

use crate::at_rest;

pub const CF_SAVEPOINTS: &str = "jobs.savepoints";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointInfo {
    pub name: String,
    pub job_id: String,
    pub job_name: String,
    /// The checkpoint of the job it was taken as.
    pub checkpoint_id: u64,
    pub created_ms: u64,
    pub bytes: u64,
    /// The job's parallelism: a savepoint restores into as many workers.
    pub parallelism: usize,
}

pub struct Savepoints {
    db: Arc<DB>,
    key: Option<at_rest::Key>,
}

fn sync() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl Savepoints {
    /// State is encrypted at rest under `key` when there is one.
    pub fn new(db: Arc<DB>, key: Option<at_rest::Key>) -> Self {
        Savepoints { db, key }
    }

    fn cf(&self) -> Result<&rocksdb::ColumnFamily, String> {
        self.db
            .cf_handle(CF_SAVEPOINTS)
            .ok_or_else(|| format!("the data dir has no column family {CF_SAVEPOINTS}"))
    }

    pub fn put(&self, info: &SavepointInfo, state: &StoredCheckpoint) -> Result<(), String> {
        let header = serde_json::to_vec(info).map_err(|e| e.to_string())?;
        let (stored, trailer) = at_rest::seal(self.key.as_ref(), &state.state);
        let mut value = Vec::with_capacity(header.len() + stored.len() + 56);
        put_bytes(&mut value, &header);
        put_i64(&mut value, state.taken_at_ms);
        put_bytes(&mut value, &stored);
        value.extend_from_slice(&trailer);
        self.db
            .put_cf_opt(self.cf()?, info.name.as_bytes(), value, &sync())
            .map_err(|e| e.to_string())
    }

    pub fn get(&self, name: &str) -> Result<Option<(SavepointInfo, StoredCheckpoint)>, String> {
        let Some(value) = self
            .db
            .get_cf(self.cf()?, name.as_bytes())
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let (info, state) = decode(&value, self.key.as_ref())?;
        Ok(Some((info, state)))
    }

    /// Savepoints whose names start with `prefix`, in name order.
    pub fn list(&self, prefix: &str) -> Result<Vec<SavepointInfo>, String> {
        let mut found = Vec::new();
        for entry in self.db.iterator_cf(
            self.cf()?,
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        ) {
            let (key, value) = entry.map_err(|e| e.to_string())?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            // The header alone: listing decrypts and copies no state.
            let mut reader = Reader::new(&value);
            found.push(info(&mut reader)?);
        }
        Ok(found)
    }

    /// Whether there was one to delete.
    pub fn delete(&self, name: &str) -> Result<bool, String> {
        let existed = self
            .db
            .get_pinned_cf(self.cf()?, name.as_bytes())
            .map_err(|e| e.to_string())?
            .is_some();
        self.db
            .delete_cf_opt(self.cf()?, name.as_bytes(), &sync())
            .map_err(|e| e.to_string())?;
        Ok(existed)
    }
}

fn info(reader: &mut Reader<'_>) -> Result<SavepointInfo, String> {
    let header = reader.bytes().map_err(|e| e.to_string())?;
    serde_json::from_slice(header).map_err(|e| e.to_string())
}

fn decode(
    value: &[u8],
    key: Option<&at_rest::Key>,
) -> Result<(SavepointInfo, StoredCheckpoint), String> {
    let mut reader = Reader::new(value);
    let info = info(&mut reader)?;
    let taken_at_ms = reader.i64().map_err(|e| e.to_string())?;
    let stored = reader.bytes().map_err(|e| e.to_string())?;
    let state = at_rest::open(key, stored, &mut reader)?;
    Ok((
        info.clone(),
        StoredCheckpoint {
            id: info.checkpoint_id,
            taken_at_ms,
            state,
        },
    ))
}
