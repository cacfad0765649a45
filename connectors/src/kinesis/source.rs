//! Reading a stream as Kinesis consumers must: a child shard only after
//! its parents are read to their end, shards opened while the job runs
//! picked up, each shard read by one worker (its index modulo the workers).
//! Workers share a tracker of which shards are done and where each is.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::{SourcePosition, SourceProvider};
use runnel_engine::source::{BatchReader, Poll, Waker};
use runnel_streams::IteratorStart;

use super::log::{ReadError, RecordView, ShardLog};
use super::metadata::{MetadataColumns, RowOrigin};
use super::options::{InitialPosition, KinesisOptions};
use crate::ConnectorError;
use crate::format::Decoder;

pub struct KinesisSource {
    shared: Arc<Shared>,
}

struct Shared {
    options: KinesisOptions,
    /// The columns decoded from each record's payload.
    payload: SchemaRef,
    metadata: Option<MetadataColumns>,
    log: Arc<dyn ShardLog>,
    /// The shards when the job was submitted: they start at the table's
    /// initial position; shards opened later start at their beginning.
    initial: HashSet<u32>,
    tracker: Mutex<Tracker>,
}

#[derive(Default)]
struct Tracker {
    shards: BTreeMap<u32, ShardProgress>,
    /// Counts finished shards, so that a worker whose shard's children may
    /// now be readable looks again at once rather than at its next
    /// discovery interval.
    generation: u64,
}

#[derive(Default, Clone)]
struct ShardProgress {
    finished: bool,
    /// The last sequence number read.
    sequence: Option<String>,
    millis_behind: u64,
}

impl KinesisSource {
    pub fn new(
        options: KinesisOptions,
        payload: SchemaRef,
        metadata: Option<MetadataColumns>,
        log: Arc<dyn ShardLog>,
    ) -> Result<Self, ConnectorError> {
        options.format.decoder(payload.clone())?;
        let shards = log.shards().map_err(|e| {
            ConnectorError::Option(format!("kinesis stream '{}': {e}", options.stream))
        })?;
        Ok(KinesisSource {
            shared: Arc::new(Shared {
                initial: shards.iter().map(|s| s.index).collect(),
                options,
                payload,
                metadata,
                log,
                tracker: Mutex::default(),
            }),
        })
    }
}

impl SourceProvider for KinesisSource {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        let decoder = self
            .shared
            .options
            .format
            .decoder(self.shared.payload.clone())?;
        Ok(Box::new(ShardReader {
            shared: self.shared.clone(),
            worker,
            peers: peers.max(1),
            reading: Vec::new(),
            next: 0,
            discovered: None,
            decoder,
            ready: VecDeque::new(),
            last_part: None,
            wake: None,
            payload: Vec::new(),
            spans: Vec::new(),
            ends: Vec::new(),
        }))
    }

    fn produces_changelog(&self) -> bool {
        self.shared.options.format.is_changelog()
    }

    fn positions(&self) -> Vec<SourcePosition> {
        let tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tracker
            .shards
            .iter()
            .map(|(index, progress)| SourcePosition {
                part: runnel_streams::model::shard_id(*index),
                position: progress.sequence.clone(),
                millis_behind: Some(progress.millis_behind),
                finished: progress.finished,
            })
            .collect()
    }
}

struct Reading {
    shard: u32,
    iterator: String,
    /// Not read again before this (a log that is polled, after an empty
    /// read).
    rest_until: Option<Instant>,
}

struct ShardReader {
    shared: Arc<Shared>,
    worker: usize,
    peers: usize,
    reading: Vec<Reading>,
    /// Shards are read in turn, one GetRecords each, so that a backlog in
    /// one does not leave the others' watermarks behind.
    next: usize,
    /// When, and at which tracker generation, shards were last discovered.
    discovered: Option<(Instant, u64)>,
    decoder: Decoder,
    /// Decoded rows not yet handed over, with their shard.
    ready: VecDeque<(u32, RecordBatch)>,
    last_part: Option<u32>,
    /// Held so that the stream service keeps waking this reader's source.
    wake: Option<Waker>,
    /// Reused between reads: the payloads read, and where each one is.
    payload: Vec<u8>,
    spans: Vec<(usize, usize)>,
    ends: Vec<usize>,
}

fn failure(stream: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Connector {
        connector: "kinesis",
        message: format!("stream '{stream}': {error}"),
    }
}

