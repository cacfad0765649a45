//! The control plane: streams, their retention, tags and data endpoint.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use runnel_video::{CreateStream, StreamMeta, StreamRef, VideoError};
use serde_json::{Map, Value, json};

use super::{Api, blocking, invalid, seconds, stream_ref};
use crate::aws::request::{NAME_PATTERN, Req};
use crate::aws::token::{PageToken, TOKEN_TTL_MS};
use crate::aws::{AwsError, codec};

/// Kinesis Video's limit on tags per stream.
const MAX_TAGS: usize = 50;

const API_NAMES: &[&str] = &[
    "PUT_MEDIA",
    "GET_MEDIA",
    "LIST_FRAGMENTS",
    "GET_MEDIA_FOR_FRAGMENT_LIST",
    "GET_HLS_STREAMING_SESSION_URL",
    "GET_DASH_STREAMING_SESSION_URL",
    "GET_CLIP",
    "GET_IMAGES",
];

fn ok(value: Value) -> Response {
    codec::json_ok(value.to_string())
}

fn info(meta: &StreamMeta) -> Value {
    let mut info = json!({
        "StreamName": meta.name,
        "StreamARN": meta.arn,
        "KmsKeyId": meta.kms_key_id,
        "Version": meta.version,
        "Status": "ACTIVE",
        "CreationTime": seconds(meta.created_ms),
        "DataRetentionInHours": meta.retention_hours,
    });
    if let Some(device) = &meta.device_name {
        info["DeviceName"] = json!(device);
    }
    if let Some(media_type) = &meta.media_type {
        info["MediaType"] = json!(media_type);
    }
    info
}

