//! Large checkpoint states as files of their own beside the data dir's
//! RocksDB (`<data dir>/jobs/checkpoints/<job, hex>/<id>.state`), the
//! RocksDB value keeping only their length and CRC-32.
//!
//! Why not RocksDB: a value there is copied into the write batch, the WAL,
//! the memtable and at flush a blob file; for a join that keeps every row
//! (Nexmark q20 adds ~165 MB of state a second) those copies, and the page
//! faults of their fresh buffers, cost more than encoding the state did.
//! A file is written once, synced, then named by a RocksDB write, so a
//! checkpoint is either wholly there or not referenced at all.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use rocksdb::DB;

/// States at least this large go to a file; smaller ones stay inline in
/// RocksDB, which writes them at no cost worth a file and two syncs.
pub const MIN_FILE_BYTES: usize = 1 << 20;

const SUFFIX: &str = ".state";

/// Where a file-held state is, as its RocksDB value records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    pub len: u64,
    pub crc: u32,
}

pub struct StateFiles {
    dir: PathBuf,
}

impl StateFiles {
    /// The job's directory beside `db` (which lives in `<data dir>/db`).
    pub fn for_job(db: &DB, job: &str) -> Self {
        let data_dir = db.path().parent().unwrap_or(db.path());
        let name: String = job.bytes().map(|b| format!("{b:02x}")).collect();
        StateFiles {
            dir: data_dir.join("jobs").join("checkpoints").join(name),
        }
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}{SUFFIX}"))
    }

    /// Writes checkpoint `id`'s state (what `write` writes) and syncs it
    /// and its name, so that a RocksDB write naming it afterwards never
    /// names a torn file.
    pub fn write(
        &self,
        id: u64,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<FileRef, String> {
        let failed = |what: &str, e: std::io::Error| format!("{what} {}: {e}", self.dir.display());
        fs::create_dir_all(&self.dir).map_err(|e| failed("creating", e))?;
        let path = self.path(id);
        let partial = path.with_extension("partial");
        let file = File::create(&partial).map_err(|e| failed("creating a state file in", e))?;
        let mut out = Checksummed {
            file,
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        write(&mut out)
            .and_then(|()| out.file.sync_data())
            .map_err(|e| failed("writing a state file in", e))?;
        let Checksummed { file, crc, len } = out;
        drop(file);
        fs::rename(&partial, &path).map_err(|e| failed("naming a state file in", e))?;
        sync_dir(&self.dir).map_err(|e| failed("syncing", e))?;
        Ok(FileRef {
            len,
            crc: crc.finalize(),
        })
    }

    /// Checkpoint `id`'s state, checked against what its value recorded.
    pub fn read(&self, id: u64, expected: FileRef) -> Result<Vec<u8>, String> {
        let path = self.path(id);
        let state = fs::read(&path)
            .map_err(|e| format!("reading checkpoint state {}: {e}", path.display()))?;
        if state.len() as u64 != expected.len || crc32fast::hash(&state) != expected.crc {
            return Err(format!(
                "checkpoint state {} is corrupt: {} bytes where {} were written, or its CRC differs",
                path.display(),
                state.len(),
                expected.len
            ));
        }
        Ok(state)
    }

    /// Removes the files of checkpoints outside `keep` (ids from, to);
    /// also those a crash left between their write and their commit.
    /// Best effort: a file left behind costs space, not correctness.
    pub fn remove_outside(&self, keep: std::ops::RangeInclusive<u64>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| {
                    n.strip_suffix(SUFFIX)
                        .or_else(|| n.strip_suffix(".partial"))
                })
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if !keep.contains(&id)
                && let Err(error) = fs::remove_file(entry.path())
            {
                tracing::warn!(%error, path = %entry.path().display(), "removing an old checkpoint state");
            }
        }
    }

    /// Removes the job's directory (its checkpoints were all forgotten).
    pub fn remove_all(&self) {
        if let Err(error) = fs::remove_dir_all(&self.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, dir = %self.dir.display(), "removing a job's checkpoint states");
        }
    }
}

/// A file written unbuffered (the pieces are large) while its CRC and
/// length are taken.
struct Checksummed {
    file: File,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Write for Checksummed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.crc.update(&bytes[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
