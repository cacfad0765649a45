//! Data Firehose on the AWS port (`Firehose_20150804`, JSON 1.1), in front
//! of `runnel-firehose`.

mod describe;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_firehose::{Accepted, CreateSpec, DestinationKind, Encryption, Firehose, FirehoseError};
use serde_json::{Map, Value, json};

use crate::aws::codec;
use crate::aws::request::{Req, invalid_argument};
use crate::aws::{AwsError, AwsRequest, AwsRouter, Handler};

pub const TARGET_PREFIX: &str = "Firehose_20150804";

const OPERATIONS: &[&str] = &[
    "CreateDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "DeleteDeliveryStream",
    "UpdateDestination",
    "PutRecord",
    "PutRecordBatch",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "ListTagsForDeliveryStream",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
];

/// PutRecordBatch's bounds: records per call, bytes per record (before
/// base64) and bytes per call.
const MAX_BATCH_RECORDS: usize = 500;
const MAX_RECORD_BYTES: usize = 1_024_000;
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The destinations AWS offers, by their configuration field; Runnel
/// builds the S3 ones so far.
const DESTINATIONS: &[&str] = &[
    "S3DestinationConfiguration",
    "ExtendedS3DestinationConfiguration",
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

pub struct Api {
    firehose: Arc<Firehose>,
}

pub fn register(router: &mut AwsRouter, firehose: Arc<Firehose>) {
    let api = Arc::new(Api { firehose });
    let handler: Handler = Arc::new(move |request: AwsRequest| {
        let api = api.clone();
        Box::pin(async move { api.handle(request).await })
    });
    router.register_each(TARGET_PREFIX, OPERATIONS, handler);
}

fn ok(value: Value) -> Response {
    crate::aws::codec::json_ok(value.to_string())
}

impl From<FirehoseError> for AwsError {
    fn from(error: FirehoseError) -> Self {
        let kind = match &error {
            FirehoseError::NotFound(_) => "ResourceNotFoundException",
            FirehoseError::InUse(_) => "ResourceInUseException",
            FirehoseError::InvalidArgument(_) => "InvalidArgumentException",
            FirehoseError::LimitExceeded(_) => "LimitExceededException",
            FirehoseError::ConcurrentModification(_) => "ConcurrentModificationException",
            FirehoseError::Store(_) | FirehoseError::Rocks(_) | FirehoseError::Internal(_) => {
                return AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceUnavailableException",
                    error.to_string(),
                );
            }
        };
        AwsError::new(StatusCode::BAD_REQUEST, kind, error.to_string())
    }
}

impl Api {
    async fn handle(&self, request: AwsRequest) -> Result<Response, AwsError> {
        if request.operation == "PutRecordBatch"
            && request.protocol == crate::aws::Protocol::Json
            && let Some(response) = self.put_record_batch_fast(&request.body).await
        {
            return response;
        }
        let map = codec::decode(
            request.protocol,
            &request.body,
            &crate::aws::shapes::FIREHOSE,
            &request.operation,
        )?;
        match request.operation.as_str() {
            "PutRecord" => self.put_record(map).await,
            "PutRecordBatch" => self.put_record_batch(map).await,
            "CreateDeliveryStream" => self.create(map),
            "DescribeDeliveryStream" => self.describe(map),
            "ListDeliveryStreams" => self.list(map),
            "DeleteDeliveryStream" => self.delete(map),
            "UpdateDestination" => self.update_destination(map),
            "TagDeliveryStream" => self.tag(map),
            "UntagDeliveryStream" => self.untag(map),
            "ListTagsForDeliveryStream" => self.list_tags(map),
            "StartDeliveryStreamEncryption" => self.encryption(map, true),
            "StopDeliveryStreamEncryption" => self.encryption(map, false),
            other => Err(AwsError::unknown_operation(format!(
                "Operation {TARGET_PREFIX}.{other} is not supported by this endpoint"
            ))),
        }
    }

    fn record_id(&self, stream: &str, seq: u64) -> String {
        // Opaque to clients; unique because stream ids are never reused.
        let id = self.firehose.stream_id(stream).unwrap_or_default();
        format!("{id:016x}{seq:016x}")
    }

