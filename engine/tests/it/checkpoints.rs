//! A job killed at a random moment and resumed from its last checkpoint
//! publishes, through an exactly-once sink, what an uninterrupted job
//! does: no row lost, none twice.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::checkpoint::{
    CheckpointConfig, CheckpointStorage, Coordinator, MemoryStorage, Mode, SinkOutput,
    StoredCheckpoint,
};
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::source::{BatchReader, MemoryReader, Poll};
use runnel_engine::window::kind::WindowKind;

use crate::checkpoint_operators::AfterCheckpoint;
use crate::support::{HeldRows, Row, batch_of, oracle, render, spec, windowed_dataflow};

/// A reader that fails after `polls` polls: the process "dies" there (or,
/// with `after_checkpoint`, once a checkpoint after that poll is durable).
struct Crashing {
    inner: MemoryReader,
    polls: Option<usize>,
    after_checkpoint: Option<AfterCheckpoint>,
}

impl BatchReader for Crashing {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        if let Some(left) = self.polls.as_mut() {
            if *left == 0 {
                if let Some(after) = self.after_checkpoint.as_mut()
                    && !after.taken()?
                {
                    return Ok(Poll::Idle);
                }
                return Err(EngineError::Runtime("killed".into()));
            }
            *left -= 1;
        }
        self.inner.poll()
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.checkpoint_position()
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        self.inner.restore_position(position)
    }
}

/// Runs the windowed job, checkpointing into `storage` every `interval`
/// and resuming from its latest checkpoint; worker 0 dies after
/// `crash_after` polls, if given.
fn run_once(
    batches: &Arc<Vec<RecordBatch>>,
    window: WindowKind,
    workers: usize,
    bound: i64,
    storage: &Arc<MemoryStorage>,
    interval: Duration,
    crash_after: Option<usize>,
) -> Result<(), EngineError> {
    let config = config(interval, 0);
    let storage: Arc<dyn CheckpointStorage> = storage.clone();
    run_with(
        batches,
        window,
        workers,
        bound,
        storage,
        config,
        crash_after.map(|poll| CrashAt {
            poll,
            after_a_checkpoint: false,
        }),
    )
}

/// Where worker 0 dies: at a poll, or once a checkpoint after it is
/// durable.
#[derive(Clone, Copy)]
struct CrashAt {
    poll: usize,
    after_a_checkpoint: bool,
}

/// As `run_once`, crashing only once a checkpoint after the crash's poll
/// is durable.
fn run_once_crashing_after_a_checkpoint(
    batches: &Arc<Vec<RecordBatch>>,
    window: WindowKind,
    storage: &Arc<MemoryStorage>,
    crash_after: usize,
) -> Result<(), EngineError> {
    let storage: Arc<dyn CheckpointStorage> = storage.clone();
    run_with(
        batches,
        window,
        1,
        0,
        storage,
        config(Duration::ZERO, 0),
        Some(CrashAt {
            poll: crash_after,
            after_a_checkpoint: true,
        }),
    )
}

fn config(interval: Duration, tolerable_failures: u32) -> CheckpointConfig {
    CheckpointConfig {
        interval,
        min_pause: Duration::ZERO,
        mode: Mode::ExactlyOnce,
        retained: 1,
        timeout: Duration::from_secs(60),
        incremental: true,
        tolerable_failures,
    }
}

fn run_with(
    batches: &Arc<Vec<RecordBatch>>,
    window: WindowKind,
    workers: usize,
    bound: i64,
    storage: Arc<dyn CheckpointStorage>,
    config: CheckpointConfig,
    crash: Option<CrashAt>,
) -> Result<(), EngineError> {
    let context = Arc::new(JobContext::default());
    let coordinator = Coordinator::new(config, storage.clone(), workers, true)?;
    let _ = context.checkpoints.set(Arc::new(coordinator));
    let spec = Arc::new(spec(window));
    let batches = batches.clone();
    run(&Cluster::local(workers), context, move |worker, context| {
        let (index, peers) = (worker.index(), worker.peers());
        let reader = Box::new(Crashing {
            inner: MemoryReader::new(batches.clone(), index, peers),
            polls: crash.map(|c| c.poll).filter(|_| index == 0),
            after_checkpoint: crash
                .is_some_and(|c| c.after_a_checkpoint)
                .then(|| AfterCheckpoint::new(storage.clone())),
        });
        let held = Box::new(HeldRows::new(|batch| render(batch, true)));
        windowed_dataflow(worker, context, reader, spec.clone(), bound, held)
    })
}

fn published(storage: &MemoryStorage) -> Vec<String> {
    let mut rows: Vec<String> = storage
        .published
        .lock()
        .unwrap()
        .iter()
        .flat_map(|output| output.records.iter())
        .map(|record| String::from_utf8(record.data.clone()).unwrap())
        .collect();
    rows.sort();
    rows
}

