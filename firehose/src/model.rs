//! What is kept of a delivery stream, and the S3 destination's settings
//! read (and checked) from its configuration as a client gave it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compress::Compression;
use crate::convert::Conversion;
use crate::error::{FirehoseError, Result};
use crate::partition::{Partitioning, Query};
use crate::prefix::Prefix;
use crate::processing::Pipeline;

/// What a destination's configuration may name that Runnel's own config
/// resolves: Lambda ARNs to URLs, Glue tables to columns.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub lambdas: HashMap<String, String>,
    /// `"<database>.<table>"` to a column list (`"id BIGINT, name STRING"`).
    pub schemas: HashMap<String, String>,
}

/// The one destination id a delivery stream has, as AWS numbers it.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Creating,
    Active,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Deleting => "DELETING",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryStreamMeta {
    pub id: u64,
    pub name: String,
    /// `DirectPut` or `KinesisStreamAsSource`.
    pub stream_type: String,
    pub status: Status,
    /// Starts at 1; every UpdateDestination adds one.
    pub version: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// The destination's configuration as given: an
    /// `ExtendedS3DestinationConfiguration` (an `S3DestinationConfiguration`
    /// is kept in the same form, as AWS does), or an
    /// `HttpEndpointDestinationConfiguration` when `destination_kind` says.
    pub destination: Value,
    #[serde(default)]
    pub destination_kind: DestinationKind,
    /// `KinesisStreamSourceConfiguration` as given, for
    /// `KinesisStreamAsSource` streams.
    #[serde(default)]
    pub source: Option<Value>,
    /// Set while server-side encryption is on.
    #[serde(default)]
    pub encryption: Option<Encryption>,
    pub tags: BTreeMap<String, String>,
}

/// Server-side encryption as the client asked for it: buffered records are
/// sealed with the server's key either way (Runnel has no KMS); the ARN is
/// kept to be described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `AWS_OWNED_CMK` or `CUSTOMER_MANAGED_CMK`.
    pub key_type: String,
    pub key_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationKind {
    #[default]
    ExtendedS3,
    HttpEndpoint,
    /// `AmazonopensearchserviceDestinationConfiguration`.
    OpenSearch,
    /// `ElasticsearchDestinationConfiguration`.
    Elasticsearch,
    /// `SplunkDestinationConfiguration`.
    Splunk,
    /// `RedshiftDestinationConfiguration` (loaded into PostgreSQL).
    Redshift,
}

/// An HTTP endpoint destination: where records are POSTed, and how.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub url: String,
    pub name: Option<String>,
    pub access_key: Option<String>,
    pub gzip: bool,
    /// `X-Amz-Firehose-Common-Attributes`, as JSON.
    pub common_attributes: Option<String>,
    /// How long a request is retried before its records go to the backup.
    pub retry_ms: u64,
    /// `AllData`: every record is also written to the backup bucket.
    pub backup_all: bool,
}

/// Buffering hints' defaults and bounds for S3.
pub const DEFAULT_SIZE_MB: u64 = 5;
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;

/// What delivery needs from an S3 destination configuration.
#[derive(Debug, Clone)]
pub struct DestinationSettings {
    pub bucket: String,
    pub prefix: Prefix,
    pub error_prefix: Option<Prefix>,
    pub size_bytes: u64,
    pub interval_ms: u64,
    pub compression: Compression,
    pub extension: String,
    pub zone: Option<chrono_tz::Tz>,
    pub processing: Option<Pipeline>,
    /// `S3BackupMode` `Enabled`: where each object's source records (as
    /// they came, before processing) are copied.
    pub backup: Option<Box<DestinationSettings>>,
    /// For an HTTP endpoint destination: the endpoint. The S3 fields then
    /// describe its backup bucket (`S3Configuration`).
    pub http: Option<HttpSettings>,
    /// For an OpenSearch or Elasticsearch destination: the cluster.
    pub search: Option<crate::search::SearchSettings>,
    /// Dynamic partitioning: how each record gets its keys; each key set
    /// has its own buffer.
    pub partitioning: Option<Partitioning>,
    /// With dynamic partitioning, the processing steps that must run
    /// before records are partitioned (decompression, de-aggregation, the
    /// Lambda); `processing` is then what runs on each partition's objects.
    pub routing: Option<Pipeline>,
    /// JSON records written as Parquet.
    pub conversion: Option<Conversion>,
    /// For a Redshift destination: the table objects are COPYed into.
    pub redshift: Option<crate::redshift::RedshiftSettings>,
    /// For a Splunk destination: its HTTP Event Collector.
    pub splunk: Option<crate::splunk::SplunkSettings>,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

fn text<'a>(config: &'a Value, field: &str) -> Option<&'a str> {
    config.get(field).and_then(Value::as_str)
}

