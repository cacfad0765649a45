//! A data dir: its lock, and the one RocksDB instance under it that every
//! service of the process shares.
//!
//! Each service owns column families whose names start with its own name
//! (`streams.records`, `firehose.buffers`, ...), so the owner of any key on
//! disk is obvious from the column family alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, DB, Options};

pub mod crypto;

/// Column families every data dir has, whoever opens it.
pub const STORE_COLUMN_FAMILIES: &[&str] = &["store.meta"];

const LOCK_FILE: &str = "LOCK.runnel";
const DB_DIR: &str = "db";
const FORMAT_KEY: &[u8] = b"format_version";
const FORMAT_VERSION: u32 = 1;
/// Values at least this large (checkpoint states) go to blob files.
const BLOB_MIN_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data dir {dir} is already in use by another runnel process{pid}; stop it or choose another --data-dir", pid = .holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { dir: PathBuf, holder: Option<u32> },
    #[error("cannot prepare data dir {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data dir {dir} has format version {found}, this runnel understands version {expected}"
    )]
    IncompatibleFormat {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("column family {0} is not open in this store")]
    UnknownColumnFamily(String),
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
}

/// An open data dir. Dropping it releases the directory lock.
pub struct Store {
    db: Arc<DB>,
    dir: PathBuf,
    // Held for the lifetime of the store: the OS drops the advisory lock
    // when this file is closed, including on kill -9.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store under `dir` with the column
    /// families the caller's services own, plus any found on disk.
    pub fn open(dir: &Path, column_families: &[&str]) -> Result<Self, StoreError> {
        let io_err = |source| StoreError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let lock = lock_data_dir(dir)?;

        let db_path = dir.join(DB_DIR);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        // SST blocks are read from the page cache in place rather than
        // copied out of it by pread first.
        opts.set_allow_mmap_reads(true);

        let mut names: Vec<String> = STORE_COLUMN_FAMILIES
            .iter()
            .chain(column_families)
            .map(|s| s.to_string())
            .collect();
        if db_path.join("CURRENT").exists() {
            names.extend(DB::list_cf(&opts, &db_path)?);
        }
        names.sort();
        names.dedup();
        let descriptors = names.iter().map(|name| {
            let mut options = Options::default();
            // The newest records (L0 and L1, a few hundred MB) are what
            // consumers read, usually soon after the write: they stay
            // uncompressed, so reading them costs no decompression. Older
            // levels hold most of a retention period and take LZ4, which
            // decompresses about twice as fast as RocksDB's default snappy.
            // SST files record their own compression: older ones still read.
            use rocksdb::DBCompressionType::{Lz4, None as Uncompressed};
            options.set_compression_per_level(&[
                Uncompressed,
                Uncompressed,
                Lz4,
                Lz4,
                Lz4,
                Lz4,
                Lz4,
            ]);
            if name.ends_with(".checkpoints") || name.ends_with(".savepoints") {
                // A checkpoint's value is its operators' states, up to
                // gigabytes at once: kept in blob files from the flush on,
                // so that compactions do not write them again and again.
                options.set_enable_blob_files(true);
                options.set_min_blob_size(BLOB_MIN_BYTES);
                // Blobs still alive in old files move on at compaction, so
                // a file whose checkpoints are gone is deleted.
                options.set_enable_blob_gc(true);
            }
            ColumnFamilyDescriptor::new(name, options)
        });
        let db = DB::open_cf_descriptors(&opts, &db_path, descriptors)?;

        let store = Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        store.check_format()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }

    pub fn column_family_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(DB::list_cf(&Options::default(), self.dir.join(DB_DIR))?)
    }

    /// Reads a value from the store's own metadata.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf("store.meta")?;
        Ok(self.db.get_cf(cf, key)?)
    }

    /// Writes a value to the store's own metadata, synced to disk.
    pub fn meta_put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let cf = self.cf("store.meta")?;
        let mut write = rocksdb::WriteOptions::default();
        write.set_sync(true);
        Ok(self.db.put_cf_opt(cf, key, value, &write)?)
    }

    pub fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::UnknownColumnFamily(name.to_string()))
    }

    /// Flushes memtables and the WAL so the next open replays nothing.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)?;
        for name in self.column_family_names()? {
            if let Some(cf) = self.db.cf_handle(&name) {
                self.db.flush_cf(cf)?;
            }
        }
        Ok(())
    }

    fn check_format(&self) -> Result<(), StoreError> {
        match self.meta_get(FORMAT_KEY)? {
            None => self.meta_put(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()),
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found == FORMAT_VERSION {
                    Ok(())
                } else {
                    Err(StoreError::IncompatibleFormat {
                        dir: self.dir.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    })
                }
            }
        }
    }
}

/// Takes an exclusive advisory lock on the data dir and records our pid in
/// it, so a second server gets a clear refusal naming the first.
fn lock_data_dir(dir: &Path) -> Result<File, StoreError> {
    let io_err = |source| StoreError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(StoreError::InUse {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(source)) => return Err(io_err(source)),
    }
    file.set_len(0).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_data_dir_is_refused_while_the_first_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), &["test.a"]).unwrap();
        let err = Store::open(dir.path(), &["test.a"])
            .err()
            .expect("second open must fail");
        assert!(
            matches!(err, StoreError::InUse { holder: Some(pid), .. } if pid == std::process::id()),
            "{err}"
        );
        drop(first);
        Store::open(dir.path(), &["test.a"]).expect("reopen after close");
    }

    #[test]
    fn column_families_on_disk_are_reopened_even_when_not_requested() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &["streams.records"]).unwrap();
            let cf = store.cf("streams.records").unwrap();
            store.db().put_cf(cf, b"k", b"v").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path(), &[]).unwrap();
        let cf = store.cf("streams.records").unwrap();
        assert_eq!(
            store.db().get_cf(cf, b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }

    #[test]
    fn an_unknown_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &[]).unwrap();
            store.meta_put(FORMAT_KEY, &99u32.to_be_bytes()).unwrap();
        }
        let err = Store::open(dir.path(), &[]).err().expect("must refuse");
        assert!(
            matches!(err, StoreError::IncompatibleFormat { found: 99, .. }),
            "{err}"
        );
    }
}
