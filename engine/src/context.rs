//! What every operator of a running job shares: its counters and the first
//! error that stopped it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::EngineError;

pub struct JobContext {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Rows older than the watermark when they arrived, dropped.
    pub late_records: AtomicU64,
    /// What interval joins, TTL joins and append-only GROUP BYs hold, on
    /// all workers: rows for joins, keys for aggregates.
    pub state_rows: AtomicU64,
    /// The sinks' input watermark; timely frontiers are global, so any
    /// worker's view is the job's.
    pub watermark: AtomicI64,
    /// The furthest watermark any source of this process has reached: where
    /// an idle source moves its own so that it does not hold the rest back.
    pub source_watermark: AtomicI64,
    failed: AtomicBool,
    /// A worker panicked: its share of the dataflow is gone, so the others
    /// could wait for its progress forever. Every worker leaves at once.
    aborted: AtomicBool,
    stopped: AtomicBool,
    error: Mutex<Option<EngineError>>,
    /// Each source's and sink's figures, one entry per worker.
    operators: Mutex<Vec<(String, Arc<OperatorFigures>)>>,
    /// Set before the job starts, if it is checkpointed.
    pub checkpoints: OnceLock<Arc<crate::checkpoint::Coordinator>>,
}

/// One worker's share of one source or sink.
pub struct OperatorFigures {
    pub rows: AtomicU64,
    /// Its input (sink) or output (source) watermark.
    pub watermark: AtomicI64,
}

/// A source's or sink's figures over every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFigures {
    pub name: String,
    pub rows: u64,
    /// The least over the workers: where the operator as a whole is.
    pub watermark: i64,
}

impl Default for JobContext {
    fn default() -> Self {
        JobContext {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            late_records: AtomicU64::new(0),
            state_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            source_watermark: AtomicI64::new(i64::MIN),
            failed: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
            operators: Mutex::new(Vec::new()),
            checkpoints: OnceLock::new(),
        }
    }
}

impl JobContext {
    /// Records the first error; sources stop reading once a job has failed.
    pub fn fail(&self, error: EngineError) {
        tracing::error!(%error, "job failed");
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Fails the job and makes every worker leave without draining: a
    /// worker panicked and the dataflow cannot complete.
    pub fn abort(&self, error: EngineError) {
        self.fail(error);
        self.aborted.store(true, Ordering::SeqCst);
    }

    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Ends the job as if every source had reached its end: windows fire,
    /// sinks flush, and the job returns normally (Ctrl-C on an unbounded
    /// job).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Ends the job at once, without draining: nothing more is written
    /// (Flink's cancel, and a stop after a savepoint, which the job
    /// resumes from). The job returns normally.
    pub fn cancel(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether sources should end now: the job stopped or failed.
    pub fn ending(&self) -> bool {
        self.failed() || self.stopped.load(Ordering::Relaxed)
    }

    pub fn take_error(&self) -> Option<EngineError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// A worker's counters for the source or sink `name`.
    pub fn register(&self, name: &str) -> Arc<OperatorFigures> {
        let figures = Arc::new(OperatorFigures {
            rows: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
        });
        self.operators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), figures.clone()));
        figures
    }

    /// Every source's and sink's figures, summed over the workers.
    pub fn operator_figures(&self) -> Vec<NamedFigures> {
        let mut by_name: BTreeMap<&str, NamedFigures> = BTreeMap::new();
        let operators = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        for (name, figures) in operators.iter() {
            let rows = figures.rows.load(Ordering::Relaxed);
            let watermark = figures.watermark.load(Ordering::Relaxed);
            by_name
                .entry(name)
                .and_modify(|f| {
                    f.rows += rows;
                    f.watermark = f.watermark.min(watermark);
                })
                .or_insert(NamedFigures {
                    name: name.clone(),
                    rows,
                    watermark,
                });
        }
        by_name.into_values().collect()
    }

    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
