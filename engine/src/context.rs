//! What every operator of a running job shares: its counters and the first
//! error that stopped it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::EngineError;

#[derive(Default)]
pub struct JobContext {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Rows older than the watermark when they arrived, dropped.
    pub late_records: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<EngineError>>,
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

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn take_error(&self) -> Option<EngineError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
