//! Making a checkpoint durable, off the workers' threads: once every
//! worker has snapshotted (the job's sources resume then), a thread of its
//! own encodes what operators left to encode, writes the checkpoint with
//! what exactly-once sinks held back, and records the result; workers
//! hear of it between steps (`Coordinator::catch_up`), and the next round
//! waits for it, so commits stay in order and a delta always builds on a
//! durable checkpoint.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::checkpoint::encoding::{Checkpoint, Entry};
use crate::checkpoint::storage::{CheckpointStorage, SinkOutput};
use crate::checkpoint::worker::Snapshot;

/// A completed checkpoint, for a job's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    pub id: u64,
    pub taken_at_ms: i64,
    /// From the pause of the sources to the durable commit.
    pub duration_ms: u64,
    /// Of which draining the channels.
    pub drain_ms: u64,
    /// How long the sources were paused: drain and snapshot. The commit
    /// runs while the job goes on.
    pub paused_ms: u64,
    /// Encoding what operators left to encode and writing it (and what
    /// exactly-once sinks held) to storage, in the background.
    pub commit_ms: u64,
    pub bytes: u64,
    /// Operator states in it, over all workers.
    pub states: u64,
    /// Records exactly-once sinks published with it.
    pub records_committed: u64,
    /// Of its states, how many are deltas on an earlier checkpoint's.
    pub deltas: u64,
}

/// Completed checkpoints kept for figures.
const HISTORY: usize = 100;

/// Where each (worker, operator id) state's chain of deltas starts.
pub(crate) type Chains = HashMap<(usize, String), u64>;

/// A round's snapshots, on their way to storage.
pub(crate) struct Pending {
    pub id: u64,
    pub started: Instant,
    pub started_ms: i64,
    pub drain_ms: u64,
    pub paused_ms: u64,
    pub states: Vec<Vec<(String, Snapshot)>>,
    pub outputs: Vec<SinkOutput>,
}

pub(crate) struct Committer {
    storage: Arc<dyn CheckpointStorage>,
    retained: usize,
    /// The last durable checkpoint, which the next one's deltas build on,
    /// and where each state's chain starts in it.
    last: Mutex<Option<(u64, Chains)>>,
    /// The newest checkpoint made durable in this run (0: none yet).
    durable: AtomicU64,
    history: Mutex<VecDeque<CheckpointStats>>,
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// A commit failed: the job fails at its workers' next look.
    failed: Mutex<Option<String>>,
    /// Failed checkpoints in a row the job goes on after.
    tolerable: u32,
    consecutive_failures: AtomicU32,
    /// What exactly-once sinks held for a checkpoint that failed within
    /// the tolerance: committed with the next one.
    carried: Mutex<Vec<SinkOutput>>,
    /// After a failed checkpoint operators' deltas would build on a
    /// snapshot that is not durable: the next one takes whole states.
    whole_next: AtomicBool,
    /// A failed write fails the job, whatever the tolerance: in a job over
    /// several processes, one process's gap in its checkpoints would leave
    /// no checkpoint that every process holds.
    fatal_commit_failures: bool,
}

impl Committer {
    pub fn new(
        storage: Arc<dyn CheckpointStorage>,
        retained: usize,
        tolerable: u32,
        last: Option<(u64, Chains)>,
    ) -> Self {
        Committer {
            storage,
            retained,
            last: Mutex::new(last),
            durable: AtomicU64::new(0),
            history: Mutex::new(VecDeque::new()),
            failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            failed: Mutex::new(None),
            tolerable,
            consecutive_failures: AtomicU32::new(0),
            carried: Mutex::new(Vec::new()),
            whole_next: AtomicBool::new(false),
            fatal_commit_failures: false,
        }
    }

    pub fn with_fatal_commit_failures(mut self) -> Self {
        self.fatal_commit_failures = true;
        self
    }

    /// The checkpoint the job resumed from, which deltas build on, once
    /// known.
    pub fn resume_from(&self, last: Option<(u64, Chains)>) {
        *lock(&self.last) = last;
    }

    /// Whether the next checkpoint must take whole states (the one before
    /// failed); asking clears it.
    pub fn take_whole_next(&self) -> bool {
        self.whole_next.swap(false, Ordering::SeqCst)
    }

