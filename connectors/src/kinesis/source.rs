//! Reading a stream as Kinesis consumers must: a child shard only after
//! its parents are read to their end, shards opened while the job runs
//! picked up, each shard read by one worker (its index modulo the workers).
//! Workers share a tracker of which shards are done and where each is.
//!
//! For a checkpoint, each reader gives, per shard it owns, where reading
//! resumes after what it handed out (not what it read ahead: a page's rows
//! may be queued as several batches), and which shards are done (`position`).
//! A restored reader resumes those shards at once, whatever their lineage,
//! and marks the done ones done for every worker.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::{SourcePosition, SourceProvider};
use runnel_engine::source::{BatchReader, Poll, Waker};
use runnel_streams::IteratorStart;

use super::log::{ReadError, RecordView, ShardLog, first_sequence};
use super::metadata::{MetadataColumns, RowOrigin};
use super::options::{InitialPosition, KinesisOptions};
use super::position::{ReaderPosition, Resume, ShardPosition};
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
    /// The shards when the job was submitted are those below this index
    /// (a shard opened later has a greater one): they start at the table's
    /// initial position; shards opened later start at their beginning.
    initial_below: u32,
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
                initial_below: shards
                    .iter()
                    .map(|s| s.index.saturating_add(1))
                    .max()
                    .unwrap_or(0),
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
            handed: BTreeMap::new(),
            restored: BTreeMap::new(),
            skip: HashMap::new(),
            initial_below: self.shared.initial_below,
        }))
    }

    fn produces_changelog(&self) -> bool {
        self.shared.options.format.is_changelog()
    }

    fn checkpointable(&self) -> bool {
        true
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

/// Decoded rows not yet handed over.
struct Ready {
    shard: u32,
    batch: RecordBatch,
    /// On a page's last batch: the page's end, which the shard's position
    /// reaches once this batch is handed over.
    end: Option<PageMark>,
}

/// Where a page read ended.
#[derive(Debug, Clone, Default)]
struct PageMark {
    /// Its last record's.
    sequence: Option<String>,
    /// The shard was read to its end.
    finished: bool,
}

impl PageMark {
    /// A later page's end, over this one's.
    fn followed_by(self, later: PageMark) -> PageMark {
        PageMark {
            sequence: later.sequence.or(self.sequence),
            finished: self.finished || later.finished,
        }
    }
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
    ready: VecDeque<Ready>,
    last_part: Option<u32>,
    /// Held so that the stream service keeps waking this reader's source.
    wake: Option<Waker>,
    /// Reused between reads: the payloads read, and where each one is.
    payload: Vec<u8>,
    spans: Vec<(usize, usize)>,
    ends: Vec<usize>,
    /// Every shard this reader started, as far as it handed it out: what
    /// a checkpoint records.
    handed: BTreeMap<u32, ShardPosition>,
    /// Shards of a restored checkpoint not yet resumed (at the next
    /// discovery).
    restored: BTreeMap<u32, ShardPosition>,
    /// Rows a restored reader reads again and drops, per shard: handed out
    /// before the checkpoint, from a page then only partly handed out.
    skip: HashMap<u32, u64>,
    /// `Shared::initial_below`, or the checkpoint's.
    initial_below: u32,
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

    /// Starts reading every shard of this worker whose parents are done,
    /// and resumes the restored ones.
    fn discover(&mut self) -> Result<(), EngineError> {
        let stream = self.shared.options.stream.clone();
        let generation = self.tracker().generation;
        let shards = self.shared.log.shards().map_err(|e| failure(&stream, e))?;
        for shard in &shards {
            if shard.index as usize % self.peers != self.worker
                || self.reading.iter().any(|r| r.shard == shard.index)
            {
                continue;
            }
            // Resumed whatever its lineage: its rows may have been handed
            // out before a parent's last ones were.
            if let Some(position) = self.restored.remove(&shard.index) {
                self.resume(shard.index, position)?;
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
            let (start, resume) = self.first_start(shard.index);
            self.start(shard.index, &start, ShardPosition::at(resume))?;
        }
        let exists = |index: &u32| shards.iter().any(|s| s.index == *index);
        // Done shards that retention trimmed away need not be carried on.
        self.handed
            .retain(|index, position| !position.finished || exists(index));
        self.restored.retain(|index, position| {
            if !exists(index) && !position.finished {
                tracing::warn!(%stream, shard = %runnel_streams::model::shard_id(*index), "kinesis source: a shard of the checkpoint was trimmed away by the stream's retention before it was read to its end; its rows since the checkpoint are lost");
            }
            exists(index)
        });
        self.discovered = Some((Instant::now(), generation));
        Ok(())
    }

    /// Where a shard not yet read starts, and what a checkpoint records of
    /// that until a record of it is handed out: `LATEST` is pinned to the
    /// time it was taken.
    fn first_start(&self, shard: u32) -> (IteratorStart, Resume) {
        if shard >= self.initial_below {
            return (IteratorStart::TrimHorizon, Resume::TrimHorizon);
        }
        match self.shared.options.initial_position {
            InitialPosition::Latest => (
                IteratorStart::Latest,
                Resume::AtTimestamp(self.shared.log.now_ms()),
            ),
            InitialPosition::TrimHorizon => (IteratorStart::TrimHorizon, Resume::TrimHorizon),
            InitialPosition::AtTimestamp(ms) => {
                (IteratorStart::AtTimestamp(ms), Resume::AtTimestamp(ms))
            }
        }
    }

    fn start(
        &mut self,
        shard: u32,
        start: &IteratorStart,
        position: ShardPosition,
    ) -> Result<(), EngineError> {
        let iterator = self
            .shared
            .log
            .iterator(shard, start)
            .map_err(|e| failure(&self.shared.options.stream, e))?;
        self.tracker().shards.entry(shard).or_default();
        self.handed.insert(shard, position);
        self.reading.push(Reading {
            shard,
            iterator,
            rest_until: None,
        });
        Ok(())
    }

    /// Goes on with a shard of the restored checkpoint: after the rows it
    /// handed out then.
    fn resume(&mut self, shard: u32, position: ShardPosition) -> Result<(), EngineError> {
        if position.finished {
            self.handed.insert(shard, position);
            return Ok(());
        }
        let position = self.unless_trimmed(shard, position)?;
        if position.rows > 0 {
            self.skip.insert(shard, position.rows);
        }
        self.start(shard, &position.resume.start(), position)
    }

    /// The position itself, or the shard's trim horizon if retention
    /// trimmed the record it resumes after (and perhaps more) while the job
    /// was down, as Flink's Kinesis source does.
    fn unless_trimmed(
        &self,
        shard: u32,
        position: ShardPosition,
    ) -> Result<ShardPosition, EngineError> {
        let Some(sequence) = position.resume.sequence() else {
            return Ok(position);
        };
        let stream = &self.shared.options.stream;
        let first = first_sequence(
            self.shared.log.as_ref(),
            shard,
            &IteratorStart::AtSequence(sequence.to_string()),
        )
        .map_err(|e| failure(stream, e))?;
        if first.as_deref() == Some(sequence) {
            return Ok(position);
        }
        tracing::warn!(
            %stream,
            shard = %runnel_streams::model::shard_id(shard),
            %sequence,
            "kinesis source: the checkpoint's position in the shard was trimmed by the stream's retention; resuming at the shard's trim horizon (the records trimmed since are lost)"
        );
        Ok(ShardPosition::at(Resume::TrimHorizon))
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
                // last record read, or where the shard started.
                let start = match self
                    .tracker()
                    .shards
                    .get(&shard)
                    .and_then(|p| p.sequence.clone())
                {
                    Some(sequence) => IteratorStart::AfterSequence(sequence),
                    None => self
                        .handed
                        .get(&shard)
                        .map_or(IteratorStart::TrimHorizon, |p| p.resume.start()),
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
        let mut batches = Vec::new();
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
            batches = match &self.shared.metadata {
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
        }
        self.payload = payload;
        self.spans = spans;
        self.ends = ends;
        self.queue(
            shard,
            batches,
            PageMark {
                sequence: output.last_sequence.clone(),
                finished: output.next_iterator.is_none(),
            },
        );
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

    /// Queues a page's rows to be handed over; its end is reached once
    /// they all are.
    fn queue(&mut self, shard: u32, batches: Vec<RecordBatch>, end: PageMark) {
        let mut batches: Vec<RecordBatch> =
            batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        self.drop_handed_before(shard, &mut batches);
        let Some(last) = batches.pop() else {
            match self.ready.iter_mut().rev().find(|r| r.shard == shard) {
                Some(queued) => {
                    queued.end = Some(queued.end.take().unwrap_or_default().followed_by(end))
                }
                None => self.settle(shard, end),
            }
            return;
        };
        self.ready.extend(batches.into_iter().map(|batch| Ready {
            shard,
            batch,
            end: None,
        }));
        self.ready.push_back(Ready {
            shard,
            batch: last,
            end: Some(end),
        });
    }

    /// Drops the first rows of a restored shard that were handed out
    /// before the checkpoint.
    fn drop_handed_before(&mut self, shard: u32, batches: &mut Vec<RecordBatch>) {
        let Some(skip) = self.skip.get_mut(&shard) else {
            return;
        };
        let mut kept = Vec::with_capacity(batches.len());
        for batch in batches.drain(..) {
            let rows = batch.num_rows() as u64;
            if *skip >= rows {
                *skip -= rows;
                continue;
            }
            // Below `rows`, itself a usize.
            let offset = *skip as usize;
            kept.push(batch.slice(offset, batch.num_rows() - offset));
            *skip = 0;
        }
        if *skip == 0 {
            self.skip.remove(&shard);
        }
        *batches = kept;
    }

    /// Every row of a page up to `end` has been handed over.
    fn settle(&mut self, shard: u32, end: PageMark) {
        let still_to_drop = self.skip.get(&shard).copied().unwrap_or(0);
        let Some(position) = self.handed.get_mut(&shard) else {
            return;
        };
        if let Some(sequence) = end.sequence {
            position.resume = Resume::After(sequence);
            // Rows handed out before the checkpoint that lie past this
            // page too.
            position.rows = still_to_drop;
        }
        if end.finished {
            position.finished = true;
            position.rows = 0;
            self.skip.remove(&shard);
        }
    }

    /// Hands over a queued batch: its shard's position moves past it.
    fn hand_over(&mut self, ready: Ready) -> RecordBatch {
        if let Some(position) = self.handed.get_mut(&ready.shard) {
            position.rows += ready.batch.num_rows() as u64;
        }
        if let Some(end) = ready.end {
            self.settle(ready.shard, end);
        }
        self.last_part = Some(ready.shard);
        ready.batch
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
            Some(ready) => Poll::Batch(self.hand_over(ready)),
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
        for ready in &self.ready {
            if !open.contains(&u64::from(ready.shard)) {
                open.push(u64::from(ready.shard));
            }
        }
        Some(open)
    }

    /// The shards this reader started, as far as it handed them out, and
    /// the restored ones it has not resumed yet.
    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        let mut shards = self.restored.clone();
        shards.extend(self.handed.iter().map(|(index, p)| (*index, p.clone())));
        Ok(Some(
            ReaderPosition {
                initial_below: self.initial_below,
                shards,
            }
            .encode(),
        ))
    }

    /// Marks the checkpoint's done shards done for every worker (so that
    /// their children are read, and they are not) and resumes the others
    /// at the next discovery.
    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let position = ReaderPosition::decode(position)?;
        if let Some(index) = position
            .shards
            .keys()
            .find(|index| **index as usize % self.peers != self.worker)
        {
            return Err(failure(
                &self.shared.options.stream,
                format!(
                    "the checkpoint gives worker {} shard {}, which is not its own: it was taken with another number of workers",
                    self.worker,
                    runnel_streams::model::shard_id(*index)
                ),
            ));
        }
        self.initial_below = position.initial_below;
        {
            let mut tracker = self.tracker();
            for (index, shard) in &position.shards {
                let progress = tracker.shards.entry(*index).or_default();
                progress.finished = shard.finished;
                progress.sequence = shard.resume.sequence().map(str::to_string);
            }
            tracker.generation += 1;
        }
        for (index, shard) in position.shards {
            if shard.finished {
                self.handed.insert(index, shard);
            } else {
                self.restored.insert(index, shard);
            }
        }
        self.discovered = None;
        Ok(())
    }
}
