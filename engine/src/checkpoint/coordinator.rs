//! What the workers of one checkpointed job share: when the next
//! checkpoint is due, the count of batches in flight, and the rounds in
//! which all workers drain, snapshot and commit together. A job over
//! several processes runs the same rounds in every process: each decision
//! of a round is taken from every process's figures (`peers`), and each
//! process writes its workers' share of the checkpoint to its own
//! storage; a checkpoint is complete once every process has made its
//! share durable, and only then do exactly-once sinks publish it.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use crate::checkpoint::chain::{self, Resolved};
use crate::checkpoint::committer::{Chains, CheckpointStats, Committer, Pending, lock};
use crate::checkpoint::peers::Peers;
use crate::checkpoint::storage::{CheckpointStorage, SinkOutput, StoredCheckpoint};
use crate::checkpoint::worker::Snapshot;
use crate::checkpoint::{CheckpointConfig, worker};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::wall_clock_millis;

/// Each worker's states of the checkpoint resumed from, chains resolved.
type RestoredStates = Vec<Vec<(String, Resolved)>>;

/// The checkpoint a job resumes from: its id and each worker's states.
type Restore = Option<(u64, RestoredStates)>;

pub struct Coordinator {
    config: CheckpointConfig,
    /// This process's workers.
    workers: usize,
    restore: OnceLock<Restore>,
    /// A cluster's storage and whether it resumes, until its processes
    /// agree on the checkpoint to resume from (`join_cluster`).
    deferred: Mutex<Option<(Arc<dyn CheckpointStorage>, bool)>>,
    /// The other processes of a job over several.
    peers: OnceLock<Arc<Peers>>,
    /// The global index of this process's first worker.
    first_worker: AtomicUsize,
    /// Rounds ended, counted alike in every process.
    rounds: AtomicU64,
    /// Gathers run, counted alike in every process.
    gathers: AtomicU64,
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
    /// Every worker's input (in every process) had ended.
    finishing: bool,
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
        let (restore, last) = load(storage.as_ref(), latest, workers)?;
        let committer = Committer::new(storage, config.retained, config.tolerable_failures, last);
        let coordinator = Self::with(config, workers, committer);
        coordinator.resume_from(restore);
        Ok(coordinator)
    }

    /// For one process of a job over several: what it resumes from is
    /// agreed with the other processes once connected (`join_cluster`).
    /// Each process keeps one checkpoint more than `retained`: the newest
    /// may not be complete everywhere.
    pub fn for_cluster(
        config: CheckpointConfig,
        storage: Arc<dyn CheckpointStorage>,
        workers: usize,
        resume: bool,
    ) -> Self {
        let committer = Committer::new(
            storage.clone(),
            config.retained + 1,
            config.tolerable_failures,
            None,
        )
        .with_fatal_commit_failures();
        let coordinator = Self::with(config, workers, committer);
        *lock(&coordinator.deferred) = Some((storage, resume));
        coordinator
    }

    fn with(config: CheckpointConfig, workers: usize, committer: Committer) -> Self {
        let now = Instant::now();
        Coordinator {
            config,
            workers,
            restore: OnceLock::new(),
            deferred: Mutex::new(None),
            peers: OnceLock::new(),
            first_worker: AtomicUsize::new(0),
            rounds: AtomicU64::new(0),
            gathers: AtomicU64::new(0),
            committer: Arc::new(committer),
            committing: Mutex::new(None),
            in_flight: Arc::new(AtomicI64::new(0)),
            requested: AtomicBool::new(false),
            done_workers: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            times: Mutex::new((now, now)),
            rendezvous: Rendezvous::new(workers),
            round: Mutex::new(Round::default()),
            allow_non_restored: AtomicBool::new(false),
        }
    }

    /// The checkpoint the job resumes from; the next one's id follows it.
    fn resume_from(&self, restore: Restore) {
        let next = restore.as_ref().map_or(1, |(id, _)| id + 1);
        self.next_id.store(next, Ordering::SeqCst);
        let _ = self.restore.set(restore);
    }

    /// Connects this process to the job's others (`control`: one stream
    /// per other process, `None` for this one) and agrees with them on
    /// the checkpoint to resume from: the newest one every process holds,
    /// which is complete; newer ones, which are not, are dropped.
    pub fn join_cluster(
        &self,
        control: Vec<Option<TcpStream>>,
        process_id: usize,
        aborted: &dyn Fn() -> bool,
    ) -> Result<(), EngineError> {
        let peers = Peers::start(control, process_id)?;
        let _ = self.peers.set(peers);
        self.first_worker
            .store(process_id * self.workers, Ordering::SeqCst);
        let Some((storage, resume)) = lock(&self.deferred).take() else {
            return Ok(());
        };
        let held = if resume { storage.ids()? } else { Vec::new() };
        let everyone = self.all(held.clone(), aborted)?;
        let common = held
            .iter()
            .rev()
            .find(|id| everyone.iter().all(|ids| ids.contains(id)))
            .copied();
        // A process commits checkpoint n only once every process has
        // committed n - 1: a process that lacks it lost its storage.
        let newest = everyone.iter().flatten().copied().max().unwrap_or(0);
        if newest > common.unwrap_or(0) + 1 {
            let lacking = everyone
                .iter()
                .position(|ids| !ids.contains(&(newest - 1)))
                .unwrap_or_default();
            return Err(EngineError::Plan(format!(
                "process {lacking} holds no checkpoint {}, which every process completed: its checkpoint storage is not the one this job wrote",
                newest - 1
            )));
        }
        if resume {
            storage.discard_after(common.unwrap_or(0))?;
        }
        let stored = match common {
            Some(id) => Some(storage.get(id)?.ok_or_else(|| {
                EngineError::Runtime(format!("checkpoint {id} vanished from its storage"))
            })?),
            None => None,
        };
        let (restore, last) = load(storage.as_ref(), stored, self.workers)?;
        self.committer.resume_from(last);
        self.resume_from(restore);
        Ok(())
    }

    /// Every process's `values`, indexed by process (only this one's
    /// outside a cluster).
    fn all(
        &self,
        values: Vec<u64>,
        aborted: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<u64>>, EngineError> {
        match self.peers.get() {
            Some(peers) => {
                let seq = self.gathers.fetch_add(1, Ordering::SeqCst);
                peers.gather(seq, values, aborted)
            }
            None => Ok(vec![values]),
        }
    }

    /// The newest checkpoint complete in every process.
    fn durable(&self) -> u64 {
        match self.peers.get() {
            Some(peers) => peers.durable(),
            None => self.committer.durable(),
        }
    }

    fn local_index(&self, worker_index: usize) -> usize {
        worker_index.saturating_sub(self.first_worker.load(Ordering::SeqCst))
    }

    fn all_inputs_done(&self) -> bool {
        match self.peers.get() {
            Some(peers) => peers.done_total() == (self.workers * peers.processes()) as u64,
            None => self.done_workers.load(Ordering::SeqCst) == self.workers,
        }
    }

    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Some(peers) = self.peers.get() {
            peers.want(self.rounds.load(Ordering::SeqCst) + 1);
        }
    }

    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
            || self
                .peers
                .get()
                .is_some_and(|peers| peers.wanted() > self.rounds.load(Ordering::SeqCst))
    }

    /// Ends a round in this process (its last local rendezvous).
    fn end_round(&self, started: Instant) {
        *lock(&self.times) = (started, Instant::now());
        self.requested.store(false, Ordering::SeqCst);
        self.rounds.fetch_add(1, Ordering::SeqCst);
    }

    /// Fails once another process of the job is gone.
    pub fn check_peers(&self) -> Result<(), EngineError> {
        match self.peers.get().and_then(|peers| peers.lost()) {
            Some(why) => Err(EngineError::Runtime(format!(
                "a process of the job is gone: {why}"
            ))),
            None => Ok(()),
        }
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
        self.request();
        self.next_id.load(Ordering::SeqCst)
    }

    /// The checkpoint the job resumed from.
    pub fn restored_from(&self) -> Option<u64> {
        self.restore
            .get()
            .and_then(Option::as_ref)
            .map(|(id, _)| *id)
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
        let durable = self.durable();
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

    /// Waits for this process's commit, then for every other process to
    /// have done the same (their durable checkpoints are announced before
    /// they join the gather).
    fn settle_everywhere(&self, aborted: &dyn Fn() -> bool) -> Result<(), EngineError> {
        self.settle();
        self.all(Vec::new(), aborted).map(drop)
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
        if let Some(peers) = self.peers.get() {
            peers.wake_on_want();
        }
        let local = self.local_index(timely_worker.index());
        let restore = self
            .restore
            .get()
            .and_then(Option::as_ref)
            .and_then(|(_, states)| {
                states.get(local).map(|states| {
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

    /// Whether this worker must join a round now. Worker 0 (of process
    /// 0) keeps the time.
    pub fn due(&self, worker_index: usize, input_done: bool, reported_done: &mut bool) -> bool {
        if input_done && !*reported_done {
            *reported_done = true;
            let done = self.done_workers.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(peers) = self.peers.get() {
                peers.announce_done(done as u64);
            }
        }
        if self.all_inputs_done() {
            return true;
        }
        if worker_index == 0 && !self.is_requested() {
            let (started, ended) = *lock(&self.times);
            // A round waits for the last commit with every worker held,
            // so while one runs the job goes on instead: as Flink does
            // with one concurrent checkpoint, the next starts after it.
            if started.elapsed() >= self.config.interval
                && ended.elapsed() >= self.config.min_pause
                && !self.commit_running()
            {
                self.request();
            }
        }
        self.is_requested()
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
        let index = self.local_index(timely_worker.index());
        let abort = || context.aborted();
        let started = Instant::now();
        let started_ms = wall_clock_millis();
        // Commits go in order, and a delta builds on a durable checkpoint
        // (in every process: the gather waits for the others' commits).
        self.rendezvous
            .wait(&abort, || self.settle_everywhere(&abort))?;
        self.catch_up(notified)?;
        worker::set_paused(true);
        // Drain: step until, with every worker between steps, nothing is
        // in flight anywhere.
        loop {
            timely_worker.step_or_park(Some(Duration::ZERO));
            self.rendezvous.wait(&abort, || {
                // Sends are counted where they are made and receipts where
                // they are taken: only the sum over processes says that
                // nothing is in flight between them.
                let everyone = self.all(
                    vec![
                        self.in_flight.load(Ordering::SeqCst) as u64,
                        u64::from(started.elapsed() > self.config.timeout),
                        self.done_workers.load(Ordering::SeqCst) as u64,
                    ],
                    &abort,
                )?;
                let figure = |i: usize| {
                    everyone
                        .iter()
                        .map(move |values| values.get(i).copied().unwrap_or(0))
                };
                let mut round = lock(&self.round);
                round.quiet = figure(0).fold(0i64, |sum, v| sum.wrapping_add(v as i64)) == 0;
                round.timed_out = !round.quiet && figure(1).any(|late| late != 0);
                round.finishing = figure(2).sum::<u64>() == (self.workers * everyone.len()) as u64;
                if round.timed_out {
                    round.tolerated = self.committer.tolerate(&format!(
                        "checkpoint timed out after {:?} draining the dataflow",
                        self.config.timeout
                    ));
                }
                Ok(())
            })?;
            let (quiet, timed_out) = {
                let round = lock(&self.round);
                (round.quiet, round.timed_out)
            };
            // Everyone reads before anyone can start the next wait.
            self.rendezvous.wait(&abort, || Ok(()))?;
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
                    self.end_round(started);
                    Ok(())
                })?;
                return match tolerated {
                    true => Ok(AfterRound::Continue),
                    false => Err(EngineError::Runtime(error)),
                };
            }
        }
        let drain_ms = started.elapsed().as_millis() as u64;
        let finishing = lock(&self.round).finishing;
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
            Ok(())
        })?;
        let result = lock(&self.round).committed.clone();
        self.rendezvous.wait(&abort, || {
            let mut round = lock(&self.round);
            round.committed = None;
            round.states.clear();
            round.outputs.clear();
            round.finishing = false;
            self.end_round(started);
            Ok(())
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
            // The job ends once its last output is durable (in every
            // process: the gather comes after each one's announcement).
            self.rendezvous
                .wait(&abort, || self.settle_everywhere(&abort))?;
            self.catch_up(notified)?;
            // A final checkpoint that failed within the tolerance holds
            // what the sinks owe: the job ends only once one is durable
            // (every worker's input is done, so the next round is due at
            // once; failing again exceeds the tolerance).
            let committing = matches!(result, Some(Ok(())));
            if committing && !context.failed() && self.durable() < id {
                return Ok(AfterRound::Continue);
            }
            return Ok(AfterRound::Finished);
        }
        Ok(AfterRound::Continue)
    }

    /// Run by the last worker to arrive, with every worker waiting.
    fn commit_in_background(&self, pending: Pending) -> Result<(), String> {
        let committer = self.committer.clone();
        let peers = self.peers.get().cloned();
        let thread = std::thread::Builder::new()
            .name(format!("checkpoint-{}", pending.id))
            .spawn(move || {
                committer.commit(pending);
                if let Some(peers) = peers {
                    peers.announce_durable(committer.durable());
                }
            })
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
    state: Mutex<Gathering>,
    released: Condvar,
}

#[derive(Default)]
struct Gathering {
    arrived: usize,
    generation: u64,
    /// A last arrival's closure failed: every waiter fails with it, then
    /// and ever after (the job ends).
    failed: Option<String>,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous {
            parties: parties.max(1),
            state: Mutex::new(Gathering::default()),
            released: Condvar::new(),
        }
    }

    fn wait(
        &self,
        aborted: &dyn Fn() -> bool,
        last: impl FnOnce() -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut state = lock(&self.state);
        if let Some(error) = &state.failed {
            return Err(EngineError::Runtime(error.clone()));
        }
        let generation = state.generation;
        state.arrived += 1;
        if state.arrived == self.parties {
            let result = last();
            if let Err(error) = &result {
                state.failed = Some(error.to_string());
            }
            state.arrived = 0;
            state.generation += 1;
            self.released.notify_all();
            return result;
        }
        while state.generation == generation {
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
        match &state.failed {
            Some(error) => Err(EngineError::Runtime(error.clone())),
            None => Ok(()),
        }
    }
}

/// The states of checkpoint `stored` (chains resolved), which must have
/// been taken with `workers` workers, and where each chain starts.
fn load(
    storage: &dyn CheckpointStorage,
    stored: Option<StoredCheckpoint>,
    workers: usize,
) -> Result<(Restore, Option<(u64, Chains)>), EngineError> {
    let Some(stored) = stored else {
        return Ok((None, None));
    };
    let states = chain::resolve(storage, &stored)?;
    if states.len() != workers {
        return Err(EngineError::Plan(format!(
            "checkpoint {} was taken with {} workers and cannot be restored into {workers}; run the job with parallelism {}",
            stored.id,
            states.len(),
            states.len()
        )));
    }
    let chains = states
        .iter()
        .enumerate()
        .flat_map(|(worker, states)| {
            states
                .iter()
                .map(move |(op, resolved)| ((worker, op.clone()), resolved.starts_at))
        })
        .collect();
    Ok((Some((stored.id, states)), Some((stored.id, chains))))
}
