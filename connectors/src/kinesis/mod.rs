//! The `kinesis` connector, with Flink's option names: a table over a
//! Kinesis data stream. A stream of the server the job runs in is read and
//! written in-process (no HTTP, no shard read limits on the way out of the
//! log); a stream of another endpoint (`aws.endpoint`) through its API.
//!
//! - `options`: the table's `WITH (...)` options, source and sink keys both
//!   (a table may be read by one statement and written by another).
//! - `source`: every shard read in lineage order, spread over the workers;
//!   the Kinesis Producer Library's aggregated records are unpacked (by
//!   `runnel_streams::aggregated`);
//!   `metadata` adds each record's arrival time, shard and sequence number;
//!   `position` is a reader's position in a checkpoint.
//! - `sink`: rows as records, partition keys from `PARTITIONED BY` or random;
//!   `remote_sink` batches them into PutRecords for another endpoint.
//! - `log`: a stream's shards, local or remote, as the source reads them;
//!   `remote`: the API client, SigV4-signed.

mod log;
mod metadata;
pub(crate) mod options;
mod position;
pub mod remote;
pub(crate) mod remote_sink;
mod sink;
mod source;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::connector::{SinkProvider, SourceProvider};

pub use options::{InitialPosition, KinesisOptions};
pub use sink::stream_puts;

/// Where a table's stream is.
pub enum Target {
    Local(Arc<runnel_streams::Streams>),
    Remote(Arc<remote::RemoteKinesis>),
}

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
    let log: Arc<dyn log::ShardLog> = match table.target(options, services)? {
        Target::Local(streams) => Arc::new(log::LocalLog {
            streams,
            stream: table.stream.clone(),
        }),
        Target::Remote(client) => Arc::new(log::RemoteLog {
            client,
            stream: table.stream.clone(),
            empty_pause: table.empty_fetch_interval,
        }),
    };
    Ok(Arc::new(source::KinesisSource::new(
        table, payload, metadata, log,
    )?))
}

pub fn sink(
    options: &Options,
    schema: SchemaRef,
    services: &Services,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    let table = KinesisOptions::read(options, &schema)?;
    let target = table.target(options, services)?;
    Ok(Arc::new(sink::KinesisSink::new(table, schema, target)?))
}
