//! Jobs kept in the data dir (`jobs.definitions`), one JSON value per job.

use std::sync::Arc;

use rocksdb::DB;

use super::manager::Definition;

pub const CF_DEFINITIONS: &str = "jobs.definitions";

/// The column families the job manager owns; pass them to `Store::open`.
pub const COLUMN_FAMILIES: &[&str] = &[
    CF_DEFINITIONS,
    super::kda::CF_APPLICATIONS,
    runnel_jobs::checkpoints::CF_CHECKPOINTS,
    runnel_jobs::savepoints::CF_SAVEPOINTS,
];

pub struct JobStore {
    db: Arc<DB>,
}

impl JobStore {
    pub fn new(db: Arc<DB>) -> Self {
        JobStore { db }
    }

    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }

    fn cf(&self) -> Result<&rocksdb::ColumnFamily, String> {
        self.db
            .cf_handle(CF_DEFINITIONS)
            .ok_or_else(|| format!("the data dir has no column family {CF_DEFINITIONS}"))
    }

    /// Synced, so that a job acknowledged as submitted is there after a crash.
    pub fn save(&self, definition: &Definition) -> Result<(), String> {
        let value = serde_json::to_vec(definition).map_err(|e| e.to_string())?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db
            .put_cf_opt(self.cf()?, definition.id.as_bytes(), value, &options)
            .map_err(|e| format!("saving job {}: {e}", definition.id))
    }

    pub fn delete(&self, id: &str) -> Result<(), String> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db
            .delete_cf_opt(self.cf()?, id.as_bytes(), &options)
            .map_err(|e| format!("deleting job {id}: {e}"))
    }

    pub fn load(&self) -> Result<Vec<Definition>, String> {
        let mut definitions = Vec::new();
        for entry in self
            .db
            .iterator_cf(self.cf()?, rocksdb::IteratorMode::Start)
        {
            let (key, value) = entry.map_err(|e| format!("reading jobs: {e}"))?;
            match serde_json::from_slice::<Definition>(&value) {
                Ok(definition) => definitions.push(definition),
                Err(error) => tracing::error!(
                    job = %String::from_utf8_lossy(&key),
                    %error,
                    "a kept job cannot be read; it is skipped"
                ),
            }
        }
        Ok(definitions)
    }
}
