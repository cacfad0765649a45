//! The Splunk destination: records sent to the HTTP Event Collector (the
//! raw or event endpoint, `Authorization: Splunk <token>`, a channel per
//! delivery stream), each request counted as delivered only once the
//! indexer acknowledges its `ackId` within `HECAcknowledgmentTimeoutInSeconds`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{FirehoseError, Result};

#[derive(Debug, Clone)]
pub struct SplunkSettings {
    /// The HEC base URL.
    pub endpoint: String,
    pub raw: bool,
    pub token: String,
    pub ack_timeout: Duration,
    pub retry_ms: u64,
    /// `AllEvents`: every record also goes to the backup bucket.
    pub backup_all: bool,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

impl SplunkSettings {
    pub fn parse(config: &Value) -> Result<SplunkSettings> {
        let text = |field: &str| config.get(field).and_then(Value::as_str);
        let endpoint = text("HECEndpoint")
            .ok_or_else(|| invalid("HECEndpoint must be given."))?
            .trim_end_matches('/')
            .to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(invalid(format!(
                "HECEndpoint '{endpoint}' must be an https:// (or, in Runnel, http://) URL."
            )));
        }
        let raw = match text("HECEndpointType") {
            Some("Raw") => true,
            Some("Event") => false,
            other => {
                return Err(invalid(format!(
                    "HECEndpointType {other:?} is not one of Raw, Event."
                )));
            }
        };
        let token = text("HECToken")
            .ok_or_else(|| invalid("HECToken must be given."))?
            .to_string();
        let backup_all = match text("S3BackupMode") {
            None | Some("FailedEventsOnly") => false,
            Some("AllEvents") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode '{other}' is not one of FailedEventsOnly, AllEvents."
                )));
            }
        };
        let seconds =
            |value: Option<&Value>, default: u64| value.and_then(Value::as_u64).unwrap_or(default);
        Ok(SplunkSettings {
            endpoint,
            raw,
            token,
            ack_timeout: Duration::from_secs(seconds(
                config.get("HECAcknowledgmentTimeoutInSeconds"),
                180,
            )),
            retry_ms: seconds(
                config
                    .get("RetryOptions")
                    .and_then(|r| r.get("DurationInSeconds")),
                3600,
            ) * 1000,
            backup_all,
        })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn post(
    agent: &ureq::Agent,
    settings: &SplunkSettings,
    url: &str,
    channel: &str,
    body: &[u8],
) -> std::result::Result<Value, String> {
    let mut response = agent
        .post(url)
        .header("Authorization", format!("Splunk {}", settings.token))
        .header("X-Splunk-Request-Channel", channel)
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "HEC answered HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    serde_json::from_str(&text).map_err(|e| format!("HEC's answer is not JSON: {e}"))
}

/// Sends `records` as one request and waits for the indexer's
/// acknowledgement; Err says why they do not count as delivered.
pub fn send(
    settings: &SplunkSettings,
    channel: &str,
    records: &[Vec<u8>],
) -> std::result::Result<(), String> {
    let agent = agent();
    let path = if settings.raw { "raw" } else { "event" };
    let body = records.concat();
    let answer = post(
        &agent,
        settings,
        &format!("{}/services/collector/{path}", settings.endpoint),
        channel,
        &body,
    )?;
    if answer.get("code").and_then(Value::as_i64) != Some(0) {
        return Err(format!("HEC refused the events: {answer}"));
    }
    let Some(ack) = answer.get("ackId").and_then(Value::as_u64) else {
        return Err(
            "HEC answered without an ackId: indexer acknowledgement must be on for the token"
                .into(),
        );
    };
    let deadline = Instant::now() + settings.ack_timeout;
    let ack_url = format!("{}/services/collector/ack", settings.endpoint);
    let request = json!({"acks": [ack]}).to_string();
    while Instant::now() < deadline {
        let status = post(&agent, settings, &ack_url, channel, request.as_bytes())?;
        if status
            .get("acks")
            .and_then(|acks| acks.get(ack.to_string()))
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the indexer did not acknowledge ackId {ack} within {:?}",
        settings.ack_timeout
    ))
}