    async fn put_record(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        let record = req.opt_object("Record")?;
        let data = match record {
            None => {
                req.problem(None, "record", "Member must not be null");
                None
            }
            Some(record) => {
                match record.opt_blob("Data")? {
                    None => {
                        req.problem(None, "record.data", "Member must not be null");
                        None
                    }
                    Some(data) => {
                        if data.len() > MAX_RECORD_BYTES {
                            req.problem(
                            Some(&format!("{} bytes", data.len())),
                            "record.data",
                            &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
                        );
                        }
                        Some(data)
                    }
                }
            }
        };
        req.finish()?;
        let data = data.unwrap_or_default();
        let outcome = self.firehose.put(&name, vec![data]).await?;
        match outcome.first() {
            Some(Accepted::Buffered(seq)) => Ok(ok(json!({
                "RecordId": self.record_id(&name, *seq),
                "Encrypted": self.firehose.is_encrypted(&name),
            }))),
            _ => Err(AwsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                format!(
                    "Slow down. The buffer of {name} is full while its destination is failing."
                ),
            )),
        }
    }

    /// The hot path: a JSON PutRecordBatch read straight into records.
    /// Anything it would have to refuse goes back to `None`, and the
    /// general path then gives the exact error.
    async fn put_record_batch_fast(&self, body: &[u8]) -> Option<Result<Response, AwsError>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Batch {
            delivery_stream_name: String,
            records: Vec<Record>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Record {
            data: String,
        }
        let batch: Batch = serde_json::from_slice(body).ok()?;
        let name = batch.delivery_stream_name;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !valid_name || batch.records.is_empty() || batch.records.len() > MAX_BATCH_RECORDS {
            return None;
        }
        let mut records = Vec::with_capacity(batch.records.len());
        let mut total = 0;
        for record in batch.records {
            let data = STANDARD.decode(record.data.as_bytes()).ok()?;
            if data.len() > MAX_RECORD_BYTES {
                return None;
            }
            total += data.len();
            records.push(data);
        }
        if total > MAX_BATCH_BYTES {
            return None;
        }
        Some(self.answer_batch(&name, records).await)
    }

    async fn answer_batch(&self, name: &str, records: Vec<Vec<u8>>) -> Result<Response, AwsError> {
        use std::fmt::Write;
        let outcomes = self.firehose.put(name, records).await?;
        let id = self.firehose.stream_id(name).unwrap_or_default();
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Accepted::BufferFull))
            .count();
        // Written by hand: 500 ids per answer, many answers a second.
        let mut text = String::with_capacity(64 + outcomes.len() * 48);
        let _ = write!(
            text,
            "{{\"FailedPutCount\":{failed},\"Encrypted\":{},\"RequestResponses\":[",
            self.firehose.is_encrypted(name)
        );
        for (i, outcome) in outcomes.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            match outcome {
                Accepted::Buffered(seq) => {
                    let _ = write!(text, "{{\"RecordId\":\"{id:016x}{seq:016x}\"}}");
                }
                Accepted::BufferFull => text.push_str(
                    "{\"ErrorCode\":\"ServiceUnavailableException\",\"ErrorMessage\":\"Slow down.\"}",
                ),
            }
        }
        text.push_str("]}");
        Ok(codec::json_ok(text))
    }

    async fn put_record_batch(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        let records = req.take_list("Records")?;
        let records = match records {
            None => {
                req.problem(None, "records", "Member must not be null");
                Vec::new()
            }
            Some(items) => {
                if items.is_empty() {
                    req.problem(
                        Some("[]"),
                        "records",
                        "Member must have length greater than or equal to 1",
                    );
                } else if items.len() > MAX_BATCH_RECORDS {
                    req.problem(
                        Some(&format!("{} records", items.len())),
                        "records",
                        &format!(
                            "Member must have length less than or equal to {MAX_BATCH_RECORDS}"
                        ),
                    );
                }
                let mut records = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let data = match item.get("Data").and_then(Value::as_str) {
                        Some(text) => STANDARD.decode(text).map_err(|_| {
                            codec::serialization_error(format!(
                                "Field records.{}.member.data is not valid base64",
                                i + 1
                            ))
                        })?,
                        None => {
                            req.problem(
                                None,
                                &format!("records.{}.member.data", i + 1),
                                "Member must not be null",
                            );
                            continue;
                        }
                    };
                    if data.len() > MAX_RECORD_BYTES {
                        req.problem(
                            Some(&format!("{} bytes", data.len())),
                            &format!("records.{}.member.data", i + 1),
                            &format!(
                                "Member must have length less than or equal to {MAX_RECORD_BYTES}"
                            ),
                        );
                    }
                    records.push(data);
                }
                records
            }
        };
        req.finish()?;
        let total: usize = records.iter().map(Vec::len).sum();
        if total > MAX_BATCH_BYTES {
            return Err(invalid_argument(format!(
                "Records size exceeds {MAX_BATCH_BYTES} bytes limit: the batch holds {total} bytes."
            )));
        }
        self.answer_batch(&name, records).await
    }

    fn create(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map.clone());
        let name = stream_name(&mut req)?;
        let stream_type = req
            .opt_str("DeliveryStreamType")?
            .unwrap_or_else(|| "DirectPut".into());
        if ![
            "DirectPut",
            "KinesisStreamAsSource",
            "MSKAsSource",
            "DatabaseAsSource",
        ]
        .contains(&stream_type.as_str())
        {
            req.problem(
                Some(&stream_type),
                "deliveryStreamType",
                "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, MSKAsSource, DatabaseAsSource]",
            );
        }
        let tags = read_tags(&mut req, "Tags", "tags")?;
        let encryption = read_encryption(&mut req, &map)?;
        let source = map
            .get("KinesisStreamSourceConfiguration")
            .filter(|v| !v.is_null())
            .cloned();
        if let Some(source) = &source {
            for (field, at) in [
                ("KinesisStreamARN", "kinesisStreamARN"),
                ("RoleARN", "roleARN"),
            ] {
                if source.get(field).and_then(Value::as_str).is_none() {
                    req.problem(
                        None,
                        &format!("kinesisStreamSourceConfiguration.{at}"),
                        "Member must not be null",
                    );
                }
            }
        }
        let given: Vec<&str> = DESTINATIONS
            .iter()
            .copied()
            .filter(|field| map.get(*field).is_some_and(|v| !v.is_null()))
            .collect();
        let (destination, destination_kind) = match given.as_slice() {
            [field] if field.ends_with("S3DestinationConfiguration") => {
                let config = map.get(*field).cloned().unwrap_or_default();
                let at = lower_first(field);
                check_s3_destination(&mut req, &config, &at)?;
                (config, DestinationKind::ExtendedS3)
            }
            ["HttpEndpointDestinationConfiguration"] => {
                let config = map
                    .get("HttpEndpointDestinationConfiguration")
                    .cloned()
                    .unwrap_or_default();
                check_http_destination(&mut req, &config)?;
                (config, DestinationKind::HttpEndpoint)
            }
            [
                field @ ("AmazonopensearchserviceDestinationConfiguration"
                | "ElasticsearchDestinationConfiguration"),
            ] => {
                let config = map.get(*field).cloned().unwrap_or_default();
                check_search_destination(&mut req, &config, &lower_first(field))?;
                let kind = if field.starts_with("Elasticsearch") {
                    DestinationKind::Elasticsearch
                } else {
                    DestinationKind::OpenSearch
                };
                (config, kind)
            }
            ["RedshiftDestinationConfiguration"] => {
                let config = map
                    .get("RedshiftDestinationConfiguration")
                    .cloned()
                    .unwrap_or_default();
                check_redshift_destination(&mut req, &config, "redshiftDestinationConfiguration")?;
                (config, DestinationKind::Redshift)
            }
            ["SplunkDestinationConfiguration"] => {
                let config = map
                    .get("SplunkDestinationConfiguration")
                    .cloned()
                    .unwrap_or_default();
                check_splunk_destination(&mut req, &config, "splunkDestinationConfiguration")?;
                (config, DestinationKind::Splunk)
            }
            [field] => {
                req.finish()?;
                return Err(invalid_argument(format!(
                    "{field}: this Runnel version delivers to S3 (ExtendedS3DestinationConfiguration), HTTP endpoints, OpenSearch or Elasticsearch clusters, Splunk and Redshift (on PostgreSQL)."
                )));
            }
            [] => {
                req.finish()?;
                return Err(invalid_argument(
                    "Exactly one destination configuration must be given.",
                ));
            }
            _ => {
                req.finish()?;
                return Err(invalid_argument(format!(
                    "Only one destination configuration may be given; found {}.",
                    given.join(", ")
                )));
            }
        };
        req.finish()?;
        let arn = self.firehose.create(CreateSpec {
            name,
            stream_type,
            destination,
            destination_kind,
            source,
            encryption,
            tags: tags.into_iter().collect(),
        })?;
        Ok(ok(json!({ "DeliveryStreamARN": arn })))
    }

    fn describe(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        req.int_range("Limit", "limit", 1, 10_000)?;
        req.finish()?;
        let meta = self.firehose.describe(&name)?;
        let arn = self.firehose.arn(&name);
        Ok(ok(json!({
            "DeliveryStreamDescription": describe::description(&meta, &arn),
        })))
    }

    fn list(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let limit = req.int_range("Limit", "limit", 1, 10_000)?.unwrap_or(10);
        let stream_type = req.opt_str("DeliveryStreamType")?;
        let after = req.opt_str("ExclusiveStartDeliveryStreamName")?;
        if let Some(after) = &after {
            check_stream_name(&mut req, after, "exclusiveStartDeliveryStreamName");
        }
        req.finish()?;
        let (names, more) = self.firehose.list(
            stream_type.as_deref(),
            after.as_deref(),
            usize::try_from(limit).unwrap_or(10),
        );
        Ok(ok(json!({
            "DeliveryStreamNames": names,
            "HasMoreDeliveryStreams": more,
        })))
    }

    fn delete(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        req.opt_bool("AllowForceDelete")?;
        req.finish()?;
        self.firehose.delete(&name)?;
        Ok(ok(json!({})))
    }

    fn update_destination(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map.clone());
        let name = stream_name(&mut req)?;
        let version = req.str_len(
            "CurrentDeliveryStreamVersionId",
            "currentDeliveryStreamVersionId",
            1,
            50,
        )?;
        if let Some(v) = &version
            && !v.is_empty()
            && !v.bytes().all(|b| b.is_ascii_digit())
        {
            req.problem(
                Some(v),
                "currentDeliveryStreamVersionId",
                "Member must satisfy regular expression pattern: [0-9]+",
            );
        }
        let destination_id = req.str_len("DestinationId", "destinationId", 1, 100)?;
        const UPDATES: [&str; 7] = [
            "RedshiftDestinationUpdate",
            "ExtendedS3DestinationUpdate",
            "S3DestinationUpdate",
            "HttpEndpointDestinationUpdate",
            "AmazonopensearchserviceDestinationUpdate",
            "ElasticsearchDestinationUpdate",
            "SplunkDestinationUpdate",
        ];
        let update = UPDATES.iter().find_map(|field| {
            map.get(*field)
                .filter(|v| !v.is_null())
                .map(|v| (*field, v.clone()))
        });
        let other = map
            .keys()
            .find(|key| key.ends_with("DestinationUpdate") && !UPDATES.contains(&key.as_str()));
        req.finish()?;
        if let Some(other) = other {
            return Err(invalid_argument(format!(
                "{other}: this Runnel version delivers to S3 only."
            )));
        }
        let Some((field, update)) = update else {
            return Err(invalid_argument(
                "A destination update (ExtendedS3DestinationUpdate) must be given.",
            ));
        };
        let mut check = Req::new(Map::new());
        if field == "HttpEndpointDestinationUpdate" {
            check_http_destination(&mut check, &update)?;
        } else if field == "RedshiftDestinationUpdate" {
            check_redshift_destination(&mut check, &update, "redshiftDestinationUpdate")?;
        } else if field == "SplunkDestinationUpdate" {
            check_splunk_destination(&mut check, &update, "splunkDestinationUpdate")?;
        } else if field.ends_with("searchserviceDestinationUpdate")
            || field == "ElasticsearchDestinationUpdate"
        {
            check_search_destination(&mut check, &update, &lower_first(field))?;
        } else {
            check_s3_destination(&mut check, &update, &lower_first(field))?;
        }
        check.finish()?;
        self.firehose.update_destination(
            &name,
            &version.unwrap_or_default(),
            &destination_id.unwrap_or_default(),
            &update,
        )?;
        Ok(ok(json!({})))
    }

    fn encryption(&self, map: Map<String, Value>, start: bool) -> Result<Response, AwsError> {
        let mut req = Req::new(map.clone());
        let name = stream_name(&mut req)?;
        let encryption = if start {
            read_encryption(&mut req, &map)?.or(Some(Encryption {
                key_type: "AWS_OWNED_CMK".into(),
                key_arn: None,
            }))
        } else {
            None
        };
        req.finish()?;
        self.firehose.set_encryption(&name, encryption)?;
        Ok(ok(json!({})))
    }

    fn tag(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        if !req.has("Tags") {
            req.problem(None, "tags", "Member must not be null");
        }
        let tags = read_tags(&mut req, "Tags", "tags")?;
        req.finish()?;
        self.firehose.tag(&name, tags)?;
        Ok(ok(json!({})))
    }

    fn untag(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        let keys = req.opt_str_list("TagKeys")?;
        match &keys {
            None => req.problem(None, "tagKeys", "Member must not be null"),
            Some(keys) if keys.is_empty() || keys.len() > 50 => req.problem(
                Some(&format!("{} keys", keys.len())),
                "tagKeys",
                "Member must have length between 1 and 50",
            ),
            Some(_) => {}
        }
        req.finish()?;
        self.firehose.untag(&name, &keys.unwrap_or_default())?;
        Ok(ok(json!({})))
    }

    fn list_tags(&self, map: Map<String, Value>) -> Result<Response, AwsError> {
        let mut req = Req::new(map);
        let name = stream_name(&mut req)?;
        let limit = req.int_range("Limit", "limit", 1, 50)?.unwrap_or(50);
        let after = req.opt_str("ExclusiveStartTagKey")?;
        req.finish()?;
        let meta = self.firehose.describe(&name)?;
        let mut tags = meta
            .tags
            .iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|after| *key > after));
        let page: Vec<Value> = tags
            .by_ref()
            .take(usize::try_from(limit).unwrap_or(50))
            .map(|(key, value)| json!({"Key": key, "Value": value}))
            .collect();
        Ok(ok(json!({
            "Tags": page,
            "HasMoreTags": tags.next().is_some(),
        })))
    }
}

