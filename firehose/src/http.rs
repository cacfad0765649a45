//! The HTTP endpoint destination's request, as Firehose documents it: a
//! POST of `{"requestId", "timestamp", "records": [{"data": base64}]}`
//! with the `X-Amz-Firehose-*` headers, optionally GZIP-encoded. Only a
//! 200 whose body names the same `requestId` is success.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::model::HttpSettings;

const TIMEOUT: Duration = Duration::from_secs(180);

pub struct Request<'a> {
    pub request_id: &'a str,
    pub source_arn: &'a str,
    pub timestamp_ms: u64,
    pub records: &'a [Vec<u8>],
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

/// Sends one request; Err says why it did not count as delivered.
pub fn send(http: &HttpSettings, request: &Request<'_>) -> Result<(), String> {
    let body = json!({
        "requestId": request.request_id,
        "timestamp": request.timestamp_ms,
        "records": request.records.iter().map(|r| json!({"data": STANDARD.encode(r)})).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let body = if http.gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .map_err(|e| format!("compressing the request: {e}"))?
    } else {
        body
    };
    let mut call = agent()
        .post(&http.url)
        .header("Content-Type", "application/json")
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", request.request_id)
        .header("X-Amz-Firehose-Source-Arn", request.source_arn);
    if http.gzip {
        call = call.header("Content-Encoding", "gzip");
    }
    if let Some(key) = &http.access_key {
        call = call.header("X-Amz-Firehose-Access-Key", key);
    }
    if let Some(attributes) = &http.common_attributes {
        call = call.header("X-Amz-Firehose-Common-Attributes", attributes);
    }
    let mut response = call.send(&body[..]).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "the endpoint answered HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the endpoint answered 200 with a body that is not JSON ({e})"))?;
    match answer.get("requestId").and_then(Value::as_str) {
        Some(id) if id == request.request_id => Ok(()),
        other => Err(format!(
            "the endpoint answered 200 for request {} with requestId {other:?}",
            request.request_id
        )),
    }
}
