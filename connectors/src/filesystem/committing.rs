//! The file sink of a checkpointed job, as Flink's `FileSink`: rows go to
//! hidden in-progress files (`.part-<worker>-<n>.<ext>.inprogress`, which
//! no reader of the directory lists); a checkpoint closes them and marks
//! them pending; once the checkpoint is durable they are renamed to
//! `part-<worker>-<n>.<ext>`. A reader of the directory so sees whole
//! files of rows that a checkpoint covers, never a half-written one, and
//! never rows a restored job writes again.
//!
//! The pending files are operator state: a job restored from a checkpoint
//! commits those its crash left unrenamed, and deletes every other
//! in-progress file of its worker (rows written after that checkpoint,
//! which the restored job writes again).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::checkpoint::SinkOutput;
use runnel_engine::checkpoint::encoding::{Reader, put_bytes, put_i64, put_u32};
use runnel_engine::checkpoint::worker::{self, OperatorState};
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;

use super::writer::{FileWriter, split};
use super::{CheckpointError, FileSink, io_error};

/// The kind the sink's state registers under (`FilesystemSink#<n>`).
pub const STATE_KIND: &str = "FilesystemSink";

const VERSION: u8 = 1;
const IN_PROGRESS: &str = ".inprogress";

/// One worker's file sink in a checkpointed job.
pub struct CommittingSink {
    sink: FileSink,
    worker: usize,
    /// The in-progress file of each partition directory written to since
    /// the last checkpoint (`""` without partitions).
    open: BTreeMap<String, OpenPart>,
    ledger: Rc<RefCell<Ledger>>,
}

struct OpenPart {
    writer: FileWriter,
    file: PendingFile,
}

/// What a checkpoint keeps of the sink.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ledger {
    /// The next part number to try; numbers taken by files already in a
    /// directory are skipped.
    next_part: u64,
    /// Closed files of checkpoints not yet known to be durable.
    pending: Vec<(u64, PendingFile)>,
}

/// An in-progress file and the name it is committed under, both relative
/// to the sink's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingFile {
    in_progress: String,
    committed: String,
}

/// The ledger as the checkpoint sees it.
struct LedgerState(Rc<RefCell<Ledger>>);

impl OperatorState for LedgerState {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        Ok(self.0.borrow().encode()?)
    }
}

impl CommittingSink {
    /// Registers the sink's state with this worker's checkpoints; resuming
    /// from one, finishes what its crash interrupted.
    pub(super) fn new(sink: FileSink, worker: usize) -> Result<Self, EngineError> {
        let ledger = Rc::new(RefCell::new(Ledger::default()));
        let restored = worker::register(STATE_KIND, Rc::new(LedgerState(ledger.clone())));
        let mut this = CommittingSink {
            sink,
            worker,
            open: BTreeMap::new(),
            ledger,
        };
        let restored = match restored {
            Some(bytes) => Ledger::decode(&bytes)?,
            None => Ledger::default(),
        };
        this.recover(restored)?;
        Ok(this)
    }

    /// The state a checkpoint takes now: what the registered
    /// `OperatorState` gives, for tests that play the engine's part.
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        Ok(self.ledger.borrow().encode()?)
    }

    /// The checkpoint `restored` was taken at is durable, so its pending
    /// files are committed; any other in-progress file of this worker was
    /// written after it.
    fn recover(&mut self, restored: Ledger) -> Result<(), EngineError> {
        let files: Vec<PendingFile> = restored.pending.into_iter().map(|(_, f)| f).collect();
        self.commit(&files)?;
        self.ledger.borrow_mut().next_part = restored.next_part;
        let prefix = format!(".part-{}-", self.worker);
        let mut strays = Vec::new();
        find_in_progress(
            &self.sink.dir,
            self.sink.partition_keys.len(),
            &prefix,
            &mut strays,
        )?;
        for stray in strays {
            std::fs::remove_file(&stray).map_err(io_error(&stray))?;
        }
        Ok(())
    }

    /// Renames `files` to their committed names and syncs their
    /// directories, so that the names survive a crash.
    fn commit(&self, files: &[PendingFile]) -> Result<(), EngineError> {
        let mut dirs = BTreeSet::new();
        for file in files {
            let from = self.sink.dir.join(&file.in_progress);
            let to = self.sink.dir.join(&file.committed);
            match std::fs::rename(&from, &to) {
                Ok(()) => {
                    if let Some(dir) = to.parent() {
                        dirs.insert(dir.to_path_buf());
                    }
                }
                // Renamed before a crash that came before the checkpoint
                // after it.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    // Flink's committer goes on too: the rows are gone
                    // (the file was deleted), and failing would not bring
                    // them back.
                    tracing::warn!(
                        file = %from.display(),
                        "filesystem sink: a file the checkpoint covers is missing; its rows are lost"
                    );
                }
                Err(error) => return Err(io_error(&from)(error).into()),
            }
        }
        for dir in dirs {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error(&dir))?;
        }
        Ok(())
    }

    /// A new in-progress file in `partition`, numbered after every part
    /// file of this worker already there.
    fn open_part(&mut self, partition: &str) -> Result<OpenPart, EngineError> {
        let dir = self.sink.dir.join(partition);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let extension = self.sink.format.extension();
        let mut n = self.ledger.borrow().next_part;
        let (in_progress, committed) = loop {
            let committed = format!("part-{}-{n}.{extension}", self.worker);
            let in_progress = format!(".{committed}{IN_PROGRESS}");
            if !dir.join(&committed).exists() && !dir.join(&in_progress).exists() {
                break (in_progress, committed);
            }
            n += 1;
        };
        self.ledger.borrow_mut().next_part = n + 1;
        let relative = |name: &str| {
            Path::new(partition)
                .join(name)
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| CheckpointError::NotUtf8(dir.join(name).display().to_string()))
        };
        let file = PendingFile {
            in_progress: relative(&in_progress)?,
            committed: relative(&committed)?,
        };
        let writer = FileWriter::create(dir.join(&in_progress), &self.sink.format)?;
        Ok(OpenPart { writer, file })
    }
}