/// `DeliveryStreamEncryptionConfigurationInput`, checked as AWS checks it.
fn read_encryption(
    req: &mut Req,
    map: &Map<String, Value>,
) -> Result<Option<Encryption>, AwsError> {
    let Some(input) = map
        .get("DeliveryStreamEncryptionConfigurationInput")
        .filter(|v| !v.is_null())
    else {
        return Ok(None);
    };
    let at = "deliveryStreamEncryptionConfigurationInput";
    let key_type = input.get("KeyType").and_then(Value::as_str);
    let key_arn = input
        .get("KeyARN")
        .and_then(Value::as_str)
        .map(str::to_string);
    match key_type {
        None => req.problem(None, &format!("{at}.keyType"), "Member must not be null"),
        Some("AWS_OWNED_CMK" | "CUSTOMER_MANAGED_CMK") => {}
        Some(other) => req.problem(
            Some(other),
            &format!("{at}.keyType"),
            "Member must satisfy enum value set: [AWS_OWNED_CMK, CUSTOMER_MANAGED_CMK]",
        ),
    }
    match (key_type, &key_arn) {
        (Some("CUSTOMER_MANAGED_CMK"), None) => {
            return Err(invalid_argument(
                "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.",
            ));
        }
        (Some("AWS_OWNED_CMK"), Some(_)) => {
            return Err(invalid_argument(
                "KeyARN must not be given when KeyType is AWS_OWNED_CMK.",
            ));
        }
        _ => {}
    }
    Ok(Some(Encryption {
        key_type: key_type.unwrap_or("AWS_OWNED_CMK").to_string(),
        key_arn,
    }))
}

