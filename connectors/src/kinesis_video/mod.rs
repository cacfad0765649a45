//! The `kinesis-video` connector (Runnel's own): a video stream of the
//! server the job runs in, read as a table of its fragments or of its
//! frames, live: new fragments are read as they are persisted.
//!
//! - `columns`: the two tables' columns; a table declares any of them, in
//!   any order, and only what it declares is read (a frame's payload only
//!   when `payload` is declared; keyframes are decoded only for
//!   `mean_luma`).
//! - `reader`: this server's fragments after a start position, as Arrow
//!   batches; `remote`: another endpoint's (`aws.endpoint`), through its
//!   API; `rows`: the rows of both, as the table's columns.

mod columns;
mod reader;
mod remote;
mod rows;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::EngineError;
use runnel_engine::connector::SourceProvider;
use runnel_engine::source::BatchReader;
use runnel_video::{StreamRef, Video};

use crate::ConnectorError;
use crate::options::Options;
use crate::registry::Services;

pub use columns::TableKind;

/// Where a new job starts in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    Earliest,
    Latest,
    /// The first fragment whose producer time is at or after this, in
    /// epoch milliseconds.
    Timestamp(u64),
}

pub fn source(
    options: &Options,
    schema: SchemaRef,
    services: &Services,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    let stream = options.required("stream")?.to_string();
    let kind = match options.get("table").unwrap_or("fragments") {
        "fragments" => TableKind::Fragments,
        "frames" => TableKind::Frames,
        other => {
            return Err(ConnectorError::Option(format!(
                "option 'table' must be 'fragments' or 'frames', got '{other}'"
            )));
        }
    };
    let startup = match options.get("scan.startup.mode").unwrap_or("earliest") {
        "earliest" => Startup::Earliest,
        "latest" => Startup::Latest,
        "timestamp" => Startup::Timestamp(
            options
                .u64("scan.startup.timestamp-millis")?
                .ok_or_else(|| {
                    ConnectorError::Option(
                        "'scan.startup.mode' = 'timestamp' needs 'scan.startup.timestamp-millis'"
                            .into(),
                    )
                })?,
        ),
        other => {
            return Err(ConnectorError::Option(format!(
                "option 'scan.startup.mode' must be 'earliest', 'latest' or 'timestamp', got '{other}'"
            )));
        }
    };
    let columns = columns::Columns::read(kind, &schema)?;
    let region = options.get("aws.region").unwrap_or("us-east-1").to_string();
    let columns = Arc::new(columns);
    if let Some(endpoint) = options.get("aws.endpoint")
        && !services.is_own_endpoint(endpoint)
    {
        let client = remote::connect(endpoint, &region, &stream, options)?;
        return Ok(Arc::new(RemoteSource {
            client,
            stream,
            columns,
            schema,
            startup,
            submitted_ms: runnel_video::now_ms(),
        }));
    }
    let video = services.video.clone().ok_or_else(|| {
        ConnectorError::Option(
            "connector 'kinesis-video' reads a server's video streams: submit the job to `runnel server`, or name one with 'aws.endpoint'"
                .into(),
        )
    })?;
    let handle = video
        .stream(&StreamRef::Name(stream.clone()))
        .map_err(|e| ConnectorError::Option(format!("kinesis-video stream '{stream}': {e}")))?;
    let start = reader::start_seq(&video, &handle, startup)
        .map_err(|e| ConnectorError::Option(format!("kinesis-video stream '{stream}': {e}")))?;
    Ok(Arc::new(VideoSource {
        video,
        stream,
        columns,
        schema,
        start,
    }))
}

/// Another endpoint's stream.
struct RemoteSource {
    client: Arc<crate::kinesis::remote::RemoteKinesis>,
    stream: String,
    columns: Arc<columns::Columns>,
    schema: SchemaRef,
    startup: Startup,
    submitted_ms: u64,
}

impl SourceProvider for RemoteSource {
    fn reader(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        if worker != 0 {
            return Ok(Box::new(reader::Finished));
        }
        Ok(Box::new(remote::RemoteReader::new(
            self.client.clone(),
            self.stream.clone(),
            self.columns.clone(),
            self.schema.clone(),
            self.startup,
            self.submitted_ms,
        )))
    }

    /// A restore lists the remote stream again from the position's
    /// server time, which its retention must still hold.
    fn checkpointable(&self) -> bool {
        true
    }
}

struct VideoSource {
    video: Arc<Video>,
    stream: String,
    columns: Arc<columns::Columns>,
    schema: SchemaRef,
    /// Fixed when the job is submitted, so every worker agrees.
    start: u64,
}

impl SourceProvider for VideoSource {
    fn reader(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        // One stream is one ordered sequence: the first worker reads it.
        if worker != 0 {
            return Ok(Box::new(reader::Finished));
        }
        Ok(Box::new(reader::FragmentReader::new(
            self.video.clone(),
            self.stream.clone(),
            self.columns.clone(),
            self.schema.clone(),
            self.start,
        )))
    }

    fn checkpointable(&self) -> bool {
        true
    }
}
