//! DescribeDeliveryStream's description: the destination as configured,
//! with the defaults AWS fills in shown as AWS shows them.

use runnel_firehose::{DESTINATION_ID, DeliveryStreamMeta, DestinationKind};
use serde_json::{Map, Value, json};

/// The fields of `S3DestinationDescription`, a subset of the extended one.
const S3_FIELDS: &[&str] = &[
    "RoleARN",
    "BucketARN",
    "Prefix",
    "ErrorOutputPrefix",
    "BufferingHints",
    "CompressionFormat",
    "EncryptionConfiguration",
    "CloudWatchLoggingOptions",
];

fn seconds(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The extended S3 description: every field as given, the defaults added.
fn extended_s3(config: &Value) -> Map<String, Value> {
    let mut out = config.as_object().cloned().unwrap_or_default();
    let hints = out.entry("BufferingHints").or_insert_with(|| json!({}));
    if let Some(hints) = hints.as_object_mut() {
        hints.entry("SizeInMBs").or_insert(json!(5));
        hints.entry("IntervalInSeconds").or_insert(json!(300));
    }
    out.entry("CompressionFormat")
        .or_insert(json!("UNCOMPRESSED"));
    out.entry("EncryptionConfiguration")
        .or_insert(json!({"NoEncryptionConfig": "NoEncryption"}));
    out.entry("CloudWatchLoggingOptions")
        .or_insert(json!({"Enabled": false}));
    out.entry("S3BackupMode").or_insert(json!("Disabled"));
    if let Some(backup) = out.remove("S3BackupConfiguration") {
        out.insert("S3BackupDescription".into(), backup);
    }
    out
}

fn plain_s3(config: &Value) -> Map<String, Value> {
    extended_s3(config)
        .into_iter()
        .filter(|(key, _)| S3_FIELDS.contains(&key.as_str()))
        .collect()
}

/// A destination with a backup bucket as AWS describes it: the fields as
/// given, `defaults` and the buffering hints' where none were, and the
/// backup bucket (`S3Configuration`) as its S3 description.
fn with_backup(
    config: &Value,
    hints: (u64, u64),
    defaults: &[(&str, Value)],
) -> Map<String, Value> {
    let mut out = config.as_object().cloned().unwrap_or_default();
    let buffering = out.entry("BufferingHints").or_insert_with(|| json!({}));
    if let Some(buffering) = buffering.as_object_mut() {
        buffering.entry("SizeInMBs").or_insert(json!(hints.0));
        buffering
            .entry("IntervalInSeconds")
            .or_insert(json!(hints.1));
    }
    for (field, value) in defaults {
        out.entry(*field).or_insert_with(|| value.clone());
    }
    out.entry("CloudWatchLoggingOptions")
        .or_insert(json!({"Enabled": false}));
    if let Some(s3) = out.remove("S3Configuration") {
        out.insert(
            "S3DestinationDescription".into(),
            Value::Object(plain_s3(&s3)),
        );
    }
    out
}

/// The HTTP endpoint description: the access key is never shown, as AWS
/// does.
fn http_endpoint(config: &Value) -> Map<String, Value> {
    let mut out = with_backup(
        config,
        (5, 300),
        &[
            ("RetryOptions", json!({"DurationInSeconds": 300})),
            ("S3BackupMode", json!("FailedDataOnly")),
            ("RequestConfiguration", json!({"ContentEncoding": "NONE"})),
        ],
    );
    if let Some(endpoint) = out
        .get_mut("EndpointConfiguration")
        .and_then(Value::as_object_mut)
    {
        endpoint.remove("AccessKey");
    }
    out
}

fn search_cluster(config: &Value) -> Map<String, Value> {
    with_backup(
        config,
        (5, 300),
        &[
            ("IndexRotationPeriod", json!("OneDay")),
            ("RetryOptions", json!({"DurationInSeconds": 300})),
            ("S3BackupMode", json!("FailedDocumentsOnly")),
            (
                "DocumentIdOptions",
                json!({"DefaultDocumentIdFormat": "FIREHOSE_DEFAULT"}),
            ),
        ],
    )
}

/// The Redshift description: the password is never shown, as AWS does;
/// buffering is the staging bucket's.
fn redshift(config: &Value) -> Map<String, Value> {
    let mut out = config.as_object().cloned().unwrap_or_default();
    out.remove("Password");
    out.entry("RetryOptions")
        .or_insert(json!({"DurationInSeconds": 3600}));
    out.entry("S3BackupMode").or_insert(json!("Disabled"));
    out.entry("CloudWatchLoggingOptions")
        .or_insert(json!({"Enabled": false}));
    if let Some(s3) = out.remove("S3Configuration") {
        out.insert(
            "S3DestinationDescription".into(),
            Value::Object(plain_s3(&s3)),
        );
    }
    out
}

fn splunk(config: &Value) -> Map<String, Value> {
    with_backup(
        config,
        (5, 60),
        &[
            ("HECAcknowledgmentTimeoutInSeconds", json!(180)),
            ("RetryOptions", json!({"DurationInSeconds": 3600})),
            ("S3BackupMode", json!("FailedEventsOnly")),
        ],
    )
}

pub fn description(meta: &DeliveryStreamMeta, arn: &str) -> Value {
    let destination = match meta.destination_kind {
        DestinationKind::ExtendedS3 => json!({
            "DestinationId": DESTINATION_ID,
            "S3DestinationDescription": plain_s3(&meta.destination),
            "ExtendedS3DestinationDescription": extended_s3(&meta.destination),
        }),
        DestinationKind::HttpEndpoint => json!({
            "DestinationId": DESTINATION_ID,
            "HttpEndpointDestinationDescription": http_endpoint(&meta.destination),
        }),
        DestinationKind::OpenSearch => json!({
            "DestinationId": DESTINATION_ID,
            "AmazonopensearchserviceDestinationDescription": search_cluster(&meta.destination),
        }),
        DestinationKind::Redshift => json!({
            "DestinationId": DESTINATION_ID,
            "RedshiftDestinationDescription": redshift(&meta.destination),
        }),
        DestinationKind::Splunk => json!({
            "DestinationId": DESTINATION_ID,
            "SplunkDestinationDescription": splunk(&meta.destination),
        }),
        DestinationKind::Elasticsearch => json!({
            "DestinationId": DESTINATION_ID,
            "ElasticsearchDestinationDescription": search_cluster(&meta.destination),
        }),
    };
    let mut description = json!({
        "DeliveryStreamName": meta.name,
        "DeliveryStreamARN": arn,
        "DeliveryStreamStatus": meta.status.as_str(),
        "DeliveryStreamEncryptionConfiguration": match &meta.encryption {
            None => json!({"Status": "DISABLED"}),
            Some(encryption) => {
                let mut described = json!({"KeyType": encryption.key_type, "Status": "ENABLED"});
                if let Some(arn) = &encryption.key_arn {
                    described["KeyARN"] = json!(arn);
                }
                described
            }
        },
        "DeliveryStreamType": meta.stream_type,
        "VersionId": meta.version.to_string(),
        "CreateTimestamp": seconds(meta.created_ms),
        "LastUpdateTimestamp": seconds(meta.updated_ms),
        "Destinations": [destination],
        "HasMoreDestinations": false,
    });
    if let (Some(source), Some(out)) = (&meta.source, description.as_object_mut()) {
        out.insert(
            "Source".into(),
            json!({"KinesisStreamSourceDescription": {
                "KinesisStreamARN": source.get("KinesisStreamARN"),
                "RoleARN": source.get("RoleARN"),
                "DeliveryStartTimestamp": seconds(meta.created_ms),
            }}),
        );
    }
    description
}