fn lower_first(field: &str) -> String {
    let mut chars = field.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn check_stream_name(req: &mut Req, name: &str, at: &str) {
    req.check_len(name, at, 1, 64);
    if !name.is_empty()
        && !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        req.problem(
            Some(name),
            at,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        );
    }
}

/// `DeliveryStreamName`, checked; a missing one is reported with the rest.
fn stream_name(req: &mut Req) -> Result<String, AwsError> {
    let name = req.opt_str("DeliveryStreamName")?;
    match &name {
        None => req.problem(None, "deliveryStreamName", "Member must not be null"),
        Some(name) => check_stream_name(req, name, "deliveryStreamName"),
    }
    Ok(name.unwrap_or_default())
}

/// A `[{Key, Value}]` tag list with AWS's bounds.
fn read_tags(req: &mut Req, field: &str, at: &str) -> Result<Vec<(String, String)>, AwsError> {
    let Some(items) = req.opt_list(field)?.cloned() else {
        return Ok(Vec::new());
    };
    if items.is_empty() || items.len() > 50 {
        req.problem(
            Some(&format!("{} tags", items.len())),
            at,
            "Member must have length between 1 and 50",
        );
    }
    let mut tags = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = item.get("Key").and_then(Value::as_str);
        let value = item.get("Value").and_then(Value::as_str).unwrap_or("");
        match key {
            None => req.problem(
                None,
                &format!("{at}.{}.member.key", i + 1),
                "Member must not be null",
            ),
            Some(key) => {
                req.check_len(key, &format!("{at}.{}.member.key", i + 1), 1, 128);
                req.check_len(value, &format!("{at}.{}.member.value", i + 1), 0, 256);
                tags.push((key.to_string(), value.to_string()));
            }
        }
    }
    Ok(tags)
}

