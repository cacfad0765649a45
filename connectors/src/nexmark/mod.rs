//! The `nexmark` connector: Flink's nexmark event generator as a source.
//!
//! One table of `event_type` and nested `person`, `auction`, `bid` rows (see
//! `benches/nexmark/ddl.sql`). Event `n`'s content and event time depend on
//! `n` and the options only, so a run is the same whatever the worker count:
//! workers take interleaved blocks of [`BLOCK`] consecutive event numbers.

mod batch;
mod columns;
mod config;
mod json;
mod model;
mod random;

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

/// Events per batch, and the unit of the split across workers.
pub const BLOCK: u64 = crate::format::BATCH_ROWS as u64;

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

    /// Worker `worker` of `peers`'s share of the events, batch by batch.
    pub fn events(&self, worker: usize, peers: usize) -> NexmarkReader {
        NexmarkReader {
            generator: Generator::new(self.config.clone(), self.shared.clone()),
            schema: self.schema.clone(),
            block: worker as u64,
            step: peers.max(1) as u64,
            started: Instant::now(),
        }
    }
}

impl SourceProvider for Nexmark {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        Ok(Box::new(self.events(worker, peers)))
    }
}

pub struct NexmarkReader {
    generator: Generator,
    schema: SchemaRef,
    /// The next block of event numbers this worker generates.
    block: u64,
    step: u64,
    started: Instant,
}

impl NexmarkReader {
    /// The next batch, or `None` at the end of a bounded run. Ignores
    /// `rate.limited`: that is for the engine's reader.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        let Some(range) = self.next_range() else {
            return Ok(None);
        };
        self.block += self.step;
        let config = self.generator.config();
        let extra = [
            config.avg_person_size,
            config.avg_auction_size,
            config.avg_bid_size,
        ]
        .map(|size| size.max(0) as usize * 6 / 5);
        let mut builder = EventBatchBuilder::new((range.end - range.start) as usize, extra);
        self.generator.fill(range, &mut builder);
        Ok(Some(builder.finish(self.schema.clone())?))
    }

    fn next_range(&self) -> Option<std::ops::Range<u64>> {
        let start = self.block.checked_mul(BLOCK)?;
        let end = start.checked_add(BLOCK)?;
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
            && let Some(range) = self.next_range()
        {
            let due = config.timestamp(range.start) - config.base_time_ms;
            if due > self.started.elapsed().as_millis() as i64 {
                return Ok(Poll::Idle);
            }
        }
        Ok(match self.next_batch()? {
            Some(batch) => Poll::Batch(batch),
            None => Poll::Done,
        })
    }
}

pub fn source(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    Ok(Arc::new(Nexmark::new(options, schema)?))
}
