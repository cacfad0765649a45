//! From a table's `'connector'` option to its source or sink.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::EngineError;
use runnel_engine::connector::{SinkProvider, SourceProvider};

use crate::options::Options;
use crate::{
    ConnectorError, blackhole, datagen, filesystem, firehose, jdbc, kinesis, kinesis_video,
    nexmark, print,
};

/// The services of the process a job runs in, which connectors reach
/// in-process rather than through their APIs. A job run embedded
/// (`runnel sql run`) has none.
#[derive(Clone, Default)]
pub struct Services {
    pub streams: Option<Arc<runnel_streams::Streams>>,
    pub firehose: Option<Arc<runnel_firehose::Firehose>>,
    pub video: Option<Arc<runnel_video::Video>>,
    /// The port this server listens on: an `aws.endpoint` naming it on a
    /// loopback or unspecified address is this server.
    pub port: Option<u16>,
}

impl Services {
    pub fn is_own_endpoint(&self, endpoint: &str) -> bool {
        let Some(port) = self.port else {
            return false;
        };
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .unwrap_or(endpoint);
        let authority = rest.split('/').next().unwrap_or(rest);
        let Some((host, named_port)) = authority.rsplit_once(':') else {
            return false;
        };
        named_port.parse::<u16>() == Ok(port)
            && matches!(
                host,
                "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0" | "[::]"
            )
    }
}

/// Every connector Runnel has, with what they can reach, for the planner.
#[derive(Clone, Default)]
pub struct Connectors {
    services: Services,
}

impl Connectors {
    pub fn new(services: Services) -> Self {
        Connectors { services }
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn source_provider(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
        let options = Options::new(options);
        let connector = options.required("connector")?;
        if connector != "kinesis"
            && let Some(columns) = options.get(runnel_engine::connector::METADATA_COLUMNS)
        {
            let (column, key) = columns
                .lines()
                .next()
                .and_then(|line| line.split_once('\t'))
                .unwrap_or_default();
            return Err(ConnectorError::Option(format!(
                "connector '{connector}' has no metadata: column '{column}' is METADATA FROM '{key}' (the kinesis connector has timestamp, shard-id, sequence-number and sub-sequence-number)"
            )));
        }
        let provider = match connector {
            "filesystem" => filesystem::source(&options, schema)?,
            "datagen" => datagen::source(&options, schema)?,
            "nexmark" => nexmark::source(&options, schema)?,
            "kinesis" => kinesis::source(&options, schema, &self.services)?,
            "kinesis-video" => kinesis_video::source(&options, schema, &self.services)?,
            "jdbc" => jdbc::source(&options, schema)?,
            name @ ("print" | "blackhole" | "firehose") => {
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
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
        let options = Options::new(options);
        let provider: Arc<dyn SinkProvider> = match options.required("connector")? {
            "filesystem" => filesystem::sink(&options, &schema)?,
            "print" => print::sink(&options)?,
            "blackhole" => blackhole::sink(),
            "kinesis" => kinesis::sink(&options, schema, &self.services)?,
            "firehose" => firehose::sink(&options, schema, &self.services)?,
            "jdbc" => jdbc::sink(&options, &schema)?,
            name @ ("datagen" | "nexmark" | "kinesis-video") => {
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
}

/// A source of a connector that needs no service of the server.
pub fn source_provider(
    options: BTreeMap<String, String>,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    Connectors::default().source_provider(options, schema)
}

/// Where a job's bare SELECT rows go when whoever runs it prints them or
/// drops them: `print` or `blackhole`, which take any schema.
pub fn results_sink(connector: &str) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    Connectors::default().sink_provider(
        [("connector".to_string(), connector.to_string())].into(),
        Arc::new(datafusion::arrow::datatypes::Schema::empty()),
    )
}

impl runnel_engine::connector::ConnectorFactory for Connectors {
    fn source(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SourceProvider>, EngineError> {
        self.source_provider(options, schema)
            .map_err(|e| EngineError::Plan(e.to_string()))
    }

    fn sink(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SinkProvider>, EngineError> {
        self.sink_provider(options, schema)
            .map_err(|e| EngineError::Plan(e.to_string()))
    }

    fn lookup(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
        keys: Vec<String>,
    ) -> Result<Arc<dyn runnel_engine::join::lookup::LookupProvider>, EngineError> {
        let options = Options::new(options);
        let provider = match options.required("connector") {
            Ok("jdbc") => jdbc::lookup(&options, schema, keys),
            Ok(other) => Err(ConnectorError::Option(format!(
                "connector '{other}' cannot be looked up; a lookup join (FOR SYSTEM_TIME AS OF a processing time) needs 'jdbc'"
            ))),
            Err(error) => Err(error),
        }
        .and_then(|provider| options.reject_unknown().map(|()| provider));
        provider.map_err(|e| EngineError::Plan(e.to_string()))
    }
}
