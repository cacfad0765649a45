//! A delivery stream's page: `GET /v1/console/firehose/{name}`, its
//! figures, buffer and where its failures go, refreshed every second; and
//! `GET /v1/console/firehose/{name}/objects`, the newest objects delivered
//! and failed, read when the figures say something was written.
//!
//! Runnel keeps no log of deliveries: the objects are read from the
//! bucket itself, which is a directory of the data dir unless Firehose
//! writes to a remote S3 endpoint (then the page says where to look).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runnel_firehose::{DeliveryStreamMeta, DestinationKind, FirehoseError};
use serde_json::{Value, json};

use super::{Console, error};

/// At most this many directory entries are looked at per listing, so a
/// bucket of millions of objects costs a bounded read.
const MAX_SCANNED: usize = 20_000;
/// The newest objects shown, of each kind.
const NEWEST: usize = 20;

/// Where a delivery stream writes: its bucket (the backup bucket for
/// destinations other than S3) and the error prefix as configured.
struct Target {
    kind: &'static str,
    bucket: Option<String>,
    prefix: Option<String>,
    error_prefix: Option<String>,
    size_bytes: u64,
    interval_seconds: u64,
}

fn target(meta: &DeliveryStreamMeta) -> Target {
    let destination = &meta.destination;
    let (kind, s3) = match meta.destination_kind {
        DestinationKind::ExtendedS3 => ("ExtendedS3", destination),
        DestinationKind::HttpEndpoint => ("HttpEndpoint", &destination["S3Configuration"]),
        DestinationKind::OpenSearch => ("OpenSearch", &destination["S3Configuration"]),
        DestinationKind::Elasticsearch => ("Elasticsearch", &destination["S3Configuration"]),
        DestinationKind::Splunk => ("Splunk", &destination["S3Configuration"]),
        DestinationKind::Redshift => ("Redshift", &destination["S3Configuration"]),
    };
    // Redshift stages through its bucket, so that bucket's hints buffer.
    let hints = match meta.destination_kind {
        DestinationKind::Redshift => &s3["BufferingHints"],
        _ => &destination["BufferingHints"],
    };
    let default_interval = match meta.destination_kind {
        DestinationKind::Splunk => 60,
        _ => 300,
    };
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Target {
        kind,
        bucket: s3["BucketARN"]
            .as_str()
            .and_then(bucket_of)
            .map(str::to_string),
        prefix: text(&s3["Prefix"]),
        error_prefix: text(&s3["ErrorOutputPrefix"]),
        size_bytes: hints["SizeInMBs"].as_u64().unwrap_or(5) * 1024 * 1024,
        interval_seconds: hints["IntervalInSeconds"]
            .as_u64()
            .unwrap_or(default_interval),
    }
}

/// `arn:aws:s3:::name` → `name`.
fn bucket_of(arn: &str) -> Option<&str> {
    arn.rsplit_once(":::")
        .map(|(_, name)| name)
        .filter(|name| !name.is_empty() && !name.contains(['/', '\\']) && *name != "..")
}

/// Where failed records go, as Firehose names it: the error prefix, or
/// the failure's kind (`processing-failed`, ...) and the hour.
fn error_location(target: &Target) -> Option<String> {
    let bucket = target.bucket.as_ref()?;
    Some(match &target.error_prefix {
        Some(prefix) => format!("s3://{bucket}/{prefix}"),
        None => format!("s3://{bucket}/<error-output-type>/yyyy/MM/dd/HH/"),
    })
}

fn meta_of(console: &Console, name: &str) -> Result<DeliveryStreamMeta, (StatusCode, String)> {
    console.firehose.describe(name).map_err(|e| match e {
        FirehoseError::NotFound(message) => (StatusCode::NOT_FOUND, message),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })
}

pub async fn figures(State(console): State<Arc<Console>>, Path(name): Path<String>) -> Response {
    let meta = match meta_of(&console, &name) {
        Ok(meta) => meta,
        Err((status, message)) => return error(status, message),
    };
    let figures = console
        .firehose
        .figures()
        .into_iter()
        .find(|(stream, _)| *stream == name)
        .map(|(_, figures)| figures)
        .unwrap_or_default();
    let target = target(&meta);
    Json(json!({
        "name": meta.name,
        "status": meta.status.as_str(),
        "destination": target.kind,
        "bucket": target.bucket,
        "prefix": target.prefix,
        "error_prefix": target.error_prefix,
        "error_output_location": error_location(&target),
        "buffer": {
            "bytes": figures.buffered_bytes,
            "size_bytes": target.size_bytes,
            "interval_seconds": target.interval_seconds,
        },
        "incoming_records": figures.incoming_records,
        "incoming_bytes": figures.incoming_bytes,
        "delivered_records": figures.delivered_records,
        "delivered_bytes": figures.delivered_bytes,
        "delivered_objects": figures.delivered_objects,
        "delivery_failures": figures.delivery_failures,
        "freshness_ms": figures.freshness_ms,
    }))
    .into_response()
}

