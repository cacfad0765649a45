//! Runnel's connectors: where tables' rows come from and go to.
//!
//! - `format`: how a message's bytes become rows and rows bytes (`json`,
//!   `csv`, `debezium-json`, `raw`, and `parquet` for files), whatever
//!   carries the messages.
//! - Transports, one module each: `filesystem`, `datagen`, `nexmark`
//!   (Flink's Nexmark generator), `kinesis` (this server's streams),
//!   `firehose` (delivery streams; a sink only),
//!   `print` (with `display`, Flink's way of printing values), `blackhole`.
//! - `registry`: a table's `'connector'` option to its source or sink,
//!   with the services of the server a connector can reach in-process.
//! - `options`: the `WITH (...)` options, every one of which must be read.

pub mod blackhole;
pub mod datagen;
mod display;
pub mod filesystem;
pub mod firehose;
pub mod format;
pub mod jdbc;
pub mod kinesis;
pub mod kinesis_video;
pub mod nexmark;
pub mod options;
pub mod print;
mod registry;

pub use registry::{Connectors, Services, results_sink, source_provider};

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Option(String),
    #[error(
        "unknown connector '{0}'; available: filesystem, datagen, nexmark, kinesis, kinesis-video, firehose, jdbc, print, blackhole"
    )]
    UnknownConnector(String),
    #[error("connector '{connector}' cannot be used as a {role}")]
    WrongRole {
        connector: String,
        role: &'static str,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A Debezium envelope that is not a change, and its text.
    #[error("{problem}; the message is '{message}'")]
    Envelope {
        message: String,
        problem: format::debezium::EnvelopeError,
    },
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl From<ConnectorError> for runnel_engine::EngineError {
    fn from(error: ConnectorError) -> Self {
        runnel_engine::EngineError::Connector {
            connector: "connector",
            message: error.to_string(),
        }
    }
}