pub async fn handle(
    api: &Api,
    operation: &str,
    mut req: Req,
    // `scheme://host` of the request, which the URLs handed out are on.
    base: Option<String>,
) -> Result<Response, AwsError> {
    let video = api.video.clone();
    match operation {
        "CreateStream" => {
            let name = req.str_len("StreamName", "streamName", 1, 256)?;
            if let Some(name) = &name {
                req.check_name(name, "streamName");
            }
            let device_name = optional_len(&mut req, "DeviceName", "deviceName", 128)?;
            let media_type = optional_len(&mut req, "MediaType", "mediaType", 128)?;
            let kms_key_id = optional_len(&mut req, "KmsKeyId", "kmsKeyId", 2048)?;
            let retention = req.int_range(
                "DataRetentionInHours",
                "dataRetentionInHours",
                0,
                i64::from(u32::MAX),
            )?;
            let tags: BTreeMap<String, String> = req
                .opt_str_map("Tags")?
                .unwrap_or_default()
                .into_iter()
                .collect();
            req.finish()?;
            let name = name.unwrap_or_default();
            if tags.len() > MAX_TAGS {
                return Err(tags_exceeded());
            }
            let request = CreateStream {
                name,
                device_name,
                media_type,
                kms_key_id,
                retention_hours: u32::try_from(retention.unwrap_or(0)).unwrap_or(u32::MAX),
                tags,
            };
            let meta = blocking(move || video.create_stream(request)).await?;
            Ok(ok(json!({ "StreamARN": meta.arn })))
        }
        "DescribeStream" => {
            let stream = video.stream(&stream_ref(&mut req)?)?;
            Ok(ok(json!({ "StreamInfo": info(&stream.meta()) })))
        }
        "ListStreams" => list_streams(api, req),
        "DeleteStream" => {
            let arn = req.str_len("StreamARN", "streamARN", 1, 1024)?;
            let version = optional_len(&mut req, "CurrentVersion", "currentVersion", 64)?;
            req.finish()?;
            let reference = StreamRef::Arn(arn.unwrap_or_default());
            blocking(move || video.delete_stream(&reference, version.as_deref())).await?;
            Ok(ok(json!({})))
        }
        "UpdateStream" => {
            let reference = stream_ref(&mut req)?;
            let version = req.str_len("CurrentVersion", "currentVersion", 1, 64)?;
            let device_name = optional_len(&mut req, "DeviceName", "deviceName", 128)?;
            let media_type = optional_len(&mut req, "MediaType", "mediaType", 128)?;
            req.finish()?;
            blocking(move || {
                video.update(
                    &reference,
                    version.as_deref(),
                    |meta| {
                        if device_name.is_some() {
                            meta.device_name = device_name;
                        }
                        if media_type.is_some() {
                            meta.media_type = media_type;
                        }
                        Ok(())
                    },
                    true,
                )
            })
            .await?;
            Ok(ok(json!({})))
        }
        "UpdateDataRetention" => {
            let reference = stream_ref(&mut req)?;
            let version = req.str_len("CurrentVersion", "currentVersion", 1, 64)?;
            let operation = req.opt_str("Operation")?;
            let change = req.int_range(
                "DataRetentionChangeInHours",
                "dataRetentionChangeInHours",
                1,
                i64::from(u32::MAX),
            )?;
            match operation.as_deref() {
                Some("INCREASE_DATA_RETENTION" | "DECREASE_DATA_RETENTION") => {}
                other => req.problem(
                    other,
                    "operation",
                    "Member must satisfy enum value set: [INCREASE_DATA_RETENTION, DECREASE_DATA_RETENTION]",
                ),
            }
            if change.is_none() {
                req.problem(
                    None,
                    "dataRetentionChangeInHours",
                    "Member must not be null",
                );
            }
            req.finish()?;
            let increase = operation.as_deref() == Some("INCREASE_DATA_RETENTION");
            let change = change.unwrap_or(0);
            blocking(move || {
                video.update(
                    &reference,
                    version.as_deref(),
                    |meta| {
                        let hours = i64::from(meta.retention_hours) + if increase { change } else { -change };
                        if !(0..=i64::from(runnel_video::MAX_RETENTION_HOURS)).contains(&hours) {
                            return Err(VideoError::InvalidArgument(format!(
                                "The data retention would be {hours} hours; it must be between 0 and {}",
                                runnel_video::MAX_RETENTION_HOURS
                            )));
                        }
                        meta.retention_hours = hours as u32;
                        Ok(())
                    },
                    true,
                )
            })
            .await?;
            Ok(ok(json!({})))
        }
        "GetDataEndpoint" => {
            let api_name = req.opt_str("APIName")?;
            if !api_name.as_deref().is_some_and(|n| API_NAMES.contains(&n)) {
                req.problem(
                    api_name.as_deref(),
                    "aPIName",
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        API_NAMES.join(", ")
                    ),
                );
            }
            let reference = stream_ref(&mut req)?;
            video.stream(&reference)?;
            let base = base.unwrap_or_else(|| "http://127.0.0.1:4567".into());
            Ok(ok(json!({ "DataEndpoint": base })))
        }
        "TagStream" => {
            let reference = stream_ref(&mut req)?;
            let tags = req.opt_str_map("Tags")?.unwrap_or_default();
            tag(api, reference, tags).await
        }
        "TagResource" => {
            let arn = req.str_len("ResourceARN", "resourceARN", 1, 1024)?;
            let mut tags = Vec::new();
            for item in req.opt_list("Tags")?.cloned().unwrap_or_default() {
                let tag = Req::from_owned(item)?;
                let key = tag.opt_str("Key")?.unwrap_or_default();
                let value = tag.opt_str("Value")?.unwrap_or_default();
                tags.push((key, value));
            }
            req.finish()?;
            tag(api, StreamRef::Arn(arn.unwrap_or_default()), tags).await
        }
        "UntagStream" | "UntagResource" => {
            let reference = if operation == "UntagResource" {
                let arn = req.str_len("ResourceARN", "resourceARN", 1, 1024)?;
                StreamRef::Arn(arn.unwrap_or_default())
            } else {
                stream_ref(&mut req)?
            };
            let keys = req.opt_str_list("TagKeyList")?.unwrap_or_default();
            if keys.is_empty() {
                req.problem(
                    None,
                    "tagKeyList",
                    "Member must have length greater than or equal to 1",
                );
            }
            req.finish()?;
            blocking(move || {
                video.update(
                    &reference,
                    None,
                    |meta| {
                        for key in &keys {
                            meta.tags.remove(key);
                        }
                        Ok(())
                    },
                    false,
                )
            })
            .await?;
            Ok(ok(json!({})))
        }
        "ListTagsForStream" | "ListTagsForResource" => {
            let reference = if operation == "ListTagsForResource" {
                let arn = req.str_len("ResourceARN", "resourceARN", 1, 1024)?;
                req.finish()?;
                StreamRef::Arn(arn.unwrap_or_default())
            } else {
                stream_ref(&mut req)?
            };
            let meta = video.stream(&reference)?.meta();
            let tags: Map<String, Value> = meta
                .tags
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Ok(ok(json!({ "Tags": tags })))
        }
        other => Err(AwsError::unknown_operation(format!(
            "Operation {other} is not supported by this endpoint"
        ))),
    }
}