fn kinds() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..200).prop_map(|size| WindowKind::tumble(size).unwrap()),
        (1i64..60, 1i64..5).prop_map(|(slide, n)| WindowKind::hop(slide, slide * n).unwrap()),
        (1i64..60, 1i64..5).prop_map(|(step, n)| WindowKind::cumulate(step, step * n).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For random rows, worker counts, batch splits, checkpoint intervals
    /// and crash points: crash, drop everything, restore, continue; what
    /// the exactly-once sink published equals an uninterrupted run's.
    #[test]
    fn a_windowed_job_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..2000, -100i64..100), 1..160),
        kind in kinds(),
        workers in 1usize..4,
        batch_rows in 1usize..20,
        interval_ms in 0u64..4,
        crash_after in 0usize..12,
        crashes in 1usize..3,
    ) {
        let mut rows: Vec<Row> = rows;
        rows.sort_by_key(|r| r.1);
        let batches = Arc::new(rows.chunks(batch_rows).map(batch_of).collect::<Vec<_>>());
        let storage = Arc::new(MemoryStorage::default());
        let interval = Duration::from_millis(interval_ms);
        // Worker 0 polls its share of the batches, then once more for the end.
        let polls = batches.len().div_ceil(workers) + 1;
        for crash in 0..crashes {
            let at = (crash_after + crash) % polls;
            let result = run_once(&batches, kind, workers, 0, &storage, interval, Some(at));
            prop_assert!(result.is_err(), "the crashing run fails");
        }
        run_once(&batches, kind, workers, 0, &storage, interval, None).unwrap();
        prop_assert!(storage.latest().unwrap().is_some());
        prop_assert_eq!(published(&storage), oracle(&rows, kind));
    }
}

#[test]
fn a_checkpoint_of_another_worker_count_is_refused() {
    let storage = Arc::new(MemoryStorage::default());
    let batches = Arc::new(vec![batch_of(&[(1, 10, 1), (2, 20, 2)])]);
    let kind = WindowKind::tumble(100).unwrap();
    run_once(
        &batches,
        kind,
        2,
        0,
        &storage,
        Duration::from_millis(1),
        None,
    )
    .unwrap();
    let error = run_once(
        &batches,
        kind,
        3,
        0,
        &storage,
        Duration::from_millis(1),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("2 workers"), "{error}");
}

#[test]
fn a_crash_midway_resumes_from_a_checkpoint_taken_before_it() {
    let rows: Vec<Row> = (0..400).map(|i| (i % 5, i * 10, i)).collect();
    let batches = Arc::new(rows.chunks(8).map(batch_of).collect::<Vec<_>>());
    let kind = WindowKind::tumble(300).unwrap();
    let storage = Arc::new(MemoryStorage::default());
    let interval = Duration::ZERO;
    assert!(run_once_crashing_after_a_checkpoint(&batches, kind, &storage, 25).is_err());
    let before = storage
        .latest()
        .unwrap()
        .expect("a checkpoint before the crash");
    let published_before = published(&storage).len();
    assert!(
        published_before > 0,
        "windows closed before the crash were published"
    );
    run_once(&batches, kind, 1, 0, &storage, interval, None).unwrap();
    assert!(storage.latest().unwrap().unwrap().id > before.id);
    assert_eq!(published(&storage), oracle(&rows, kind));
}

/// Whether a commit (of this id, holding these outputs) fails.
type Fails = Box<dyn Fn(u64, &[SinkOutput]) -> bool + Send + Sync>;

/// A storage whose commits fail where `fails` says, as a full disk would
/// fail them.
struct Failing {
    inner: MemoryStorage,
    fails: Fails,
    /// Records the failed commits held.
    lost: std::sync::atomic::AtomicUsize,
}

impl Failing {
    fn new(fails: Fails) -> Self {
        Failing {
            inner: MemoryStorage::default(),
            fails,
            lost: Default::default(),
        }
    }
}

impl CheckpointStorage for Failing {
    fn latest(&self) -> Result<Option<StoredCheckpoint>, EngineError> {
        self.inner.latest()
    }

    fn get(&self, id: u64) -> Result<Option<StoredCheckpoint>, EngineError> {
        self.inner.get(id)
    }

    fn ids(&self) -> Result<Vec<u64>, EngineError> {
        self.inner.ids()
    }

    fn discard_after(&self, id: u64) -> Result<(), EngineError> {
        self.inner.discard_after(id)
    }

    fn commit(
        &self,
        checkpoint: &StoredCheckpoint,
        outputs: Vec<SinkOutput>,
        retained: usize,
    ) -> Result<(), EngineError> {
        if (self.fails)(checkpoint.id, &outputs) {
            let records = outputs.iter().map(|o| o.records.len()).sum::<usize>();
            self.lost
                .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
            return Err(EngineError::Runtime("no space left on device".into()));
        }
        self.inner.commit(checkpoint, outputs, retained)
    }
}

