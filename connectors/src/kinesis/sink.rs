//! Rows as records. Into a stream of this server they are written as each
//! batch leaves the job (there is no network round trip to amortise, so no
//! added buffering delay), in puts of at most `sink.batch.max-size`
//! records; to another endpoint, `remote_sink` batches them. Throttled
//! records are put again with backoff until written: a job that writes
//! faster than its stream allows slows down, and never drops a row.
//!
//! In an exactly-once checkpointed job, a sink into this server's stream
//! writes nothing itself: it holds its records until the next checkpoint,
//! which publishes them in the same write that makes the checkpoint
//! durable, so a restored job neither loses nor repeats them. Another
//! endpoint offers no such write, so its sink is at-least-once: each
//! checkpoint waits until what was sent is acknowledged.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use runnel_engine::EngineError;
use runnel_engine::checkpoint::{Mode, OutputRecord, SinkOutput};
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use runnel_streams::{PutEntry, PutOutcome, Streams, StreamsError};

use super::Target;
use super::options::{KinesisOptions, Partitioner};
use crate::ConnectorError;

pub struct KinesisSink {
    options: KinesisOptions,
    target: Target,
}

impl KinesisSink {
    pub fn new(
        options: KinesisOptions,
        _schema: SchemaRef,
        target: Target,
    ) -> Result<Self, ConnectorError> {
        Ok(KinesisSink { options, target })
    }
}

impl SinkProvider for KinesisSink {
    /// Called on the worker thread, where the job's checkpointing mode is
    /// known.
    fn sink(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        let mode = runnel_engine::checkpoint::worker::mode();
        let destination = match &self.target {
            Target::Local(streams) if mode == Some(Mode::ExactlyOnce) => Destination::Held {
                streams: streams.clone(),
                records: Vec::new(),
            },
            Target::Local(streams) => Destination::Local(streams.clone()),
            Target::Remote(client) => {
                if mode == Some(Mode::ExactlyOnce) && worker == 0 {
                    tracing::warn!(stream = %self.options.stream, "kinesis sink: a stream of another endpoint is written at least once, not exactly once: records written after the last checkpoint are written again after a restore");
                }
                Destination::Remote(super::remote_sink::RemoteWriter::start(
                    client.clone(),
                    super::remote_sink::PutTarget::Stream(self.options.stream.clone()),
                    self.options.batching(),
                    worker,
                )?)
            }
        };
        Ok(Box::new(StreamWriter {
            options: self.options.clone(),
            destination,
            fixed_key: format!("runnel-sink-{worker}"),
            random: 0x9E37_79B9_7F4A_7C15
                ^ (worker as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)
                ^ u64::from(std::process::id()),
        }))
    }

    fn accepts_changelog(&self) -> bool {
        self.options.format.is_changelog()
    }

    fn wants_update_before(&self) -> bool {
        self.accepts_changelog()
    }

    fn checkpointable(&self) -> bool {
        true
    }
}

enum Destination {
    /// Put as each batch comes.
    Local(Arc<Streams>),
    /// Exactly-once: held until a checkpoint takes them.
    Held {
        streams: Arc<Streams>,
        records: Vec<OutputRecord>,
    },
    Remote(super::remote_sink::RemoteWriter),
}

struct StreamWriter {
    options: KinesisOptions,
    destination: Destination,
    fixed_key: String,
    /// xorshift state for random partition keys.
    random: u64,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const MAX_KEY_CHARS: usize = 256;

fn failure(stream: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Connector {
        connector: "kinesis",
        message: format!("stream '{stream}': {error}"),
    }
}

impl StreamWriter {
    fn next_random_key(&mut self) -> String {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        format!("{x:016x}")
    }