pub async fn objects(State(console): State<Arc<Console>>, Path(name): Path<String>) -> Response {
    let meta = match meta_of(&console, &name) {
        Ok(meta) => meta,
        Err((status, message)) => return error(status, message),
    };
    let target = target(&meta);
    let Some(bucket) = target.bucket.clone() else {
        return Json(json!({"listed": false, "reason": "this destination has no bucket"}))
            .into_response();
    };
    if let Some(endpoint) = &console.s3_endpoint {
        return Json(json!({
            "listed": false,
            "reason": format!("objects are written to s3://{bucket} at {endpoint}"),
        }))
        .into_response();
    }
    let dir = console.firehose.bucket_root().join(&bucket);
    let listed = tokio::task::spawn_blocking(move || newest_objects(&dir, &target)).await;
    match listed {
        Ok(listing) => Json(listing).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

struct Object {
    key: String,
    size: u64,
    modified_ms: u64,
}

/// The newest objects under `dir`, delivered and failed apart.
fn newest_objects(dir: &FsPath, target: &Target) -> Value {
    let mut found = Vec::new();
    let mut scanned = 0usize;
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            scanned += 1;
            if scanned > MAX_SCANNED {
                break;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            // object_store writes `<key>#<n>` and renames it into place.
            let Some(key) = path
                .strip_prefix(dir)
                .ok()
                .and_then(|p| p.to_str())
                .filter(|key| kind.is_file() && !key.contains('#'))
            else {
                continue;
            };
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let modified_ms = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            found.push(Object {
                key: key.to_string(),
                size: metadata.len(),
                modified_ms,
            });
        }
    }
    found.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then(b.key.cmp(&a.key)));
    let (errors, delivered): (Vec<&Object>, Vec<&Object>) = found
        .iter()
        .partition(|o| is_error_key(&o.key, target.error_prefix.as_deref()));
    let show = |objects: Vec<&Object>| -> Vec<Value> {
        objects
            .into_iter()
            .take(NEWEST)
            .map(|o| json!({"key": o.key, "size": o.size, "modified_ms": o.modified_ms}))
            .collect()
    };
    json!({
        "listed": true,
        "bucket": target.bucket,
        "objects": found.len(),
        "truncated": scanned > MAX_SCANNED,
        "delivered": show(delivered),
        "errors": show(errors),
    })
}

/// Whether an object was written under the error prefix: its fixed
/// start when it has one, else a first folder named as Firehose names a
/// failure's kind (`processing-failed`, `http-endpoint-failed`, ...).
fn is_error_key(key: &str, error_prefix: Option<&str>) -> bool {
    let fixed = error_prefix
        .map(|prefix| prefix.split("!{").next().unwrap_or_default())
        .unwrap_or_default();
    if !fixed.is_empty() {
        return key.starts_with(fixed);
    }
    key.split('/')
        .next()
        .is_some_and(|first| first.ends_with("-failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_objects_are_told_by_the_fixed_start_of_the_error_prefix() {
        assert!(is_error_key(
            "errors/processing-failed/2024/x",
            Some("errors/")
        ));
        assert!(!is_error_key("data/2024/x", Some("errors/")));
        assert!(is_error_key(
            "oops/processing-failed/x",
            Some("oops/!{firehose:error-output-type}/")
        ));
        // No error prefix, or one starting with an expression: the kind.
        assert!(is_error_key("processing-failed/2024/01/01/00/x", None));
        assert!(is_error_key(
            "partitioning-failed/x",
            Some("!{firehose:error-output-type}/")
        ));
        assert!(!is_error_key("2024/01/01/00/x", None));
    }

    #[test]
    fn bucket_names_come_from_their_arn_and_never_leave_the_bucket_root() {
        assert_eq!(bucket_of("arn:aws:s3:::logs"), Some("logs"));
        assert_eq!(bucket_of("arn:aws:s3:::"), None);
        assert_eq!(bucket_of("arn:aws:s3:::.."), None);
        assert_eq!(bucket_of("arn:aws:s3:::a/../../etc"), None);
        assert_eq!(bucket_of("logs"), None);
    }

    #[test]
    fn defaults_fill_in_the_buffer_and_the_error_location() {
        let meta: DeliveryStreamMeta = serde_json::from_value(json!({
            "id": 1, "name": "d", "stream_type": "DirectPut", "status": "Active", "version": 1,
            "created_ms": 0, "updated_ms": 0, "tags": {},
            "destination": {"BucketARN": "arn:aws:s3:::b", "BufferingHints": {"SizeInMBs": 1}},
        }))
        .expect("meta");
        let target = target(&meta);
        assert_eq!(target.size_bytes, 1024 * 1024);
        assert_eq!(target.interval_seconds, 300);
        assert_eq!(
            error_location(&target).as_deref(),
            Some("s3://b/<error-output-type>/yyyy/MM/dd/HH/")
        );
    }
}