/// The constraints botocore's model puts on a Splunk destination.
fn check_splunk_destination(req: &mut Req, config: &Value, at: &str) -> Result<(), AwsError> {
    check_bounds(
        req,
        config,
        at,
        &[
            (None, "HECAcknowledgmentTimeoutInSeconds", 180, 600),
            (Some("RetryOptions"), "DurationInSeconds", 0, 7200),
            (Some("BufferingHints"), "SizeInMBs", 1, 5),
            (Some("BufferingHints"), "IntervalInSeconds", 0, 60),
        ],
    );
    check_backup(req, config, at)
}

/// The constraints botocore's model puts on a Redshift destination.
fn check_redshift_destination(req: &mut Req, config: &Value, at: &str) -> Result<(), AwsError> {
    if let Some(password) = config.get("Password").and_then(Value::as_str) {
        req.check_len(password, &format!("{at}.password"), 6, 512);
    }
    if let Some(user) = config.get("Username").and_then(Value::as_str) {
        req.check_len(user, &format!("{at}.username"), 1, 512);
    }
    check_bounds(
        req,
        config,
        at,
        &[(Some("RetryOptions"), "DurationInSeconds", 0, 7200)],
    );
    check_backup(req, config, at)
}

/// A `(parent, field, min, max)` bound on an integer field: reported as
/// AWS words it, at `<at>.<parent>.<field>` in lower camel case.
type Bound = (Option<&'static str>, &'static str, i64, i64);

