//! Rows to another endpoint's stream or delivery stream, as Flink's
//! Kinesis and Firehose sinks send them: PutRecords (PutRecordBatch) of at
//! most `sink.batch.max-size` records and `sink.flush-buffer.size` bytes
//! (500 and 5 MiB, or 4 MiB for Firehose: the calls' own limits), sent
//! when a batch is full or `sink.flush-buffer.timeout` after its first
//! record. A thread per worker does the sending, so the job does
//! not wait on the network unless that thread falls behind (its queue is
//! bounded). Records the endpoint throttles are sent again with backoff
//! until written. A checkpoint `flush`es: it waits until everything handed
//! over so far is acknowledged, which makes the sink at-least-once.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use runnel_engine::EngineError;
use runnel_streams::PutEntry;
use serde_json::{Value, json};

use super::remote::RemoteKinesis;

const QUEUED_BATCHES: usize = 16;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a remote writer's records go.
#[derive(Debug, Clone)]
pub enum PutTarget {
    /// A Kinesis stream, by PutRecords.
    Stream(String),
    /// A Firehose delivery stream, by PutRecordBatch.
    DeliveryStream(String),
}

impl PutTarget {
    fn name(&self) -> &str {
        match self {
            PutTarget::Stream(name) | PutTarget::DeliveryStream(name) => name,
        }
    }

    fn connector(&self) -> &'static str {
        match self {
            PutTarget::Stream(_) => "kinesis",
            PutTarget::DeliveryStream(_) => "firehose",
        }
    }
}

/// When a remote writer sends what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_records: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
    pub fail_on_error: bool,
}

/// What the job hands its sender thread.
enum Message {
    Records(Vec<PutEntry>),
    /// Send everything buffered now, then answer.
    Flush(SyncSender<()>),
}

pub struct RemoteWriter {
    target: PutTarget,
    sender: Option<SyncSender<Message>>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

fn failed(target: &PutTarget, message: &str) -> EngineError {
    EngineError::Connector {
        connector: target.connector(),
        message: format!("stream '{}': {message}", target.name()),
    }
}

impl RemoteWriter {
    pub fn start(
        client: Arc<RemoteKinesis>,
        target: PutTarget,
        batching: Batching,
        worker: usize,
    ) -> Result<Self, EngineError> {
        let (sender, receiver) = mpsc::sync_channel::<Message>(QUEUED_BATCHES);
        let failure = Arc::new(Mutex::new(None));
        let mut batcher = Batcher {
            client,
            target: target.clone(),
            max_records: batching.max_records,
            max_bytes: batching.max_bytes,
            fail_on_error: batching.fail_on_error,
            failure: failure.clone(),
            buffer: Vec::new(),
            bytes: 0,
        };
        let timeout = batching.timeout;
        let thread = std::thread::Builder::new()
            .name(format!("{}-sink-{worker}", target.connector()))
            .spawn(move || {
                let mut oldest: Option<Instant> = None;
                loop {
                    let wait = oldest.map_or(Duration::from_secs(3600), |at| {
                        timeout.saturating_sub(at.elapsed())
                    });
                    match receiver.recv_timeout(wait) {
                        Ok(Message::Flush(done)) => {
                            batcher.flush_all();
                            oldest = None;
                            // The writer may have stopped waiting (a job
                            // aborted mid-checkpoint).
                            let _ = done.send(());
                        }
                        Ok(Message::Records(entries)) => {
                            oldest.get_or_insert_with(Instant::now);
                            for entry in entries {
                                batcher.add(entry);
                            }
                            if batcher.buffer.is_empty() {
                                oldest = None;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            batcher.flush_all();
                            oldest = None;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            batcher.flush_all();
                            return;
                        }
                    }
                }
            })
            .map_err(|e| failed(&target, &format!("starting its sender: {e}")))?;
        Ok(RemoteWriter {
            target,
            sender: Some(sender),
            failure,
            thread: Some(thread),
        })
    }

    fn check(&self) -> Result<(), EngineError> {
        match self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            Some(message) => Err(failed(&self.target, message)),
            None => Ok(()),
        }
    }