impl ShardReader {
    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.shared
            .tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn due_for_discovery(&self) -> bool {
        match self.discovered {
            None => true,
            Some((at, generation)) => {
                at.elapsed() >= self.shared.options.discovery_interval
                    || self.tracker().generation != generation
            }
        }
    }

    /// Starts reading every shard of this worker whose parents are done.
    fn discover(&mut self) -> Result<(), EngineError> {
        let stream = &self.shared.options.stream;
        let generation = self.tracker().generation;
        let shards = self.shared.log.shards().map_err(|e| failure(stream, e))?;
        for shard in &shards {
            if shard.index as usize % self.peers != self.worker
                || self.reading.iter().any(|r| r.shard == shard.index)
            {
                continue;
            }
            let ready = {
                let tracker = self.tracker();
                let done = |index: u32| tracker.shards.get(&index).is_some_and(|p| p.finished);
                // A parent trimmed away by retention has nothing left to read.
                !done(shard.index)
                    && [shard.parent, shard.adjacent_parent]
                        .into_iter()
                        .flatten()
                        .all(|p| !shards.iter().any(|s| s.index == p) || done(p))
            };
            if !ready {
                continue;
            }
            let start = if self.shared.initial.contains(&shard.index) {
                match self.shared.options.initial_position {
                    InitialPosition::Latest => IteratorStart::Latest,
                    InitialPosition::TrimHorizon => IteratorStart::TrimHorizon,
                    InitialPosition::AtTimestamp(ms) => IteratorStart::AtTimestamp(ms),
                }
            } else {
                IteratorStart::TrimHorizon
            };
            let iterator = self
                .shared
                .log
                .iterator(shard.index, &start)
                .map_err(|e| failure(stream, e))?;
            self.tracker().shards.entry(shard.index).or_default();
            self.reading.push(Reading {
                shard: shard.index,
                iterator,
                rest_until: None,
            });
        }
        self.discovered = Some((Instant::now(), generation));
        Ok(())
    }

