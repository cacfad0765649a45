//! What the workers of one checkpointed job share: when the next
//! checkpoint is due, the count of batches in flight, and the rounds in
//! which all workers drain, snapshot and commit together.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use crate::checkpoint::chain::{self, Resolved};
use crate::checkpoint::committer::{CheckpointStats, Committer, Pending, lock};
use crate::checkpoint::storage::{CheckpointStorage, SinkOutput};
use crate::checkpoint::worker::Snapshot;
use crate::checkpoint::{CheckpointConfig, worker};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::wall_clock_millis;

/// Each worker's states of the checkpoint resumed from, chains resolved.
type RestoredStates = Vec<Vec<(String, Resolved)>>;

pub struct Coordinator {
    config: CheckpointConfig,
    workers: usize,
    restore: Option<(u64, RestoredStates)>,
    committer: Arc<Committer>,
    /// The commit running in the background, if one is.
    committing: Mutex<Option<JoinHandle<()>>>,
    /// Batches sent minus batches received, over every channel of the job
    /// (timely's message log); zero with all workers between steps means
    /// nothing is in flight.
    in_flight: Arc<AtomicI64>,
    requested: AtomicBool,
    done_workers: AtomicUsize,
    next_id: AtomicU64,
    /// When the last checkpoint started and ended.
    times: Mutex<(Instant, Instant)>,
    rendezvous: Rendezvous,
    round: Mutex<Round>,
    /// A savepoint restored into changed SQL may leave states no operator
    /// takes (Flink's `AllowNonRestoredState`).
    allow_non_restored: AtomicBool,
}

#[derive(Default)]
struct Round {
    quiet: bool,
    timed_out: bool,
    /// A timed-out drain was within the tolerated failures.
    tolerated: bool,
    states: Vec<Option<Vec<(String, Snapshot)>>>,
    outputs: Vec<SinkOutput>,
    committed: Option<Result<(), String>>,
}

/// Whether the worker's loop goes on after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRound {
    Continue,
    /// Every worker's input had ended: the final checkpoint is taken.
    Finished,
}