fn check_bounds(req: &mut Req, config: &Value, at: &str, bounds: &[Bound]) {
    for (parent, field, min, max) in bounds {
        let holder = match parent {
            Some(parent) => config.get(*parent),
            None => Some(config),
        };
        if let Some(v) = holder.and_then(|h| h.get(*field)).and_then(Value::as_i64)
            && (v < *min || v > *max)
        {
            let path = match parent {
                Some(parent) => format!("{at}.{}.{}", lower_first(parent), lower_first(field)),
                None => format!("{at}.{}", lower_first(field)),
            };
            req.problem(
                Some(&v.to_string()),
                &path,
                &format!("Member must have value between {min} and {max}"),
            );
        }
    }
}

/// The backup bucket every non-S3 destination names.
fn check_backup(req: &mut Req, config: &Value, at: &str) -> Result<(), AwsError> {
    match config.get("S3Configuration") {
        Some(s3) => check_s3_destination(req, s3, &format!("{at}.s3Configuration")),
        None => Ok(()),
    }
}

/// The constraints botocore's model puts on an OpenSearch or
/// Elasticsearch destination.
fn check_search_destination(req: &mut Req, config: &Value, at: &str) -> Result<(), AwsError> {
    if let Some(index) = config.get("IndexName").and_then(Value::as_str) {
        req.check_len(index, &format!("{at}.indexName"), 1, 80);
    }
    check_bounds(
        req,
        config,
        at,
        &[
            (Some("BufferingHints"), "SizeInMBs", 1, 100),
            (Some("BufferingHints"), "IntervalInSeconds", 0, 900),
            (Some("RetryOptions"), "DurationInSeconds", 0, 7200),
        ],
    );
    check_backup(req, config, at)
}