fn enabled(config: &Value, field: &str) -> bool {
    config
        .get(field)
        .and_then(|c| c.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl DestinationSettings {
    /// Reads an `ExtendedS3DestinationConfiguration`, refusing what Runnel
    /// does not do yet by name rather than delivering something else.
    pub fn parse(config: &Value, lookups: &Lookups) -> Result<DestinationSettings> {
        let bucket_arn = text(config, "BucketARN")
            .ok_or_else(|| invalid("BucketARN must be given for an S3 destination."))?;
        let bucket = bucket_from_arn(bucket_arn)?;
        let partitioned = enabled(config, "DynamicPartitioningConfiguration");
        let (query, processing_config) =
            metadata_extraction(config.get("ProcessingConfiguration"))?;
        let pipeline = Pipeline::parse(processing_config.as_ref(), &lookups.lambdas)?;
        let has_lambda = pipeline.as_ref().is_some_and(Pipeline::has_lambda);
        let prefix_text = text(config, "Prefix").unwrap_or("");
        let prefix = Prefix::parse(prefix_text)?;
        let named = prefix.partition_keys();
        let partitioning = match (partitioned, query) {
            (true, query) if query.is_some() || has_lambda => Some(Partitioning {
                query: query.as_deref().map(Query::compile).transpose()?,
                named: named.clone(),
            }),
            (true, _) => {
                return Err(invalid(
                    "Dynamic partitioning needs a MetadataExtraction processor or a Lambda processor to give records their partition keys.",
                ));
            }
            (false, Some(_)) => {
                return Err(invalid(
                    "The MetadataExtraction processor needs DynamicPartitioningConfiguration Enabled.",
                ));
            }
            (false, None) => None,
        };
        let backup = match text(config, "S3BackupMode") {
            None | Some("Disabled") => None,
            Some("Enabled") => {
                let backup = config.get("S3BackupConfiguration").ok_or_else(|| {
                    invalid("S3BackupConfiguration must be given when S3BackupMode is Enabled.")
                })?;
                Some(Box::new(DestinationSettings::parse(backup, lookups)?))
            }
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode '{other}' is not one of Disabled, Enabled."
                )));
            }
        };
        match (&partitioning, named.first()) {
            (None, Some(_)) => {
                return Err(invalid(format!(
                    "The prefix '{prefix_text}' uses partitionKeyFrom expressions, which need dynamic partitioning enabled."
                )));
            }
            (Some(_), None) => {
                return Err(invalid(format!(
                    "With dynamic partitioning the prefix '{prefix_text}' must use at least one !{{partitionKeyFromQuery:key}} or !{{partitionKeyFromLambda:key}}."
                )));
            }
            _ => {}
        }
        if let Some(partitioning) = &partitioning {
            if partitioning.uses_lambda_keys() && !has_lambda {
                return Err(invalid(format!(
                    "The prefix '{prefix_text}' uses partitionKeyFromLambda, which needs a Lambda processor."
                )));
            }
            if partitioning.query.is_none() && named.iter().any(|(lambda, _)| !lambda) {
                return Err(invalid(format!(
                    "The prefix '{prefix_text}' uses partitionKeyFromQuery, which needs a MetadataExtraction processor."
                )));
            }
        }
        let error_prefix = match text(config, "ErrorOutputPrefix").filter(|p| !p.is_empty()) {
            Some(text) => Some(Prefix::parse(text)?).map(|p| {
                if p.has_timestamp() {
                    p
                } else {
                    p.with_default_timestamp()
                }
            }),
            None if prefix.has_expressions() || partitioning.is_some() => {
                return Err(invalid(
                    "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions.",
                ));
            }
            None => None,
        };
        if prefix.has_error_output_type() {
            return Err(invalid(format!(
                "The prefix '{prefix_text}' cannot contain !{{firehose:error-output-type}}; only ErrorOutputPrefix can."
            )));
        }
        // Firehose adds the hour to a prefix without a timestamp, but not
        // to a partitioned one: the keys are the layout asked for.
        let prefix = if prefix.has_timestamp() || partitioning.is_some() {
            prefix
        } else {
            prefix.with_default_timestamp()
        };
        let (size_bytes, interval_ms) = buffering_hints(config);
        let compression =
            Compression::parse(text(config, "CompressionFormat").unwrap_or("UNCOMPRESSED"))?;
        let extension = match text(config, "FileExtension") {
            Some(ext) if !ext.is_empty() => ext.to_string(),
            _ => compression.extension().to_string(),
        };
        let zone =
            match text(config, "CustomTimeZone").filter(|z| !z.is_empty()) {
                None => None,
                Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                    invalid(format!("CustomTimeZone '{name}' is not a time zone id."))
                })?),
            };
        let (processing, routing) = match (&partitioning, pipeline) {
            (Some(_), Some(pipeline)) if pipeline.has_steps_before_partitioning() => {
                let (before, after) = pipeline.split_at_partitioning();
                (after, Some(before))
            }
            (_, pipeline) => (pipeline, None),
        };
        let conversion = match config.get("DataFormatConversionConfiguration") {
            Some(conversion) if enabled(config, "DataFormatConversionConfiguration") => {
                if compression != Compression::Uncompressed {
                    return Err(invalid(
                        "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; Parquet compresses inside the file (ParquetSerDe Compression).",
                    ));
                }
                Some(Conversion::parse(conversion, &lookups.schemas)?)
            }
            _ => None,
        };
        let extension = match (&conversion, text(config, "FileExtension")) {
            (Some(_), None | Some("")) => ".parquet".to_string(),
            _ => extension,
        };
        Ok(DestinationSettings {
            partitioning,
            routing,
            conversion,
            backup,
            http: None,
            search: None,
            splunk: None,
            redshift: None,
            processing,
            bucket,
            prefix,
            error_prefix,
            size_bytes,
            interval_ms,
            compression,
            extension,
            zone,
        })
    }
}

