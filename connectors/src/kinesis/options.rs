//! A `kinesis` table's options, as Flink's connector (flink-connector-aws)
//! names them; the legacy connector's `'stream'` is taken too.

use std::sync::Arc;
use std::time::Duration;

use super::Target;
use super::remote::RemoteKinesis;
use datafusion::arrow::datatypes::SchemaRef;

use crate::ConnectorError;
use crate::format::{Carrier, Format};
use crate::options::{Options, parse_duration};
use crate::registry::Services;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    Latest,
    TrimHorizon,
    /// Epoch milliseconds.
    AtTimestamp(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioner {
    Random,
    /// Every row of a worker to one shard: the worker's own key.
    Fixed,
    /// `PARTITIONED BY` columns' values joined by the delimiter.
    Columns {
        columns: Vec<usize>,
        delimiter: String,
    },
}

#[derive(Debug, Clone)]
pub struct KinesisOptions {
    pub stream: String,
    pub endpoint: Option<String>,
    /// `aws.region`, else the stream ARN's, else us-east-1.
    pub region: String,
    pub format: Format,
    pub initial_position: InitialPosition,
    pub discovery_interval: Duration,
    pub max_record_count: usize,
    pub partitioner: Partitioner,
    pub batch_max_size: usize,
    /// Bytes of records a remote PutRecords carries at most.
    pub flush_buffer_size: usize,
    /// How long a remote sink holds a record before sending it.
    pub flush_buffer_timeout: Duration,
    /// How long a remote source leaves a shard that gave nothing.
    pub empty_fetch_interval: Duration,
    pub fail_on_error: bool,
}

/// PutRecords' own limits.
const MAX_BATCH: usize = 500;
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

fn duration_option(
    options: &Options,
    key: &str,
    default: Duration,
) -> Result<Duration, ConnectorError> {
    match options.get(key) {
        None => Ok(default),
        Some(text) => parse_duration(text).ok_or_else(|| {
            ConnectorError::Option(format!(
                "option '{key}' must be a duration such as '5 s', got '{text}'"
            ))
        }),
    }
}

impl KinesisOptions {
    pub fn read(options: &Options, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let arn_region = options
            .get("stream.arn")
            .and_then(|arn| arn.split(':').nth(3))
            .filter(|region| !region.is_empty())
            .map(str::to_string);
        let stream = match (options.get("stream.arn"), options.get("stream")) {
            (Some(arn), None) => runnel_streams::stream_name_from_arn(arn)
                .ok_or_else(|| {
                    ConnectorError::Option(format!(
                        "option 'stream.arn' must be a stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>), got '{arn}'"
                    ))
                })?
                .to_string(),
            (None, Some(name)) => name.to_string(),
            (Some(_), Some(_)) => {
                return Err(ConnectorError::Option(
                    "give the stream once: 'stream.arn' or the legacy 'stream', not both".into(),
                ));
            }
            (None, None) => {
                return Err(ConnectorError::Option(
                    "missing required option 'stream.arn'".into(),
                ));
            }
        };
        // Read so that they are known: the region and credentials matter to
        // a remote endpoint only; this server does not check signatures.
        for key in [
            "aws.credentials.provider",
            "aws.credentials.basic.accesskeyid",
            "aws.credentials.basic.secretkey",
            "aws.trust.all.certificates",
            "aws.http.protocol.version",
            "sink.http-client.protocol.version",
            "sink.requests.max-inflight",
            "sink.requests.max-buffered",
        ] {
            options.get(key);
        }
        match options.get("source.reader.type") {
            None => {}
            Some(kind)
                if kind.eq_ignore_ascii_case("POLLING") || kind.eq_ignore_ascii_case("EFO") =>
            {
                options.get("source.efo.consumer.name");
                options.get("source.efo.lifecycle");
            }
            Some(other) => {
                return Err(ConnectorError::Option(format!(
                    "option 'source.reader.type' must be POLLING or EFO, got '{other}'"
                )));
            }
        }
        let initial_position = initial_position(options)?;
        let discovery_interval = match options.get("source.shard.discovery.interval") {
            None => Duration::from_secs(10),
            Some(text) => parse_duration(text).ok_or_else(|| {
                ConnectorError::Option(format!(
                    "option 'source.shard.discovery.interval' must be a duration such as '10 s', got '{text}'"
                ))
            })?,
        };
        let max_record_count = options
            .u64("source.shard.get-records.max-record-count")?
            .map_or(10_000, |n| n.clamp(1, 10_000) as usize);
        let partitioner = partitioner(options, schema)?;
        let batch_max_size = options
            .u64("sink.batch.max-size")?
            .map_or(MAX_BATCH, |n| (n as usize).clamp(1, MAX_BATCH));
        let fail_on_error = options.bool("sink.fail-on-error", false)?;
        let flush_buffer_size = options
            .u64("sink.flush-buffer.size")?
            .map_or(MAX_BATCH_BYTES, |n| (n as usize).clamp(1, MAX_BATCH_BYTES));
        let flush_buffer_timeout =
            duration_option(options, "sink.flush-buffer.timeout", Duration::from_secs(5))?;
        let empty_fetch_interval = duration_option(
            options,
            "source.reader.empty-records-fetch-interval",
            Duration::from_millis(250),
        )?;
        let region = options
            .get("aws.region")
            .map(str::to_string)
            .or(arn_region)
            .unwrap_or_else(|| "us-east-1".to_string());
        let format = Format::from_options(options, schema, Carrier::Messages)?;
        Ok(KinesisOptions {
            stream,
            endpoint: options.get("aws.endpoint").map(str::to_string),
            region,
            format,
            initial_position,
            discovery_interval,
            max_record_count,
            partitioner,
            batch_max_size,
            flush_buffer_size,
            flush_buffer_timeout,
            empty_fetch_interval,
            fail_on_error,
        })
    }

    pub fn batching(&self) -> super::remote_sink::Batching {
        super::remote_sink::Batching {
            max_records: self.batch_max_size,
            max_bytes: self.flush_buffer_size,
            timeout: self.flush_buffer_timeout,
            fail_on_error: self.fail_on_error,
        }
    }

    /// Where the stream is: this server's (no `aws.endpoint`, or one that
    /// names this server), read and written in-process; or another
    /// endpoint, through its API. The stream must exist either way.
    pub fn target(&self, options: &Options, services: &Services) -> Result<Target, ConnectorError> {
        let missing = |e: &dyn std::fmt::Display| {
            ConnectorError::Option(format!("kinesis stream '{}': {e}", self.stream))
        };
        match &self.endpoint {
            Some(endpoint) if !services.is_own_endpoint(endpoint) => {
                let client = RemoteKinesis::from_options(endpoint, &self.region, options)?;
                client
                    .call(
                        "DescribeStreamSummary",
                        &serde_json::json!({"StreamName": self.stream}),
                    )
                    .map_err(|e| missing(&format!("at {endpoint}: {e}")))?;
                Ok(Target::Remote(Arc::new(client)))
            }
            _ => {
                let Some(streams) = services.streams.clone() else {
                    return Err(ConnectorError::Option(
                        "the kinesis connector reads the streams of the server the job runs in: submit the job to `runnel server` (`runnel jobs submit`), or name another endpoint with 'aws.endpoint'".into(),
                    ));
                };
                streams.describe(&self.stream).map_err(|e| missing(&e))?;
                Ok(Target::Local(streams))
            }
        }
    }
}

fn initial_position(options: &Options) -> Result<InitialPosition, ConnectorError> {
    let position = options
        .get("source.init.position")
        .or_else(|| options.get("scan.stream.initpos"))
        .unwrap_or("LATEST");
    let timestamp = options
        .get("source.init.timestamp")
        .or_else(|| options.get("scan.stream.initpos-timestamp"));
    let format = options.get("source.init.timestamp.format");
    match position.to_ascii_uppercase().as_str() {
        "LATEST" => Ok(InitialPosition::Latest),
        "TRIM_HORIZON" => Ok(InitialPosition::TrimHorizon),
        "AT_TIMESTAMP" => {
            let text = timestamp.ok_or_else(|| {
                ConnectorError::Option(
                    "'source.init.position' = 'AT_TIMESTAMP' needs 'source.init.timestamp'".into(),
                )
            })?;
            parse_timestamp(text, format)
                .map(InitialPosition::AtTimestamp)
                .ok_or_else(|| {
                    ConnectorError::Option(format!(
                        "option 'source.init.timestamp' must be epoch seconds (with a fraction) or a date such as 2024-01-31T12:00:00.000Z, got '{text}'"
                    ))
                })
        }
        other => Err(ConnectorError::Option(format!(
            "option 'source.init.position' must be LATEST, TRIM_HORIZON or AT_TIMESTAMP, got '{other}'"
        ))),
    }
}

/// Epoch seconds with an optional fraction, or a date in the connector's
/// default format (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`, ISO-8601 with an offset).
fn parse_timestamp(text: &str, format: Option<&str>) -> Option<u64> {
    if let Ok(seconds) = text.trim().parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64);
    }
    if format.is_some_and(|f| f != "yyyy-MM-dd'T'HH:mm:ss.SSSXXX") {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

fn partitioner(options: &Options, schema: &SchemaRef) -> Result<Partitioner, ConnectorError> {
    let delimiter = options
        .get("sink.partitioner-field-delimiter")
        .unwrap_or("|")
        .to_string();
    let keys = options.get(runnel_engine::connector::PARTITION_KEYS);
    let chosen = options.get("sink.partitioner");
    match (keys, chosen) {
        (Some(_), Some(_)) => Err(ConnectorError::Option(
            "'sink.partitioner' cannot be set on a table with PARTITIONED BY: the partition key is made of the PARTITIONED BY columns".into(),
        )),
        (Some(keys), None) => {
            let columns = keys
                .split(',')
                .map(|name| {
                    schema.index_of(name).map_err(|_| {
                        ConnectorError::Option(format!("PARTITIONED BY column '{name}' is not a column of the table"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Partitioner::Columns { columns, delimiter })
        }
        (None, None) => Ok(Partitioner::Random),
        (None, Some(kind)) if kind.eq_ignore_ascii_case("random") => Ok(Partitioner::Random),
        (None, Some(kind)) if kind.eq_ignore_ascii_case("fixed") => Ok(Partitioner::Fixed),
        (None, Some(other)) => Err(ConnectorError::Option(format!(
            "option 'sink.partitioner' must be random or fixed, got '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_timestamps_read_as_flink_writes_them() {
        assert_eq!(parse_duration("10 s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1 min"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("500"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(
            parse_timestamp("1586937601.5", None),
            Some(1_586_937_601_500)
        );
        assert_eq!(
            parse_timestamp("2020-04-15T08:00:01.500Z", None),
            Some(1_586_937_601_500)
        );
        assert_eq!(
            parse_timestamp("2020-04-15T08:00:01.500Z", Some("dd/MM")),
            None
        );
        assert_eq!(parse_timestamp("-1", None), None);
    }
}