impl Coordinator {
    /// Reads the latest checkpoint of `storage`, which the job resumes
    /// from; it must have been taken with as many workers.
    pub fn new(
        config: CheckpointConfig,
        storage: Arc<dyn CheckpointStorage>,
        workers: usize,
        resume: bool,
    ) -> Result<Self, EngineError> {
        let latest = if resume { storage.latest()? } else { None };
        let restore = match latest {
            Some(stored) => {
                let states = chain::resolve(storage.as_ref(), &stored)?;
                if states.len() != workers {
                    return Err(EngineError::Plan(format!(
                        "checkpoint {} was taken with {} workers and cannot be restored into {workers}; run the job with parallelism {}",
                        stored.id,
                        states.len(),
                        states.len()
                    )));
                }
                Some((stored.id, states))
            }
            None => None,
        };
        let next = restore.as_ref().map_or(1, |(id, _)| id + 1);
        let last = restore.as_ref().map(|(id, states)| {
            let chains = states
                .iter()
                .enumerate()
                .flat_map(|(worker, states)| {
                    states
                        .iter()
                        .map(move |(op, resolved)| ((worker, op.clone()), resolved.starts_at))
                })
                .collect();
            (*id, chains)
        });
        let committer = Committer::new(storage, config.retained, config.tolerable_failures, last);
        let now = Instant::now();
        Ok(Coordinator {
            config,
            workers,
            restore,
            committer: Arc::new(committer),
            committing: Mutex::new(None),
            in_flight: Arc::new(AtomicI64::new(0)),
            requested: AtomicBool::new(false),
            done_workers: AtomicUsize::new(0),
            next_id: AtomicU64::new(next),
            times: Mutex::new((now, now)),
            rendezvous: Rendezvous::new(workers),
            round: Mutex::new(Round::default()),
            allow_non_restored: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// States of the restored checkpoint that no operator takes are
    /// dropped instead of refusing the start.
    pub fn allow_non_restored_state(&self) {
        self.allow_non_restored.store(true, Ordering::SeqCst);
    }

    /// Asks for a checkpoint now (a savepoint); returns the id it will
    /// have, which `history` shows once it completed.
    pub fn trigger(&self) -> u64 {
        self.requested.store(true, Ordering::SeqCst);
        self.next_id.load(Ordering::SeqCst)
    }

    /// The checkpoint the job resumed from.
    pub fn restored_from(&self) -> Option<u64> {
        self.restore.as_ref().map(|(id, _)| *id)
    }

    /// The newest completed checkpoints, newest last.
    pub fn history(&self) -> Vec<CheckpointStats> {
        self.committer.history()
    }

    pub fn failures(&self) -> (u64, Option<String>) {
        self.committer.failures()
    }

    /// Between steps: tells this worker's sinks of checkpoints made
    /// durable since it last heard (`notified`), and fails if a commit
    /// failed.
    pub fn catch_up(&self, notified: &mut u64) -> Result<(), EngineError> {
        if let Some(error) = self.committer.failed() {
            return Err(EngineError::Runtime(format!("checkpoint failed: {error}")));
        }
        let durable = self.committer.durable();
        if durable > *notified {
            *notified = durable;
            worker::complete_sinks(durable)?;
        }
        Ok(())
    }

    fn commit_running(&self) -> bool {
        lock(&self.committing)
            .as_ref()
            .is_some_and(|running| !running.is_finished())
    }

    /// Waits for the commit running in the background, if any.
    pub fn settle(&self) {
        let running = lock(&self.committing).take();
        if let Some(running) = running
            && running.join().is_err()
        {
            self.committer.fail("its commit panicked".into());
        }
    }

    /// Prepares worker `worker` before its dataflow is built: counts its
    /// channels' messages and gives its operators their restored states.
    pub fn install(&self, timely_worker: &mut Worker) {
        let in_flight = self.in_flight.clone();
        if let Some(mut registry) = timely_worker.log_register() {
            registry.insert::<TimelyEventBuilder, _>(
                "timely",
                move |_time, events: &mut Option<Vec<(Duration, TimelyEvent)>>| {
                    if let Some(events) = events {
                        let delta: i64 = events
                            .iter()
                            .map(|(_, event)| match event {
                                TimelyEvent::Messages(m) if m.is_send => 1,
                                TimelyEvent::Messages(_) => -1,
                                _ => 0,
                            })
                            .sum();
                        if delta != 0 {
                            in_flight.fetch_add(delta, Ordering::SeqCst);
                        }
                    }
                },
            );
        }
        let restore = self.restore.as_ref().and_then(|(_, states)| {
            states.get(timely_worker.index()).map(|states| {
                states
                    .iter()
                    .map(|(id, resolved)| (id.clone(), resolved.pieces.clone()))
                    .collect()
            })
        });
        worker::install(self.config.mode, restore);
    }

    /// After the dataflow is built: a checkpoint state no operator took
    /// means the job is not the one that was checkpointed.
    pub fn check_restored(&self) -> Result<(), EngineError> {
        let left = worker::unrestored();
        if left.is_empty() {
            return Ok(());
        }
        if self.allow_non_restored.load(Ordering::SeqCst) {
            tracing::warn!(states = ?left, "restored checkpoint state no operator takes is dropped");
            return Ok(());
        }
        Err(EngineError::Plan(format!(
            "checkpoint {} holds state for operators this job does not have ({}): the job's SQL changed since it was taken (allow non-restored state to drop it)",
            self.restored_from().unwrap_or_default(),
            left.join(", ")
        )))
    }

    /// Whether this worker must join a round now. Worker 0 keeps the time.
    pub fn due(&self, worker_index: usize, input_done: bool, reported_done: &mut bool) -> bool {
        if input_done && !*reported_done {
            *reported_done = true;
            self.done_workers.fetch_add(1, Ordering::SeqCst);
        }
        if self.done_workers.load(Ordering::SeqCst) == self.workers {
            return true;
        }
        if worker_index == 0 && !self.requested.load(Ordering::SeqCst) {
            let (started, ended) = *lock(&self.times);
            // A round waits for the last commit with every worker held,
            // so while one runs the job goes on instead: as Flink does
            // with one concurrent checkpoint, the next starts after it.
            if started.elapsed() >= self.config.interval
                && ended.elapsed() >= self.config.min_pause
                && !self.commit_running()
            {
                self.requested.store(true, Ordering::SeqCst);
            }
        }
        self.requested.load(Ordering::SeqCst)
    }

    /// One checkpoint, run by every worker together: wait for the last
    /// one's commit, pause the sources, drain, snapshot, resume; the
    /// commit runs in the background (`committer`). `notified` is the
    /// newest checkpoint this worker's sinks have heard is durable.
    pub fn round(
        &self,
        timely_worker: &mut Worker,
        context: &JobContext,
        notified: &mut u64,
    ) -> Result<AfterRound, EngineError> {
        let index = timely_worker.index();
        let abort = || context.aborted();
        let started = Instant::now();
        let started_ms = wall_clock_millis();
        // Commits go in order, and a delta builds on a durable checkpoint.
        self.rendezvous.wait(&abort, || self.settle())?;
        self.catch_up(notified)?;
        worker::set_paused(true);
        // Drain: step until, with every worker between steps, nothing is
        // in flight anywhere.
        loop {
            timely_worker.step_or_park(Some(Duration::ZERO));
            self.rendezvous.wait(&abort, || {
                let mut round = lock(&self.round);
                round.quiet = self.in_flight.load(Ordering::SeqCst) == 0;
                round.timed_out = !round.quiet && started.elapsed() > self.config.timeout;
                if round.timed_out {
                    round.tolerated = self.committer.tolerate(&format!(
                        "checkpoint timed out after {:?} draining the dataflow",
                        self.config.timeout
                    ));
                }
            })?;
            let (quiet, timed_out) = {
                let round = lock(&self.round);
                (round.quiet, round.timed_out)
            };
            // Everyone reads before anyone can start the next wait.
            self.rendezvous.wait(&abort, || {})?;
            if quiet {
                break;
            }
            if timed_out {
                worker::set_paused(false);
                let error = format!(
                    "checkpoint timed out after {:?} draining the dataflow",
                    self.config.timeout
                );
                let tolerated = lock(&self.round).tolerated;
                self.rendezvous.wait(&abort, || {
                    *lock(&self.times) = (started, Instant::now());
                    self.requested.store(false, Ordering::SeqCst);
                })?;
                return match tolerated {
                    true => Ok(AfterRound::Continue),
                    false => Err(EngineError::Runtime(error)),
                };
            }
        }
        let drain_ms = started.elapsed().as_millis() as u64;
        let finishing = self.done_workers.load(Ordering::SeqCst) == self.workers;
        let id = self.next_id.load(Ordering::SeqCst);
        // Sinks first: a file sink closes its in-progress file here, and
        // its state (the files the checkpoint commits) must include it.
        // Deltas need a durable checkpoint to build on.
        let whole = self.committer.take_whole_next();
        let delta_allowed = self.config.incremental && self.committer.has_base() && !whole;
        let snapshot = worker::prepare_sinks(id)
            .and_then(|outputs| Ok((worker::snapshot_all(delta_allowed)?, outputs)));
        {
            let mut round = lock(&self.round);
            if round.states.len() != self.workers {
                round.states = (0..self.workers).map(|_| None).collect();
            }
            match snapshot {
                Ok((states, outputs)) => {
                    round.states[index] = Some(states);
                    round.outputs.extend(outputs);
                }
                Err(error) => round.committed = Some(Err(error.to_string())),
            }
        }
        self.rendezvous.wait(&abort, || {
            let mut round = lock(&self.round);
            let result = if context.failed() {
                Err("the job failed".to_string())
            } else if let Some(Err(error)) = round.committed.take() {
                Err(error)
            } else {
                let pending = Pending {
                    id,
                    started,
                    started_ms,
                    drain_ms,
                    paused_ms: started.elapsed().as_millis() as u64,
                    states: round
                        .states
                        .iter_mut()
                        .map(|s| s.take().unwrap_or_default())
                        .collect(),
                    outputs: std::mem::take(&mut round.outputs),
                };
                self.next_id.store(id + 1, Ordering::SeqCst);
                self.commit_in_background(pending)
            };
            round.committed = Some(result);
        })?;
        let result = lock(&self.round).committed.clone();
        self.rendezvous.wait(&abort, || {
            let mut round = lock(&self.round);
            round.committed = None;
            round.states.clear();
            round.outputs.clear();
            *lock(&self.times) = (started, Instant::now());
            self.requested.store(false, Ordering::SeqCst);
        })?;
        worker::set_paused(false);
        match result {
            Some(Ok(())) => {}
            // A failing job is not checkpointed; it ends with its error.
            Some(Err(_)) if context.failed() => {}
            Some(Err(error)) => {
                return Err(EngineError::Runtime(format!(
                    "checkpoint {id} failed: {error}"
                )));
            }
            None => {}
        }
        if finishing {
            // The job ends once its last output is durable.
            self.rendezvous.wait(&abort, || self.settle())?;
            self.catch_up(notified)?;
            // A final checkpoint that failed within the tolerance holds
            // what the sinks owe: the job ends only once one is durable
            // (every worker's input is done, so the next round is due at
            // once; failing again exceeds the tolerance).
            let committing = matches!(result, Some(Ok(())));
            if committing && !context.failed() && self.committer.durable() < id {
                return Ok(AfterRound::Continue);
            }
            return Ok(AfterRound::Finished);
        }
        Ok(AfterRound::Continue)
    }

    /// Run by the last worker to arrive, with every worker waiting.
    fn commit_in_background(&self, pending: Pending) -> Result<(), String> {
        let committer = self.committer.clone();
        let thread = std::thread::Builder::new()
            .name(format!("checkpoint-{}", pending.id))
            .spawn(move || committer.commit(pending))
            .map_err(|e| format!("cannot start the commit: {e}"))?;
        *lock(&self.committing) = Some(thread);
        Ok(())
    }
}

/// A barrier whose last arrival runs a closure before releasing the rest,
/// and which every waiter leaves when the job is aborted (a worker that
/// panicked never arrives).
struct Rendezvous {
    parties: usize,
    state: Mutex<(usize, u64)>,
    released: Condvar,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous {
            parties: parties.max(1),
            state: Mutex::new((0, 0)),
            released: Condvar::new(),
        }
    }

    fn wait(&self, aborted: &dyn Fn() -> bool, last: impl FnOnce()) -> Result<(), EngineError> {
        let mut state = lock(&self.state);
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            last();
            state.0 = 0;
            state.1 += 1;
            self.released.notify_all();
            return Ok(());
        }
        while state.1 == generation {
            if aborted() {
                return Err(EngineError::Runtime(
                    "the job was aborted during a checkpoint".into(),
                ));
            }
            state = self
                .released
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }
}