impl DestinationSettings {
    /// The settings of a destination of `kind` configured as `config`.
    pub fn of(
        kind: DestinationKind,
        config: &Value,
        lookups: &Lookups,
    ) -> Result<DestinationSettings> {
        match kind {
            DestinationKind::ExtendedS3 => DestinationSettings::parse(config, lookups),
            DestinationKind::HttpEndpoint => DestinationSettings::parse_http(config, lookups),
            DestinationKind::OpenSearch => {
                DestinationSettings::parse_search(config, lookups, false)
            }
            DestinationKind::Elasticsearch => {
                DestinationSettings::parse_search(config, lookups, true)
            }
            DestinationKind::Splunk => DestinationSettings::parse_splunk(config, lookups),
            DestinationKind::Redshift => DestinationSettings::parse_redshift(config, lookups),
        }
    }

    /// Reads a Redshift destination: objects staged as `S3Configuration`
    /// says (its buffering hints are the stream's), then COPYed.
    fn parse_redshift(config: &Value, lookups: &Lookups) -> Result<DestinationSettings> {
        let redshift = crate::redshift::RedshiftSettings::parse(config)?;
        let staging = config.get("S3Configuration").ok_or_else(|| {
            invalid("S3Configuration must be given: objects are staged there before COPY.")
        })?;
        let mut settings = DestinationSettings::parse(staging, lookups)?;
        if settings.compression != Compression::Uncompressed {
            return Err(invalid(
                "S3Configuration CompressionFormat must be UNCOMPRESSED for a Redshift destination in this Runnel version.",
            ));
        }
        settings.processing =
            Pipeline::parse(config.get("ProcessingConfiguration"), &lookups.lambdas)?;
        settings.redshift = Some(redshift);
        Ok(settings)
    }

