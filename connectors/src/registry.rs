//! From a table's `'connector'` option to its source or sink.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::EngineError;
use runnel_engine::connector::{SinkProvider, SourceProvider};
use runnel_engine::sink::{BatchSink, BlackholeSink};

use crate::options::Options;
use crate::{ConnectorError, datagen, filesystem, nexmark, print};

pub fn source_provider(
    options: BTreeMap<String, String>,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    let options = Options::new(options);
    let provider = match options.required("connector")? {
        "filesystem" => filesystem::source(&options, schema)?,
        "datagen" => datagen::source(&options, schema)?,
        "nexmark" => nexmark::source(&options, schema)?,
        name @ ("print" | "blackhole") => {
            return Err(ConnectorError::WrongRole {
                connector: name.to_string(),
                role: "source",
            });
        }
        other => return Err(ConnectorError::UnknownConnector(other.to_string())),
    };
    options.reject_unknown()?;
    Ok(provider)
}

pub fn sink_provider(
    options: BTreeMap<String, String>,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    let options = Options::new(options);
    let provider: Arc<dyn SinkProvider> = match options.required("connector")? {
        "filesystem" => filesystem::sink(&options)?,
        "print" => print::sink(&options)?,
        "blackhole" => Arc::new(Blackhole),
        name @ ("datagen" | "nexmark") => {
            return Err(ConnectorError::WrongRole {
                connector: name.to_string(),
                role: "sink",
            });
        }
        other => return Err(ConnectorError::UnknownConnector(other.to_string())),
    };
    options.reject_unknown()?;
    Ok(provider)
}

struct Blackhole;

impl SinkProvider for Blackhole {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(BlackholeSink))
    }

    fn accepts_changelog(&self) -> bool {
        true
    }
}

/// Every connector Runnel has, for the SQL planner.
pub struct Connectors;

impl runnel_engine::connector::ConnectorFactory for Connectors {
    fn source(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SourceProvider>, EngineError> {
        source_provider(options, schema).map_err(|e| EngineError::Plan(e.to_string()))
    }

    fn sink(
        &self,
        options: BTreeMap<String, String>,
        _schema: SchemaRef,
    ) -> Result<Arc<dyn SinkProvider>, EngineError> {
        sink_provider(options).map_err(|e| EngineError::Plan(e.to_string()))
    }
}