    /// Counts a failed checkpoint; whether the job goes on after it.
    pub fn tolerate(&self, error: &str) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_failure) = Some(error.to_string());
        let in_a_row = self.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
        if in_a_row > self.tolerable {
            *lock(&self.failed) = Some(error.to_string());
            return false;
        }
        tracing::warn!(error, in_a_row, "checkpoint failed; the job goes on");
        self.whole_next.store(true, Ordering::SeqCst);
        true
    }

    /// Whether a delta has a durable checkpoint to build on.
    pub fn has_base(&self) -> bool {
        lock(&self.last).is_some()
    }

    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> Option<String> {
        lock(&self.failed).clone()
    }

    pub fn history(&self) -> Vec<CheckpointStats> {
        lock(&self.history).iter().cloned().collect()
    }

    pub fn failures(&self) -> (u64, Option<String>) {
        (
            self.failures.load(Ordering::Relaxed),
            lock(&self.last_failure).clone(),
        )
    }

    /// Encodes and writes `pending`; a failure beyond the tolerance is
    /// kept for the workers.
    pub fn commit(&self, mut pending: Pending) {
        let mut outputs = std::mem::take(&mut *lock(&self.carried));
        outputs.append(&mut pending.outputs);
        // Kept to commit again only if a failure may be tolerated.
        let copy = (self.tolerable > 0).then(|| outputs.clone());
        pending.outputs = outputs;
        match self.try_commit(pending) {
            Ok(()) => self.consecutive_failures.store(0, Ordering::SeqCst),
            Err(error) if self.fatal_commit_failures => self.fail(error),
            Err(error) => {
                if self.tolerate(&error) {
                    *lock(&self.carried) = copy.unwrap_or_default();
                }
            }
        }
    }

    pub fn fail(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_failure) = Some(error.clone());
        *lock(&self.failed) = Some(error);
    }

    fn try_commit(&self, pending: Pending) -> Result<(), String> {
        let committing = Instant::now();
        let id = pending.id;
        let state_count = pending.states.iter().map(|s| s.len() as u64).sum();
        let deltas = pending
            .states
            .iter()
            .flatten()
            .filter(|(_, s)| s.is_delta())
            .count() as u64;
        let (checkpoint, chains) = self.entries(id, pending.states)?;
        let records: u64 = pending.outputs.iter().map(|o| o.records.len() as u64).sum();
        let bytes = self
            .storage
            .commit_entries(
                id,
                pending.started_ms,
                &checkpoint,
                pending.outputs,
                self.retained,
            )
            .map_err(|e| e.to_string())?;
        *lock(&self.last) = Some((id, chains));
        let stats = CheckpointStats {
            id,
            taken_at_ms: pending.started_ms,
            duration_ms: pending.started.elapsed().as_millis() as u64,
            drain_ms: pending.drain_ms,
            paused_ms: pending.paused_ms,
            commit_ms: committing.elapsed().as_millis() as u64,
            bytes,
            states: state_count,
            records_committed: records,
            deltas,
        };
        tracing::debug!(?stats, "checkpoint completed");
        let mut history = lock(&self.history);
        history.push_back(stats);
        while history.len() > HISTORY {
            history.pop_front();
        }
        self.durable.store(id, Ordering::SeqCst);
        Ok(())
    }

    /// The checkpoint's entries: whole states, and deltas on the last
    /// durable checkpoint; and where each entry's chain starts.
    fn entries(
        &self,
        id: u64,
        snapshots: Vec<Vec<(String, Snapshot)>>,
    ) -> Result<(Checkpoint, Chains), String> {
        let last = lock(&self.last);
        let mut chains = Chains::new();
        let mut workers = Vec::with_capacity(snapshots.len());
        for (worker, states) in snapshots.into_iter().enumerate() {
            let mut entries = Vec::with_capacity(states.len());
            for (op, snapshot) in states {
                let delta = snapshot.is_delta();
                let bytes = snapshot.into_bytes().map_err(|e| e.to_string())?;
                let (entry, starts_at) = if delta {
                    let base = last.as_ref().and_then(|(previous, chains)| {
                        let starts_at = chains.get(&(worker, op.clone()))?;
                        Some((*previous, *starts_at))
                    });
                    let Some((previous, starts_at)) = base else {
                        return Err(format!(
                            "operator {op} gave a delta with no checkpoint of it to build on"
                        ));
                    };
                    let entry = Entry {
                        previous: Some(previous),
                        pieces: vec![bytes],
                    };
                    (entry, starts_at)
                } else {
                    (Entry::full(bytes), id)
                };
                chains.insert((worker, op.clone()), starts_at);
                entries.push((op, entry));
            }
            workers.push(entries);
        }
        let needs_from = chains.values().copied().filter(|&from| from < id).min();
        Ok((
            Checkpoint {
                needs_from,
                workers,
            },
            chains,
        ))
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