    fn partition_keys(&mut self, batch: &RecordBatch) -> Result<Vec<String>, EngineError> {
        let rows = batch.num_rows();
        match &self.options.partitioner {
            Partitioner::Random => Ok((0..rows).map(|_| self.next_random_key()).collect()),
            Partitioner::Fixed => Ok(vec![self.fixed_key.clone(); rows]),
            Partitioner::Columns { columns, delimiter } => {
                let options = FormatOptions::default().with_null("null");
                let formatters = columns
                    .iter()
                    .map(|&c| ArrayFormatter::try_new(batch.column(c).as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((0..rows)
                    .map(|row| {
                        let key = formatters
                            .iter()
                            .map(|f| f.value(row).to_string())
                            .collect::<Vec<_>>()
                            .join(delimiter);
                        let key = if key.is_empty() {
                            "null".to_string()
                        } else {
                            key
                        };
                        key.chars().take(MAX_KEY_CHARS).collect()
                    })
                    .collect())
            }
        }
    }

    /// Puts `entries` until every one is written; throttled ones again
    /// after a backoff.
    fn put_all(&self, streams: &Streams, mut entries: Vec<PutEntry>) -> Result<(), EngineError> {
        let stream = &self.options.stream;
        let mut backoff = FIRST_BACKOFF;
        while !entries.is_empty() {
            let outcomes = match streams.put_blocking(stream, entries.clone()) {
                Ok(outcomes) => outcomes,
                Err(StreamsError::Throughput(_) | StreamsError::LimitExceeded(_)) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(error) if self.options.fail_on_error => return Err(failure(stream, error)),
                Err(error @ (StreamsError::NotFound(_) | StreamsError::Internal(_))) => {
                    return Err(failure(stream, error));
                }
                Err(error) => {
                    tracing::error!(%stream, %error, records = entries.len(), "kinesis sink: records not written ('sink.fail-on-error' is false)");
                    return Ok(());
                }
            };
            let throttled: Vec<PutEntry> = entries
                .into_iter()
                .zip(outcomes)
                .filter(|(_, outcome)| matches!(outcome, PutOutcome::Throttled { .. }))
                .map(|(entry, _)| entry)
                .collect();
            if !throttled.is_empty() {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            entries = throttled;
        }
        Ok(())
    }
}

/// The records the stream's size limit takes, checked when they are
/// written so that the checkpoint publishing them does not fail on one. An
/// oversized record fails the job, or with 'sink.fail-on-error' false is
/// dropped and logged, as a put of it would be.
fn admissible(
    options: &KinesisOptions,
    streams: &Streams,
    entries: Vec<PutEntry>,
) -> Result<Vec<PutEntry>, EngineError> {
    let stream = &options.stream;
    let max_bytes = streams
        .max_record_bytes(stream)
        .map_err(|e| failure(stream, e))?;
    let size = |entry: &PutEntry| entry.data.len() + entry.partition_key.len();
    if entries.iter().all(|entry| size(entry) <= max_bytes) {
        return Ok(entries);
    }
    let mut kept = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        if size(&entry) <= max_bytes {
            kept.push(entry);
            continue;
        }
        let error = StreamsError::RecordTooLarge { index, max_bytes };
        if options.fail_on_error {
            return Err(failure(stream, error));
        }
        tracing::error!(%stream, %error, "kinesis sink: record not written ('sink.fail-on-error' is false)");
    }
    Ok(kept)
}

impl BatchSink for StreamWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let messages = self.options.format.encode_messages(&batch)?;
        let keys = self.partition_keys(&batch)?;
        let mut entries: Vec<PutEntry> = keys
            .into_iter()
            .zip(messages)
            .map(|(partition_key, data)| PutEntry {
                partition_key,
                explicit_hash_key: None,
                data,
            })
            .collect();
        match &mut self.destination {
            Destination::Remote(writer) => writer.send(entries),
            Destination::Held { streams, records } => {
                let kept = admissible(&self.options, streams, entries)?;
                records.extend(kept.into_iter().map(|entry| OutputRecord {
                    partition_key: entry.partition_key,
                    explicit_hash_key: entry.explicit_hash_key,
                    data: entry.data,
                }));
                Ok(())
            }
            Destination::Local(streams) => {
                let streams = streams.clone();
                let size = self.options.batch_max_size;
                while !entries.is_empty() {
                    let rest = entries.split_off(size.min(entries.len()));
                    self.put_all(&streams, std::mem::replace(&mut entries, rest))?;
                }
                Ok(())
            }
        }
    }

    /// At the end of input, what a remote writer holds is put before the
    /// job ends. Held records are not: the engine takes a final checkpoint
    /// after the end of input, which publishes them.
    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        match (&mut self.destination, watermark) {
            (Destination::Remote(writer), None) => writer.finish(),
            _ => Ok(()),
        }
    }

    fn checkpoint_output(&mut self, _checkpoint: u64) -> Result<Vec<SinkOutput>, EngineError> {
        match &mut self.destination {
            Destination::Held { records, .. } if !records.is_empty() => Ok(vec![SinkOutput {
                stream: self.options.stream.clone(),
                records: std::mem::take(records),
            }]),
            Destination::Remote(writer) => writer.flush().map(|()| Vec::new()),
            // Puts into this server's stream are durable when they return.
            _ => Ok(Vec::new()),
        }
    }
}

/// What exactly-once sinks held back, as the puts `Streams::commit_with`
/// takes: one list per stream that has records.
pub fn stream_puts(outputs: Vec<SinkOutput>) -> Vec<(String, Vec<PutEntry>)> {
    outputs
        .into_iter()
        .filter(|output| !output.records.is_empty())
        .map(|output| {
            let entries = output
                .records
                .into_iter()
                .map(|record| PutEntry {
                    partition_key: record.partition_key,
                    explicit_hash_key: record.explicit_hash_key,
                    data: record.data,
                })
                .collect();
            (output.stream, entries)
        })
        .collect()
}
