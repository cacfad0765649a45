//! What the commands that talk to a running server (`runnel streams`,
//! `runnel jobs`) share: an HTTP agent and the reading of its answers.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// An agent that hands back error statuses instead of failing on them.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A response's status, its text and that text as JSON (`Null` if it is
/// not JSON).
pub fn read(
    mut response: ureq::http::Response<ureq::Body>,
) -> anyhow::Result<(u16, String, Value)> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .context("reading the response")?;
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, text, value))
}
