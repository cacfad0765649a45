//! Runnel's connectors: where tables' rows come from and go to.

pub mod datagen;
pub mod debezium;
mod display;
pub mod filesystem;
pub mod format;
mod json_lines;
pub mod nexmark;
pub mod options;
pub mod print;
mod registry;

pub use registry::{Connectors, sink_provider, source_provider};

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Option(String),
    #[error("unknown connector '{0}'; available: filesystem, datagen, nexmark, print, blackhole")]
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
    /// A Debezium envelope that is not a change, with its file and text.
    #[error("debezium-json: {path}: {problem}; the message is '{message}'")]
    Envelope {
        path: String,
        message: String,
        problem: debezium::EnvelopeError,
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