    /// Reads a Splunk destination: its HEC, buffering (1-5 MB, default 5;
    /// default 60 s), processing, and `S3Configuration` as the backup.
    fn parse_splunk(config: &Value, lookups: &Lookups) -> Result<DestinationSettings> {
        let splunk = crate::splunk::SplunkSettings::parse(config)?;
        let backup = config.get("S3Configuration").ok_or_else(|| {
            invalid(
                "S3Configuration must be given: it holds the events that could not be delivered.",
            )
        })?;
        let mut settings = DestinationSettings::parse(backup, lookups)?;
        let hint = |field: &str, default: u64| {
            config
                .get("BufferingHints")
                .and_then(|h| h.get(field))
                .and_then(Value::as_u64)
                .unwrap_or(default)
        };
        settings.size_bytes = hint("SizeInMBs", DEFAULT_SIZE_MB) * 1024 * 1024;
        settings.interval_ms = hint("IntervalInSeconds", 60) * 1000;
        settings.processing =
            Pipeline::parse(config.get("ProcessingConfiguration"), &lookups.lambdas)?;
        settings.splunk = Some(splunk);
        Ok(settings)
    }

    /// Reads an OpenSearch or Elasticsearch destination: the cluster, its
    /// buffering (1-100 MB, default 5; default 300 s) and processing, its
    /// `S3Configuration` as the backup bucket.
    fn parse_search(
        config: &Value,
        lookups: &Lookups,
        elasticsearch: bool,
    ) -> Result<DestinationSettings> {
        let search = crate::search::SearchSettings::parse(config, elasticsearch)?;
        let backup = config.get("S3Configuration").ok_or_else(|| {
            invalid(
                "S3Configuration must be given: it holds the documents that could not be indexed.",
            )
        })?;
        let mut settings = DestinationSettings::parse(backup, lookups)?;
        (settings.size_bytes, settings.interval_ms) = buffering_hints(config);
        settings.processing =
            Pipeline::parse(config.get("ProcessingConfiguration"), &lookups.lambdas)?;
        settings.search = Some(search);
        Ok(settings)
    }

    /// Reads an `HttpEndpointDestinationConfiguration`: its own buffering
    /// (1-64 MB, default 5; default 300 s) and processing, its
    /// `S3Configuration` as the backup bucket.
    fn parse_http(config: &Value, lookups: &Lookups) -> Result<DestinationSettings> {
        let endpoint = config.get("EndpointConfiguration").ok_or_else(|| {
            invalid("EndpointConfiguration must be given for an HTTP endpoint destination.")
        })?;
        let url = text(endpoint, "Url")
            .ok_or_else(|| invalid("EndpointConfiguration.Url must be given."))?
            .to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(format!(
                "The endpoint URL '{url}' must be an https:// (or, in Runnel, http://) URL."
            )));
        }
        let backup = config
            .get("S3Configuration")
            .ok_or_else(|| invalid("S3Configuration must be given for an HTTP endpoint destination: it holds the records that could not be delivered."))?;
        let mut settings = DestinationSettings::parse(backup, lookups)?;
        let request = config.get("RequestConfiguration");
        let gzip = match request.and_then(|r| text(r, "ContentEncoding")) {
            None | Some("NONE") => false,
            Some("GZIP") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "ContentEncoding '{other}' is not one of NONE, GZIP."
                )));
            }
        };
        let common_attributes = request
            .and_then(|r| r.get("CommonAttributes"))
            .and_then(Value::as_array)
            .map(|attributes| {
                let map: serde_json::Map<String, Value> = attributes
                    .iter()
                    .filter_map(|a| {
                        Some((
                            text(a, "AttributeName")?.to_string(),
                            Value::String(text(a, "AttributeValue")?.to_string()),
                        ))
                    })
                    .collect();
                serde_json::json!({ "commonAttributes": map }).to_string()
            });
        let backup_all = match text(config, "S3BackupMode") {
            None | Some("FailedDataOnly") => false,
            Some("AllData") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode '{other}' is not one of FailedDataOnly, AllData."
                )));
            }
        };
        (settings.size_bytes, settings.interval_ms) = buffering_hints(config);
        settings.processing =
            Pipeline::parse(config.get("ProcessingConfiguration"), &lookups.lambdas)?;
        let retry_seconds = config
            .get("RetryOptions")
            .and_then(|r| r.get("DurationInSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(300);
        settings.http = Some(HttpSettings {
            url,
            name: text(endpoint, "Name").map(str::to_string),
            access_key: text(endpoint, "AccessKey").map(str::to_string),
            gzip,
            common_attributes,
            retry_ms: retry_seconds * 1000,
            backup_all,
        });
        Ok(settings)
    }
}

