//! The `kinesis` connector, with Flink's option names: a table over a
//! Kinesis data stream of the server the job runs in, read and written
//! in-process (no HTTP, no shard read limits on the way out of the log).
//!
//! - `options`: the table's `WITH (...)` options, source and sink keys both
//!   (a table may be read by one statement and written by another).
//! - `source`: every shard read in lineage order, spread over the workers;
//!   `aggregated` unpacks the Kinesis Producer Library's aggregated records;
//!   `metadata` adds each record's arrival time, shard and sequence number.
//! - `sink`: rows as records, partition keys from `PARTITIONED BY` or random.

mod aggregated;
mod metadata;
mod options;
mod sink;
mod source;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::connector::{SinkProvider, SourceProvider};

pub use options::{InitialPosition, KinesisOptions};

use crate::ConnectorError;
use crate::options::Options;
use crate::registry::Services;

pub fn source(
    options: &Options,
    schema: SchemaRef,
    services: &Services,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    let metadata = metadata::MetadataColumns::read(options, &schema)?;
    let payload = metadata
        .as_ref()
        .map_or_else(|| schema.clone(), |m| m.payload_schema());
    let table = KinesisOptions::read(options, &payload)?;
    let streams = table.local_streams(services)?;
    Ok(Arc::new(source::KinesisSource::new(
        table, payload, metadata, streams,
    )?))
}

pub fn sink(
    options: &Options,
    schema: SchemaRef,
    services: &Services,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    let table = KinesisOptions::read(options, &schema)?;
    let streams = table.local_streams(services)?;
    Ok(Arc::new(sink::KinesisSink::new(table, schema, streams)?))
}