impl BatchSink for CommittingSink {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        for (partition, rows) in split(&batch, &self.sink.partition_keys)? {
            if !self.open.contains_key(&partition) {
                let part = self.open_part(&partition)?;
                self.open.insert(partition.clone(), part);
            }
            if let Some(part) = self.open.get_mut(&partition) {
                part.writer.write(rows, time)?;
            }
        }
        Ok(())
    }

    /// At end of input the engine takes a last checkpoint, which closes
    /// and commits the last files: nothing to do here.
    fn watermark(&mut self, _watermark: Option<Watermark>) -> Result<(), EngineError> {
        Ok(())
    }

    fn checkpoint_output(&mut self, checkpoint: u64) -> Result<Vec<SinkOutput>, EngineError> {
        for (_, mut part) in std::mem::take(&mut self.open) {
            part.writer.close()?;
            self.ledger
                .borrow_mut()
                .pending
                .push((checkpoint, part.file));
        }
        Ok(Vec::new())
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), EngineError> {
        let due: Vec<PendingFile> = self
            .ledger
            .borrow()
            .pending
            .iter()
            .filter(|(id, _)| *id <= checkpoint)
            .map(|(_, file)| file.clone())
            .collect();
        self.commit(&due)?;
        // Only once renamed: a failed rename keeps the file pending.
        self.ledger
            .borrow_mut()
            .pending
            .retain(|(id, _)| *id > checkpoint);
        Ok(())
    }
}

/// This worker's in-progress files (`prefix...inprogress`) in the
/// partition directories `depth` levels under `dir`.
fn find_in_progress(
    dir: &Path,
    depth: usize,
    prefix: &str,
    out: &mut Vec<PathBuf>,
) -> Result<(), EngineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Nothing written yet.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(dir)(error).into()),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let kind = entry.file_type().map_err(io_error(dir))?;
        let path = entry.path();
        if depth > 0 {
            if kind.is_dir() {
                find_in_progress(&path, depth - 1, prefix, out)?;
            }
            continue;
        }
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|name| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(IN_PROGRESS))
                .is_some_and(|rest| {
                    let digits = rest.split('.').next().unwrap_or_default();
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                })
        });
        if kind.is_file() && is_ours {
            out.push(path);
        }
    }
    Ok(())
}

impl Ledger {
    /// A version byte, `next_part` as `i64`, a `u32` count, then per
    /// pending file its checkpoint as `i64` and its two relative paths.
    fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = vec![VERSION];
        put_i64(&mut out, as_i64(self.next_part)?);
        put_u32(&mut out, self.pending.len() as u32);
        for (checkpoint, file) in &self.pending {
            put_i64(&mut out, as_i64(*checkpoint)?);
            put_bytes(&mut out, file.in_progress.as_bytes());
            put_bytes(&mut out, file.committed.as_bytes());
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        let corrupt = |what| EngineError::from(CheckpointError::Corrupt(what));
        let mut reader = Reader::new(bytes);
        if reader.take(1)? != [VERSION] {
            return Err(corrupt("an unknown version of a file sink's state"));
        }
        let next_part =
            u64::try_from(reader.i64()?).map_err(|_| corrupt("a negative part number"))?;
        let count = reader.u32()?;
        let mut pending = Vec::new();
        for _ in 0..count {
            let checkpoint =
                u64::try_from(reader.i64()?).map_err(|_| corrupt("a negative checkpoint id"))?;
            let in_progress = relative_path(reader.bytes()?)?;
            let committed = relative_path(reader.bytes()?)?;
            pending.push((
                checkpoint,
                PendingFile {
                    in_progress,
                    committed,
                },
            ));
        }
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a file sink's state"));
        }
        Ok(Ledger { next_part, pending })
    }
}

/// A path of the state, which must stay inside the sink's directory.
fn relative_path(bytes: &[u8]) -> Result<String, EngineError> {
    let path = std::str::from_utf8(bytes)
        .map_err(|_| CheckpointError::Corrupt("a file name that is not UTF-8"))?;
    let inside = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if path.is_empty() || !inside {
        return Err(CheckpointError::Corrupt("a file outside the sink's directory").into());
    }
    Ok(path.to_string())
}

fn as_i64(n: u64) -> Result<i64, CheckpointError> {
    i64::try_from(n).map_err(|_| CheckpointError::Corrupt("a number beyond i64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_round_trips_and_refuses_escapes() {
        let ledger = Ledger {
            next_part: 7,
            pending: vec![(
                3,
                PendingFile {
                    in_progress: "d=1/.part-0-6.csv.inprogress".into(),
                    committed: "d=1/part-0-6.csv".into(),
                },
            )],
        };
        let bytes = ledger.encode().unwrap();
        assert_eq!(Ledger::decode(&bytes).unwrap(), ledger);
        for cut in 0..bytes.len() {
            assert!(Ledger::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let escaping = Ledger {
            next_part: 1,
            pending: vec![(
                1,
                PendingFile {
                    in_progress: "../x".into(),
                    committed: "/etc/x".into(),
                },
            )],
        };
        assert!(Ledger::decode(&escaping.encode().unwrap()).is_err());
    }
}