    /// One GetRecords on the next shard in turn; the records' rows go to
    /// `ready`. Whether anything was read.
    fn read_one(&mut self) -> Result<bool, EngineError> {
        if self.reading.is_empty() {
            return Ok(false);
        }
        let stream = self.shared.options.stream.clone();
        self.next %= self.reading.len();
        let index = self.next;
        self.next += 1;
        let shard = self.reading[index].shard;
        if let Some(until) = self.reading[index].rest_until {
            if Instant::now() < until {
                return Ok(false);
            }
            self.reading[index].rest_until = None;
        }
        // The user records' payloads, copied once out of the log, and for
        // metadata columns where each came from.
        let mut payload = std::mem::take(&mut self.payload);
        let mut spans = std::mem::take(&mut self.spans);
        let mut ends = std::mem::take(&mut self.ends);
        payload.clear();
        spans.clear();
        ends.clear();
        let mut origins: Vec<(u64, String, u64)> = Vec::new();
        let with_metadata = self.shared.metadata.is_some();
        // Without metadata, payloads go straight into the lines the
        // decoder reads.
        let framing = self.decoder.line_framing().filter(|_| !with_metadata);
        let mut add = |data: &[u8], record: &RecordView<'_>, sub_sequence: usize| {
            let start = payload.len();
            payload.extend_from_slice(data);
            spans.push((start, payload.len()));
            if with_metadata {
                origins.push((
                    record.arrival_ms,
                    record.sequence.to_text(),
                    sub_sequence as u64,
                ));
            }
        };
        let iterator = &self.reading[index].iterator;
        let limit = self.shared.options.max_record_count;
        let read = match framing {
            // Payloads straight into the lines the decoder reads.
            Some(framing) => {
                self.shared
                    .log
                    .read_lines(iterator, limit, framing, &mut payload, &mut ends)
            }
            None => self.shared.log.read(iterator, limit, &mut |record| {
                let users = runnel_streams::aggregated::may_be_aggregated(record.data)
                    .then(|| runnel_streams::aggregated::deaggregate(record.data))
                    .flatten();
                match users {
                    Some(users) => {
                        for (sub_sequence, user) in users.into_iter().enumerate() {
                            add(user, &record, sub_sequence);
                        }
                    }
                    None => add(record.data, &record, 0),
                }
            }),
        };
        let output = match read {
            Ok(output) => output,
            Err(ReadError::ExpiredIterator) => {
                // Not read for longer than an iterator lives: go on after the
                // last record read.
                let start = match self
                    .tracker()
                    .shards
                    .get(&shard)
                    .and_then(|p| p.sequence.clone())
                {
                    Some(sequence) => IteratorStart::AfterSequence(sequence),
                    None => IteratorStart::TrimHorizon,
                };
                self.reading[index].iterator = self
                    .shared
                    .log
                    .iterator(shard, &start)
                    .map_err(|e| failure(&stream, e))?;
                return Ok(false);
            }
            Err(ReadError::Failed(error)) => return Err(failure(&stream, error)),
        };
        let read = output.records > 0;
        let pause = self.shared.log.empty_read_pause();
        if !read && pause > Duration::ZERO {
            self.reading[index].rest_until = Some(Instant::now() + pause);
        }
        if !spans.is_empty() || (framing.is_some() && !payload.is_empty()) {
            let unreadable = |e: ConnectorError| {
                failure(
                    &stream,
                    format!(
                        "a record of {} could not be read as {}: {e}",
                        runnel_streams::model::shard_id(shard),
                        self.shared.options.format.name()
                    ),
                )
            };
            let messages = spans.iter().map(|&(start, end)| &payload[start..end]);
            let batches = match &self.shared.metadata {
                None if let Some(framing) = framing => {
                    framing.seal(&mut payload, &ends);
                    self.decoder.decode_lines(&payload).map_err(unreadable)?
                }
                None => self.decoder.decode_messages(messages).map_err(unreadable)?,
                Some(metadata) => {
                    // A payload may hold any number of rows (or none), so
                    // each is decoded alone to know which record a row is of.
                    let mut decoded = Vec::new();
                    let mut rows = Vec::new();
                    for (message, (arrival_ms, sequence, sub_sequence)) in messages.zip(&origins) {
                        for batch in self
                            .decoder
                            .decode_messages(std::iter::once(message))
                            .map_err(unreadable)?
                        {
                            rows.extend((0..batch.num_rows()).map(|_| RowOrigin {
                                arrival_ms: *arrival_ms,
                                shard,
                                sequence,
                                sub_sequence: *sub_sequence,
                            }));
                            decoded.push(batch);
                        }
                    }
                    vec![metadata.attach(&decoded, &rows)?]
                }
            };
            self.ready.extend(
                batches
                    .into_iter()
                    .filter(|b| b.num_rows() > 0)
                    .map(|b| (shard, b)),
            );
        }
        self.payload = payload;
        self.spans = spans;
        self.ends = ends;
        let last_sequence = output.last_sequence;
        let mut tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let progress = tracker.shards.entry(shard).or_default();
        if let Some(sequence) = last_sequence {
            progress.sequence = Some(sequence);
        }
        progress.millis_behind = output.millis_behind;
        match output.next_iterator {
            Some(iterator) => self.reading[index].iterator = iterator,
            None => {
                progress.finished = true;
                tracker.generation += 1;
                drop(tracker);
                self.reading.remove(index);
            }
        }
        Ok(read)
    }
}

impl BatchReader for ShardReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        if self.ready.is_empty() {
            if self.due_for_discovery() {
                self.discover()?;
            }
            for _ in 0..self.reading.len() {
                if self.read_one()? && !self.ready.is_empty() {
                    break;
                }
            }
        }
        Ok(match self.ready.pop_front() {
            Some((shard, batch)) => {
                self.last_part = Some(shard);
                Poll::Batch(batch)
            }
            None => Poll::Idle,
        })
    }

    fn part_of_last_batch(&self) -> Option<u64> {
        self.last_part.map(u64::from)
    }

    fn wake_on_data(&mut self, wake: Waker) -> bool {
        let registered = self.shared.log.wake_on_append(&wake);
        if registered {
            self.wake = Some(wake);
        }
        registered
    }

    /// Shards being read, and ended ones whose rows are still to come.
    fn open_parts(&self) -> Option<Vec<u64>> {
        let mut open: Vec<u64> = self.reading.iter().map(|r| u64::from(r.shard)).collect();
        for (shard, _) in &self.ready {
            if !open.contains(&u64::from(*shard)) {
                open.push(u64::from(*shard));
            }
        }
        Some(open)
    }
}