/// The constraints botocore's model puts on an HTTP endpoint destination.
fn check_http_destination(req: &mut Req, config: &Value) -> Result<(), AwsError> {
    let at = "httpEndpointDestinationConfiguration";
    if let Some(endpoint) = config.get("EndpointConfiguration") {
        match endpoint.get("Url").and_then(Value::as_str) {
            None => req.problem(
                None,
                &format!("{at}.endpointConfiguration.url"),
                "Member must not be null",
            ),
            Some(url) => req.check_len(url, &format!("{at}.endpointConfiguration.url"), 1, 1000),
        }
    }
    check_bounds(
        req,
        config,
        at,
        &[
            (Some("BufferingHints"), "SizeInMBs", 1, 64),
            (Some("BufferingHints"), "IntervalInSeconds", 0, 900),
            (Some("RetryOptions"), "DurationInSeconds", 0, 7200),
        ],
    );
    check_backup(req, config, at)
}

/// The constraints botocore's model puts on an S3 destination's fields.
fn check_s3_destination(req: &mut Req, config: &Value, at: &str) -> Result<(), AwsError> {
    let Ok(fields) = Req::from_value(config) else {
        return Err(codec::serialization_error(format!(
            "{at} must be an object"
        )));
    };
    let role = fields.opt_str("RoleARN")?;
    let bucket = fields.opt_str("BucketARN")?;
    if !at.ends_with("Update") {
        if role.is_none() {
            req.problem(None, &format!("{at}.roleARN"), "Member must not be null");
        }
        if bucket.is_none() {
            req.problem(None, &format!("{at}.bucketARN"), "Member must not be null");
        }
    }
    if let Some(bucket) = &bucket {
        req.check_len(bucket, &format!("{at}.bucketARN"), 1, 2048);
    }
    for (field, name, max) in [
        ("Prefix", "prefix", 1024),
        ("ErrorOutputPrefix", "errorOutputPrefix", 1024),
    ] {
        if let Some(text) = fields.opt_str(field)? {
            req.check_len(&text, &format!("{at}.{name}"), 0, max);
        }
    }
    if let Some(hints) = fields.opt_object("BufferingHints")? {
        for (field, name, min, max) in [
            ("SizeInMBs", "sizeInMBs", 1, 128),
            ("IntervalInSeconds", "intervalInSeconds", 0, 900),
        ] {
            let at = format!("{at}.bufferingHints.{name}");
            match hints.opt_int(field)? {
                Some(v) if v < min => req.problem(
                    Some(&v.to_string()),
                    &at,
                    &format!("Member must have value greater than or equal to {min}"),
                ),
                Some(v) if v > max => req.problem(
                    Some(&v.to_string()),
                    &at,
                    &format!("Member must have value less than or equal to {max}"),
                ),
                _ => {}
            }
        }
    }
    if let Some(format) = fields.opt_str("CompressionFormat")?
        && !["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"].contains(&format.as_str())
    {
        req.problem(
            Some(&format),
            &format!("{at}.compressionFormat"),
            "Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]",
        );
    }
    Ok(())
}