/// The `MetadataExtraction` processor's query, if any, and the processing
/// configuration without it (the other processors run at delivery).
fn metadata_extraction(processing: Option<&Value>) -> Result<(Option<String>, Option<Value>)> {
    let Some(processing) = processing else {
        return Ok((None, None));
    };
    let mut rest = processing.clone();
    let mut query = None;
    if let Some(processors) = rest.get_mut("Processors").and_then(Value::as_array_mut) {
        let mut kept = Vec::new();
        for processor in processors.drain(..) {
            if processor.get("Type").and_then(Value::as_str) != Some("MetadataExtraction") {
                kept.push(processor);
                continue;
            }
            let parameter = |name: &str| {
                processor
                    .get("Parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|p| p.get("ParameterName").and_then(Value::as_str) == Some(name))
                    .and_then(|p| p.get("ParameterValue").and_then(Value::as_str))
                    .map(str::to_string)
            };
            if let Some(engine) = parameter("JsonParsingEngine")
                && engine != "JQ-1.6"
            {
                return Err(invalid(format!(
                    "JsonParsingEngine '{engine}' is not JQ-1.6."
                )));
            }
            query = Some(parameter("MetadataExtractionQuery").ok_or_else(|| {
                invalid(
                    "The MetadataExtraction processor needs a MetadataExtractionQuery parameter.",
                )
            })?);
        }
        *processors = kept;
    }
    Ok((query, Some(rest)))
}

/// `BufferingHints` as bytes and milliseconds, defaults filled in.
fn buffering_hints(config: &Value) -> (u64, u64) {
    let hint = |field: &str, default: u64| {
        config
            .get("BufferingHints")
            .and_then(|h| h.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(default)
    };
    (
        hint("SizeInMBs", DEFAULT_SIZE_MB) * 1024 * 1024,
        hint("IntervalInSeconds", DEFAULT_INTERVAL_SECONDS) * 1000,
    )
}

/// `arn:aws:s3:::bucket` -> `bucket`.
pub fn bucket_from_arn(arn: &str) -> Result<String> {
    let bucket = arn
        .split_once(":s3:::")
        .map(|(_, bucket)| bucket)
        .filter(|b| {
            !b.is_empty()
                && b.len() <= 255
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
                && !b.starts_with('.')
        })
        .ok_or_else(|| {
            invalid(format!(
                "BucketARN '{arn}' is not an S3 bucket ARN (arn:aws:s3:::bucket)."
            ))
        })?;
    Ok(bucket.to_string())
}

/// Applies an `ExtendedS3DestinationUpdate` to a configuration: the fields
/// it names replace those of the same name.
pub fn merge_update(config: &Value, update: &Value) -> Value {
    let mut merged = config.clone();
    if let (Some(target), Some(fields)) = (merged.as_object_mut(), update.as_object()) {
        for (key, value) in fields {
            let key = match key.as_str() {
                "S3BackupUpdate" => "S3BackupConfiguration",
                "S3Update" => "S3Configuration",
                other => other,
            };
            target.insert(key.to_string(), value.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_five_megabytes_and_five_minutes_uncompressed() {
        let s = DestinationSettings::parse(
            &json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r"}),
            &Lookups::default(),
        )
        .unwrap();
        assert_eq!(s.bucket, "lake");
        assert_eq!((s.size_bytes, s.interval_ms), (5 << 20, 300_000));
        assert_eq!(s.compression, Compression::Uncompressed);
        assert!(s.prefix.has_timestamp());
    }

    #[test]
    fn what_is_not_built_is_refused_by_name() {
        for (config, words) in [
            (
                json!({"BucketARN": "arn:aws:s3:::b", "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Nope"}]}}),
                "Nope",
            ),
            (
                json!({"BucketARN": "arn:aws:s3:::b", "DynamicPartitioningConfiguration": {"Enabled": true}}),
                "MetadataExtraction",
            ),
            (
                json!({"BucketARN": "arn:aws:s3:::b", "Prefix": "a/!{timestamp:yyyy}/"}),
                "ErrorOutputPrefix",
            ),
            (
                json!({"BucketARN": "arn:aws:s3:::b", "CustomTimeZone": "Mars/Olympus"}),
                "Mars/Olympus",
            ),
            (json!({"BucketARN": "arn:aws:s3:::"}), "BucketARN"),
        ] {
            let error = DestinationSettings::parse(&config, &Lookups::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains(words), "{config}: {error}");
        }
    }
}
