//! Runnel's sharded durable log with Kinesis Data Streams semantics.
//!
//! A stream is a set of shards over the 128-bit MD5 hash space; a shard is
//! an append-only log of records keyed by a per-shard increasing counter in
//! the `streams.records` column family. Puts are group-committed by one
//! writer thread into synced WAL writes and acknowledged only after. This
//! crate knows nothing of HTTP: the wire protocols live in the server.

pub mod aggregated;
mod appends;
mod control;
pub mod crypto;
mod error;
pub mod hash;
pub mod iterator;
pub mod keys;
pub mod limits;
pub mod model;
mod reader;
mod reshard;
mod retention;
mod state;
mod writer;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::DB;
use tokio::sync::oneshot;

pub use appends::Wake;
pub use control::{
    AccountSettings, ConsumerInfo, SHARD_LEVEL_METRICS, StreamInfo, stream_name_from_arn,
};
pub use error::{Result, StreamsError};
pub use limits::ShardLimits;
pub use model::{CapacityMode, ShardMeta, StreamMeta, StreamStatus};
pub use reader::{
    GetRecordsOutput, IteratorStart, MAX_GET_BYTES, MAX_GET_RECORDS, ReadEnd, Record, RecordRef,
};
pub use writer::{ExtraWrite, PutEntry, PutOutcome};

use state::Inner;
use writer::Job;

/// The column families this service owns; pass them to `Store::open`.
pub const COLUMN_FAMILIES: &[&str] = &[state::CF_META, state::CF_RECORDS];

/// Milliseconds since the epoch. Injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

#[derive(Clone)]
pub struct StreamsConfig {
    /// Per-shard throughput limits; None turns them off.
    pub limits: Option<ShardLimits>,
    pub iterator_ttl_ms: u64,
    pub retention_check_interval: Duration,
    pub region: String,
    pub account: String,
    pub max_open_shards: u32,
    /// The key records of encrypted streams are sealed with.
    pub encryption_key: Option<[u8; crypto::KEY_LEN]>,
    pub clock: Clock,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            limits: Some(ShardLimits::default()),
            iterator_ttl_ms: 5 * 60 * 1000,
            retention_check_interval: Duration::from_secs(60),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            max_open_shards: 500,
            encryption_key: None,
            clock: system_clock(),
        }
    }
}

/// The stream service. Dropping it stops its threads after the queued
/// writes are done.
pub struct Streams {
    inner: Arc<Inner>,
    jobs: Option<SyncSender<Job>>,
    stop: Option<SyncSender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Enough queued jobs to keep a group commit full while the last one syncs.
const QUEUE_DEPTH: usize = 64 * 1024;

impl Streams {
    pub fn open(db: Arc<DB>, config: StreamsConfig) -> Result<Self> {
        let inner = Arc::new(Inner::load(db, config)?);
        let (jobs, receiver) = mpsc::sync_channel(QUEUE_DEPTH);
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("streams-writer".into())
                .spawn(move || writer::run(inner, receiver))
                .map_err(|e| StreamsError::Internal(format!("starting the writer: {e}")))?
        };
        let (stop, stopped) = mpsc::sync_channel::<()>(1);
        let trimmer = {
            let jobs = jobs.clone();
            let interval = inner.config.retention_check_interval;
            std::thread::Builder::new()
                .name("streams-retention".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                        let job =
                            Job::Control(Box::new(|inner: &Inner| match inner.trim_expired() {
                                Ok(0) => {}
                                Ok(n) => tracing::info!(records = n, "trimmed expired records"),
                                Err(error) => tracing::warn!(%error, "retention trim failed"),
                            }));
                        if jobs.send(job).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| StreamsError::Internal(format!("starting retention: {e}")))?
        };
        Ok(Streams {
            inner,
            jobs: Some(jobs),
            stop: Some(stop),
            threads: vec![writer, trimmer],
        })
    }

    pub fn config(&self) -> &StreamsConfig {
        &self.inner.config
    }

    pub fn now(&self) -> u64 {
        self.inner.now()
    }