    pub fn send(&mut self, entries: Vec<PutEntry>) -> Result<(), EngineError> {
        self.check()?;
        let Some(sender) = &self.sender else {
            return Err(failed(&self.target, "written to after its end"));
        };
        sender
            .send(Message::Records(entries))
            .map_err(|_| failed(&self.target, "its sender has stopped"))
    }

    /// Sends what is buffered and waits until everything handed over so far
    /// is acknowledged, or fails with the error that stopped it.
    pub fn flush(&mut self) -> Result<(), EngineError> {
        self.check()?;
        // After `finish`, everything was sent when the thread ended.
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        let (done, flushed) = mpsc::sync_channel(1);
        sender
            .send(Message::Flush(done))
            .map_err(|_| failed(&self.target, "its sender has stopped"))?;
        flushed
            .recv()
            .map_err(|_| failed(&self.target, "its sender has stopped"))?;
        self.check()
    }

    /// Sends what is buffered and waits until it is written.
    pub fn finish(&mut self) -> Result<(), EngineError> {
        self.sender = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            return Err(failed(&self.target, "its sender panicked"));
        }
        self.check()
    }
}

impl Drop for RemoteWriter {
    /// A stopped job's rows are still sent.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

struct Batcher {
    client: Arc<RemoteKinesis>,
    target: PutTarget,
    max_records: usize,
    max_bytes: usize,
    fail_on_error: bool,
    failure: Arc<Mutex<Option<String>>>,
    buffer: Vec<PutEntry>,
    bytes: usize,
}

fn size(entry: &PutEntry) -> usize {
    entry.data.len() + entry.partition_key.len()
}

impl Batcher {
    fn add(&mut self, entry: PutEntry) {
        if !self.buffer.is_empty() && self.bytes + size(&entry) > self.max_bytes {
            self.flush_all();
        }
        self.bytes += size(&entry);
        self.buffer.push(entry);
        if self.buffer.len() >= self.max_records {
            self.flush_all();
        }
    }

    fn flush_all(&mut self) {
        let entries = std::mem::take(&mut self.buffer);
        self.bytes = 0;
        if entries.is_empty() || self.failure.lock().map_or(true, |f| f.is_some()) {
            return;
        }
        if let Err(message) = self.put(entries) {
            if self.fail_on_error {
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
            } else {
                tracing::error!(stream = %self.target.name(), connector = self.target.connector(), %message, "records not written ('sink.fail-on-error' is false)");
            }
        }
    }

    /// PutRecords (PutRecordBatch) until every record is in; the ones the
    /// answer lists as failed are sent again after a backoff.
    fn put(&self, mut entries: Vec<PutEntry>) -> Result<(), String> {
        let mut backoff = FIRST_BACKOFF;
        let (operation, name_field, results_field) = match &self.target {
            PutTarget::Stream(_) => ("PutRecords", "StreamName", "Records"),
            PutTarget::DeliveryStream(_) => {
                ("PutRecordBatch", "DeliveryStreamName", "RequestResponses")
            }
        };
        while !entries.is_empty() {
            let records: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let data = base64::engine::general_purpose::STANDARD.encode(&e.data);
                    match &self.target {
                        PutTarget::DeliveryStream(_) => json!({ "Data": data }),
                        PutTarget::Stream(_) => {
                            let mut record = json!({"Data": data, "PartitionKey": e.partition_key});
                            if let Some(hash) = e.explicit_hash_key {
                                record["ExplicitHashKey"] = json!(hash.to_string());
                            }
                            record
                        }
                    }
                })
                .collect();
            let answer = self
                .client
                .call(
                    operation,
                    &json!({name_field: self.target.name(), "Records": records}),
                )
                .map_err(|e| e.to_string())?;
            let results = answer
                .get(results_field)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{operation} answered without {results_field}: {answer}"))?;
            if results.len() != entries.len() {
                return Err(format!(
                    "{operation} answered {} results for {} records",
                    results.len(),
                    entries.len()
                ));
            }
            let again: Vec<PutEntry> = entries
                .into_iter()
                .zip(results)
                .filter(|(_, result)| result.get("ErrorCode").is_some_and(|c| !c.is_null()))
                .map(|(entry, _)| entry)
                .collect();
            if !again.is_empty() {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            entries = again;
        }
        Ok(())
    }
}
