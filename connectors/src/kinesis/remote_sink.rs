//! Rows to another endpoint's stream, as Flink's Kinesis sink sends them:
//! PutRecords of at most `sink.batch.max-size` records and
//! `sink.flush-buffer.size` bytes (500 and 5 MiB, PutRecords' own
//! limits), sent when a batch is full or `sink.flush-buffer.timeout` after
//! its first record. A thread per worker does the sending, so the job does
//! not wait on the network unless that thread falls behind (its queue is
//! bounded). Records the endpoint throttles are sent again with backoff
//! until written.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use runnel_engine::EngineError;
use runnel_streams::PutEntry;
use serde_json::{Value, json};

use super::options::KinesisOptions;
use super::remote::RemoteKinesis;

const QUEUED_BATCHES: usize = 16;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct RemoteWriter {
    stream: String,
    sender: Option<SyncSender<Vec<PutEntry>>>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

fn failed(stream: &str, message: &str) -> EngineError {
    EngineError::Connector {
        connector: "kinesis",
        message: format!("stream '{stream}': {message}"),
    }
}

impl RemoteWriter {
    pub fn start(
        client: Arc<RemoteKinesis>,
        options: &KinesisOptions,
        worker: usize,
    ) -> Result<Self, EngineError> {
        let (sender, receiver) = mpsc::sync_channel::<Vec<PutEntry>>(QUEUED_BATCHES);
        let failure = Arc::new(Mutex::new(None));
        let mut batcher = Batcher {
            client,
            stream: options.stream.clone(),
            max_records: options.batch_max_size,
            max_bytes: options.flush_buffer_size,
            fail_on_error: options.fail_on_error,
            failure: failure.clone(),
            buffer: Vec::new(),
            bytes: 0,
        };
        let timeout = options.flush_buffer_timeout;
        let thread = std::thread::Builder::new()
            .name(format!("kinesis-sink-{worker}"))
            .spawn(move || {
                let mut oldest: Option<Instant> = None;
                loop {
                    let wait = oldest.map_or(Duration::from_secs(3600), |at| {
                        timeout.saturating_sub(at.elapsed())
                    });
                    match receiver.recv_timeout(wait) {
                        Ok(entries) => {
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
            .map_err(|e| failed(&options.stream, &format!("starting its sender: {e}")))?;
        Ok(RemoteWriter {
            stream: options.stream.clone(),
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
            Some(message) => Err(failed(&self.stream, message)),
            None => Ok(()),
        }
    }

    pub fn send(&mut self, entries: Vec<PutEntry>) -> Result<(), EngineError> {
        self.check()?;
        let Some(sender) = &self.sender else {
            return Err(failed(&self.stream, "written to after its end"));
        };
        sender
            .send(entries)
            .map_err(|_| failed(&self.stream, "its sender has stopped"))
    }

    /// Sends what is buffered and waits until it is written.
    pub fn finish(&mut self) -> Result<(), EngineError> {
        self.sender = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            return Err(failed(&self.stream, "its sender panicked"));
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
    stream: String,
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
                tracing::error!(stream = %self.stream, %message, "kinesis sink: records not written ('sink.fail-on-error' is false)");
            }
        }
    }

    /// PutRecords until every record is in; the ones the answer lists as
    /// failed are sent again after a backoff.
    fn put(&self, mut entries: Vec<PutEntry>) -> Result<(), String> {
        let mut backoff = FIRST_BACKOFF;
        while !entries.is_empty() {
            let records: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut record = json!({
                        "Data": base64::engine::general_purpose::STANDARD.encode(&e.data),
                        "PartitionKey": e.partition_key,
                    });
                    if let Some(hash) = e.explicit_hash_key {
                        record["ExplicitHashKey"] = json!(hash.to_string());
                    }
                    record
                })
                .collect();
            let answer = self
                .client
                .call(
                    "PutRecords",
                    &json!({"StreamName": self.stream, "Records": records}),
                )
                .map_err(|e| e.to_string())?;
            let results = answer
                .get("Records")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("PutRecords answered without Records: {answer}"))?;
            if results.len() != entries.len() {
                return Err(format!(
                    "PutRecords answered {} results for {} records",
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