async fn tag(
    api: &Api,
    reference: StreamRef,
    tags: Vec<(String, String)>,
) -> Result<Response, AwsError> {
    if tags.is_empty() {
        return Err(invalid("Tags must not be empty"));
    }
    let video = api.video.clone();
    blocking(move || {
        video.update(
            &reference,
            None,
            |meta| {
                let mut updated = meta.tags.clone();
                updated.extend(tags);
                if updated.len() > MAX_TAGS {
                    return Err(VideoError::LimitExceeded(String::new()));
                }
                meta.tags = updated;
                Ok(())
            },
            false,
        )
    })
    .await
    .map_err(|e| {
        if e.kind == "ClientLimitExceededException" {
            tags_exceeded()
        } else {
            e
        }
    })?;
    Ok(ok(json!({})))
}

fn tags_exceeded() -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "TagsPerResourceExceededLimitException",
        format!("A stream can have at most {MAX_TAGS} tags"),
    )
}

fn optional_len(
    req: &mut Req,
    field: &str,
    at: &str,
    max: usize,
) -> Result<Option<String>, AwsError> {
    let value = req.opt_str(field)?;
    if let Some(value) = &value {
        req.check_len(value, at, 1, max);
    }
    Ok(value)
}

fn list_streams(api: &Api, mut req: Req) -> Result<Response, AwsError> {
    let limit = req
        .int_range("MaxResults", "maxResults", 1, 10_000)?
        .unwrap_or(10_000) as usize;
    let token = optional_len(&mut req, "NextToken", "nextToken", 512)?;
    let condition = req.opt_object("StreamNameCondition")?;
    let prefix = match condition {
        Some(condition) => {
            let operator = condition.opt_str("ComparisonOperator")?;
            let value = condition.opt_str("ComparisonValue")?;
            if operator.as_deref().is_some_and(|o| o != "BEGINS_WITH") {
                req.problem(
                    operator.as_deref(),
                    "streamNameCondition.comparisonOperator",
                    "Member must satisfy enum value set: [BEGINS_WITH]",
                );
            }
            if let Some(value) = &value {
                req.check_len(value, "streamNameCondition.comparisonValue", 1, 256);
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                {
                    req.problem(
                        Some(value),
                        "streamNameCondition.comparisonValue",
                        &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
                    );
                }
            }
            value
        }
        None => None,
    };
    req.finish()?;
    let after = match &token {
        Some(text) => {
            let token = PageToken::decode(text)
                .ok_or_else(|| invalid("NextToken is not a token ListStreams issued"))?;
            if runnel_video::now_ms().saturating_sub(token.issued_ms) > TOKEN_TTL_MS {
                return Err(invalid("NextToken has expired"));
            }
            Some(token.after)
        }
        None => None,
    };
    let streams = api.video.list(prefix.as_deref());
    let page: Vec<&StreamMeta> = streams
        .iter()
        .filter(|m| after.as_ref().is_none_or(|a| m.name > *a))
        .take(limit)
        .collect();
    let mut out = json!({ "StreamInfoList": page.iter().map(|m| info(m)).collect::<Vec<_>>() });
    if let Some(last) = page.last()
        && streams.last().is_some_and(|l| l.name != last.name)
    {
        out["NextToken"] = json!(
            PageToken {
                stream: String::new(),
                after: last.name.clone(),
                issued_ms: runnel_video::now_ms(),
            }
            .encode()
        );
    }
    Ok(ok(out))
}
