//! The `nexmark` connector: Flink's nexmark event generator as a source.
//!
//! One table of `event_type` and nested `person`, `auction`, `bid` rows (see
//! `benches/nexmark/ddl.sql`). Event `n`'s content and event time depend on
//! `n` and the options only, so a run is the same whatever the worker count:
//! workers take interleaved blocks of consecutive event numbers (8192, or
//! fewer when that would span more than 2 s of event time).
//!
//! The engine's reader emits each block as up to three batches, one per
//! event kind (people, then auctions, then bids): a query's filter on
//! `event_type` then keeps or drops whole batches without copying them.
//! Within a block events are then not in event-time order, but a block spans
//! at most 2 s, less than the table's 4 s watermark bound, so no event is
//! late. `events()` keeps Flink's order, for export.
//!
//! A checkpoint's position is the block being handed out and how many of
//! its batches have been: since events depend on their numbers only, a
//! restored reader generates that block again and goes on exactly where
//! the checkpointed one stood.

mod batch;
mod columns;
mod config;
mod json;
mod model;
mod random;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SourceProvider;
use runnel_engine::source::{BatchReader, Poll};

pub use batch::schema;
pub use config::NexmarkConfig;
pub use json::write_json_lines;

use crate::ConnectorError;
use crate::options::Options;
use batch::EventBatchBuilder;
use model::{Generator, Shared};

/// Most events per block: the unit of the split across workers.
const BLOCK: u64 = crate::format::BATCH_ROWS as u64;
/// Most event time a block spans, kept under the 4 s watermark bound of
/// Flink's nexmark DDL, so a block's batches by kind are never late.
const BLOCK_SPAN_SECONDS: f64 = 2.0;

#[derive(Clone)]
pub struct Nexmark {
    config: NexmarkConfig,
    shared: Arc<Shared>,
    schema: SchemaRef,
}

impl Nexmark {
    /// Reads the options; the table's physical columns must be Flink's
    /// nexmark columns, as `ddl.sql` declares them.
    pub fn new(options: &Options, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let config = NexmarkConfig::from_options(options)?;
        let expected = batch::schema();
        if schema.fields() != expected.fields() {
            return Err(ConnectorError::Option(format!(
                "a nexmark table has exactly Flink's nexmark columns \
                 (event_type INT, person ROW<...>, auction ROW<...>, bid ROW<...>); got {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Nexmark {
            shared: Arc::new(Shared::new(&config)),
            config,
            schema,
        })
    }

    /// A generator with the table's own options, for export and tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConnectorError> {
        let options = Options::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let nexmark = Nexmark::new(&options, batch::schema())?;
        options.reject_unknown()?;
        Ok(nexmark)
    }

    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// Worker `worker` of `peers`'s share of the events, a block per
    /// batch, in event-number order (Flink's order).
    pub fn events(&self, worker: usize, peers: usize) -> NexmarkReader {
        self.reader_of(worker, peers, false)
    }

    /// The same events as the engine reads them: each block as one batch
    /// per kind of event.
    pub fn events_by_kind(&self, worker: usize, peers: usize) -> NexmarkReader {
        self.reader_of(worker, peers, true)
    }

    fn reader_of(&self, worker: usize, peers: usize, by_kind: bool) -> NexmarkReader {
        let slowest = self.config.slowest_rate();
        NexmarkReader {
            generator: Generator::new(self.config.clone(), self.shared.clone()),
            schema: self.schema.clone(),
            block: worker as u64,
            step: peers.max(1) as u64,
            block_events: ((slowest * BLOCK_SPAN_SECONDS) as u64).clamp(1, BLOCK),
            by_kind,
            pending: VecDeque::new(),
            block_batches: 0,
            started: Instant::now(),
            resumed_at_ms: 0,
        }
    }
}

impl SourceProvider for Nexmark {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        Ok(Box::new(self.events_by_kind(worker, peers)))
    }

    fn checkpointable(&self) -> bool {
        true
    }
}

/// The version byte of a reader's position, which is then the block as a
/// little-endian `u64` and the batches of it handed out as a `u32`.
const POSITION_VERSION: u8 = 1;