    pub fn stream_arn(&self, name: &str) -> String {
        self.inner.stream_arn(name)
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StreamsError::Internal("the stream writer has stopped".into()))
    }

    /// Runs `work` on the writer thread, after every put queued before it.
    async fn on_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Control(Box::new(move |inner| {
            let _ = reply.send(work(inner));
        })))?;
        answer
            .await
            .map_err(|_| StreamsError::Internal("the stream writer has stopped".into()))?
    }

    /// Appends records; the answer comes once they are durable.
    pub async fn put(&self, stream: &str, records: Vec<PutEntry>) -> Result<Vec<PutOutcome>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Put {
            stream: stream.to_string(),
            records,
            reply,
        })?;
        answer
            .await
            .map_err(|_| StreamsError::Internal("the stream writer has stopped".into()))?
    }

    /// `put` from a thread outside any async runtime (a job's worker);
    /// it blocks until the records are durable.
    pub fn put_blocking(&self, stream: &str, records: Vec<PutEntry>) -> Result<Vec<PutOutcome>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Put {
            stream: stream.to_string(),
            records,
            reply,
        })?;
        answer
            .blocking_recv()
            .map_err(|_| StreamsError::Internal("the stream writer has stopped".into()))?
    }

    /// Writes the records of every stream in `puts` (sequence numbers
    /// assigned as a put assigns them, but never throttled: a job produced
    /// them and they must all go in) and the `extra` writes to other column
    /// families in ONE synced write: all of it or, with an error, nothing
    /// (a missing stream, a record over its stream's limit, a column family
    /// not open). Blocks until the write is durable, so it must be called
    /// from a thread outside any async runtime (a job's worker).
    pub fn commit_with(
        &self,
        puts: Vec<(String, Vec<PutEntry>)>,
        extra: Vec<ExtraWrite>,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Commit { puts, extra, reply })?;
        answer
            .blocking_recv()
            .map_err(|_| StreamsError::Internal("the stream writer has stopped".into()))?
    }

    /// The largest record (data and partition key) `stream` takes now, so
    /// that a writer holding records back can refuse one when it is
    /// written rather than when it is committed.
    pub fn max_record_bytes(&self, stream: &str) -> Result<usize> {
        self.inner
            .read()
            .streams
            .get(stream)
            .map(|entry| entry.meta.max_record_bytes())
            .ok_or_else(|| self.inner.not_found(stream))
    }

    pub async fn create_stream(&self, name: &str, shards: u32, mode: CapacityMode) -> Result<()> {
        let name = name.to_string();
        self.on_writer(move |inner| inner.create_stream(&name, shards, mode))
            .await
    }

    pub async fn delete_stream(&self, name: &str, enforce_consumer_deletion: bool) -> Result<()> {
        let name = name.to_string();
        self.on_writer(move |inner| inner.delete_stream(&name, enforce_consumer_deletion))
            .await
    }

    pub async fn split_shard(&self, stream: &str, shard: u32, new_start: u128) -> Result<()> {
        let stream = stream.to_string();
        self.on_writer(move |inner| inner.split_shard(&stream, shard, new_start))
            .await
    }

    pub async fn merge_shards(&self, stream: &str, shard: u32, adjacent: u32) -> Result<()> {
        let stream = stream.to_string();
        self.on_writer(move |inner| inner.merge_shards(&stream, shard, adjacent))
            .await
    }

    /// Returns the open shard count before the change.
    pub async fn update_shard_count(&self, stream: &str, target: u32) -> Result<u32> {
        let stream = stream.to_string();
        self.on_writer(move |inner| inner.update_shard_count(&stream, target))
            .await
    }

    /// Trims expired records now rather than at the next interval.
    pub async fn trim_expired(&self) -> Result<u64> {
        self.on_writer(|inner| inner.trim_expired()).await
    }

    pub fn shard_iterator(
        &self,
        stream: &str,
        shard: u32,
        start: &IteratorStart,
    ) -> Result<String> {
        self.inner.shard_iterator(stream, shard, start)
    }

    pub fn get_records(&self, iterator: &str, limit: usize) -> Result<GetRecordsOutput> {
        self.inner.get_records(iterator, limit, true)
    }

    /// GetRecords for an enhanced fan-out subscription: outside the shard's
    /// shared read limits.
    pub fn read_subscription(&self, iterator: &str, limit: usize) -> Result<GetRecordsOutput> {
        self.inner.get_records(iterator, limit, false)
    }

    /// `read_subscription` for a reader in this process: each record is
    /// handed to `visit` borrowed from the store, with no copy made.
    pub fn read_subscription_with(
        &self,
        iterator: &str,
        limit: usize,
        visit: &mut impl FnMut(RecordRef<'_>),
    ) -> Result<ReadEnd> {
        self.inner.read_with(iterator, limit, false, visit)
    }

    pub fn describe(&self, name: &str) -> Result<StreamInfo> {
        self.inner.describe(name)
    }

    /// Calls `wake` whenever records of `stream` become durable, or a shard
    /// of any stream may have ended, until the caller drops `wake`.
    pub fn on_append(&self, stream: &str, wake: &Wake) -> Result<()> {
        let id = self
            .inner
            .read()
            .streams
            .get(stream)
            .map(|entry| entry.meta.id)
            .ok_or_else(|| self.inner.not_found(stream))?;
        self.inner.appends.register(id, wake);
        Ok(())
    }

    /// Whether records written now are encrypted (cheaper than `describe`).
    pub fn is_encrypted(&self, name: &str) -> bool {
        self.inner
            .read()
            .streams
            .get(name)
            .is_some_and(|e| e.meta.encryption_key_id.is_some())
    }

    pub fn list_streams(&self) -> Vec<StreamInfo> {
        self.inner.list_streams()
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.stop.take();
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