/// `execution.checkpointing.tolerable-failed-checkpoints`: with one
/// tolerated, a job whose every other checkpoint fails goes on, and what
/// its exactly-once sink held for them is published with the next,
/// exactly once; two failures in a row, or one with none tolerated, fail
/// it.
#[test]
fn failed_checkpoints_within_the_tolerance_lose_nothing() {
    let rows: Vec<Row> = (0..400).map(|i| (i % 5, i * 10, i)).collect();
    let batches = Arc::new(rows.chunks(1).map(batch_of).collect::<Vec<_>>());
    let kind = WindowKind::tumble(300).unwrap();
    let run = |failing: Vec<u64>, tolerated: u32| {
        let storage = Arc::new(Failing::new(Box::new(move |id, _| failing.contains(&id))));
        let config = config(Duration::ZERO, tolerated);
        let shared: Arc<dyn CheckpointStorage> = storage.clone();
        let result = run_with(&batches, kind, 2, 0, shared, config, None);
        let lost = storage.lost.load(std::sync::atomic::Ordering::Relaxed);
        (result, published(&storage.inner), lost)
    };
    let (result, rows_out, lost) = run((1..100).map(|n| 2 * n).collect(), 1);
    result.expect("failures within the tolerance");
    assert!(lost > 0, "no failed checkpoint held output");
    assert_eq!(rows_out, oracle(&rows, kind));
    let (result, _, _) = run(vec![2, 3], 1);
    let error = result.expect_err("two failures in a row").to_string();
    assert!(error.contains("no space left"), "{error}");
    assert!(run(vec![2], 0).0.is_err(), "none tolerated");
}

/// When the final checkpoint (taken as the input ends, holding what the
/// sink owes) fails within the tolerance, the job takes another before
/// it ends, so that what the sink held is published.
#[test]
fn a_failed_final_checkpoint_within_the_tolerance_is_taken_again() {
    let rows: Vec<Row> = (0..400).map(|i| (i % 5, i * 10, i)).collect();
    let batches = Arc::new(rows.chunks(8).map(batch_of).collect::<Vec<_>>());
    let kind = WindowKind::tumble(300).unwrap();
    // The first commit holding the last window, [3900, 4200), fails.
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed_once = failed.clone();
    let storage = Arc::new(Failing::new(Box::new(move |_, outputs| {
        let holds = outputs
            .iter()
            .flat_map(|o| o.records.iter())
            .any(|r| r.data.starts_with(b"3900,4200,"));
        holds && !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst)
    })));
    let shared: Arc<dyn CheckpointStorage> = storage.clone();
    // No round is due by time: the only one is the final one.
    let config = config(Duration::from_secs(3600), 1);
    run_with(&batches, kind, 2, 0, shared, config, None).expect("one failure is tolerated");
    assert!(failed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(published(&storage.inner), oracle(&rows, kind));
}

/// Every byte of a window's or a source's state flipped in turn (and the
/// state cut short): the restored job fails with a corrupt-state error,
/// never a panic.
#[test]
fn a_corrupt_window_or_source_state_is_an_error() {
    use runnel_engine::checkpoint::encoding::{decode, encode};
    let rows: Vec<Row> = (0..200).map(|i| (i % 3, i * 10, i)).collect();
    let batches = Arc::new(rows.chunks(10).map(batch_of).collect::<Vec<_>>());
    let kind = WindowKind::tumble(700).unwrap();
    let storage = Arc::new(MemoryStorage::default());
    assert!(run_once(&batches, kind, 1, 0, &storage, Duration::ZERO, Some(12)).is_err());
    let taken = storage.latest().unwrap().expect("a checkpoint");
    let states = decode(&taken.state).unwrap();
    for (index, (id, bytes)) in states[0].iter().enumerate() {
        let mut spoiled: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(bytes.len() / 16 + 1)
            .map(|at| {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x5a;
                flipped
            })
            .collect();
        spoiled.push(bytes[..bytes.len() / 2].to_vec());
        for bad in spoiled {
            let mut worker = states[0].clone();
            worker[index].1 = bad;
            let corrupt = Arc::new(MemoryStorage::default());
            let checkpoint = StoredCheckpoint {
                state: encode(&[worker]),
                ..taken.clone()
            };
            corrupt.commit(&checkpoint, Vec::new(), 1).unwrap();
            let error = run_once(
                &batches,
                kind,
                1,
                0,
                &corrupt,
                Duration::from_secs(60),
                None,
            )
            .expect_err("a corrupt state does not restore")
            .to_string();
            assert!(error.contains("corrupt"), "{id}: {error}");
        }
    }
}