pub struct NexmarkReader {
    generator: Generator,
    schema: SchemaRef,
    /// The next block of event numbers this worker generates.
    block: u64,
    step: u64,
    block_events: u64,
    by_kind: bool,
    /// Batches of the current block not yet handed out.
    pending: VecDeque<RecordBatch>,
    /// How many batches the current block made.
    block_batches: usize,
    started: Instant,
    /// With `rate.limited`, the event time (less the base time) of the
    /// position restored from: the pace starts there at the restore,
    /// instead of rushing through the events since the job's first start.
    resumed_at_ms: i64,
}

impl NexmarkReader {
    /// The next batch, or `None` at the end of a bounded run. Ignores
    /// `rate.limited`: that is for the engine's reader.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        if self.pending.is_empty() {
            self.generate_block()?;
        }
        Ok(self.pending.pop_front())
    }

    /// Generates the next block into `pending` (nothing at the end of a
    /// bounded run).
    fn generate_block(&mut self) -> Result<(), ConnectorError> {
        let Some(range) = self.next_range() else {
            return Ok(());
        };
        self.block += self.step;
        let config = self.generator.config();
        let extra = [
            config.avg_person_size,
            config.avg_auction_size,
            config.avg_bid_size,
        ]
        .map(|size| size.max(0) as usize * 6 / 5);
        let mut builders: Vec<EventBatchBuilder> = if self.by_kind {
            self.generator
                .kind_counts(range.clone())
                .iter()
                .map(|&rows| EventBatchBuilder::new(rows, extra))
                .collect()
        } else {
            vec![EventBatchBuilder::new(
                (range.end - range.start) as usize,
                extra,
            )]
        };
        self.generator.fill(range, &mut builders);
        for mut builder in builders {
            let batch = builder.finish(self.schema.clone())?;
            if batch.num_rows() > 0 {
                self.pending.push_back(batch);
            }
        }
        self.block_batches = self.pending.len();
        Ok(())
    }

    fn next_range(&self) -> Option<std::ops::Range<u64>> {
        let start = self.block.checked_mul(self.block_events)?;
        let end = start.checked_add(self.block_events)?;
        match self.generator.config().events {
            Some(total) if start >= total => None,
            Some(total) => Some(start..end.min(total)),
            None => Some(start..end),
        }
    }
}

impl BatchReader for NexmarkReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        let config = self.generator.config();
        if config.rate_limited
            && self.pending.is_empty()
            && let Some(range) = self.next_range()
        {
            let due = config.timestamp(range.start) - config.base_time_ms - self.resumed_at_ms;
            if due > self.started.elapsed().as_millis() as i64 {
                return Ok(Poll::Idle);
            }
        }
        Ok(match self.next_batch()? {
            Some(batch) => Poll::Batch(batch),
            None => Poll::Done,
        })
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        let (block, handed) = if self.pending.is_empty() {
            (self.block, 0)
        } else {
            (
                self.block - self.step,
                self.block_batches - self.pending.len(),
            )
        };
        let mut position = vec![POSITION_VERSION];
        position.extend_from_slice(&block.to_le_bytes());
        position.extend_from_slice(&(handed as u32).to_le_bytes());
        Ok(Some(position))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let corrupt = |what: &str| EngineError::Connector {
            connector: "nexmark",
            message: format!("checkpoint position is corrupt: {what}"),
        };
        let [POSITION_VERSION, rest @ ..] = position else {
            return Err(corrupt("an unknown version"));
        };
        let (Some(block), Some(handed), 12) = (
            rest.get(..8).and_then(|b| b.try_into().ok()),
            rest.get(8..12).and_then(|b| b.try_into().ok()),
            rest.len(),
        ) else {
            return Err(corrupt("not a block and a batch count"));
        };
        let block = u64::from_le_bytes(block);
        let handed = u32::from_le_bytes(handed) as usize;
        // Workers interleave blocks: another worker's block would repeat
        // or skip events.
        if block % self.step != self.block % self.step {
            return Err(corrupt("another worker's block"));
        }
        self.block = block;
        self.pending.clear();
        self.block_batches = 0;
        if let Some(range) = self.next_range() {
            let config = self.generator.config();
            self.resumed_at_ms = config.timestamp(range.start) - config.base_time_ms;
        }
        self.started = Instant::now();
        if handed > 0 {
            self.generate_block()?;
            if handed > self.pending.len() {
                return Err(corrupt("more batches handed out than the block has"));
            }
            self.pending.drain(..handed);
        }
        Ok(())
    }
}

pub fn source(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    Ok(Arc::new(Nexmark::new(options, schema)?))
}
