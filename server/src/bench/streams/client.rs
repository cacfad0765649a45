//! Kinesis JSON 1.1 calls to any endpoint, SigV4-signed when the
//! environment holds a key (as the aws CLI signs).

use std::time::Duration;

use anyhow::bail;
use serde_json::Value;

pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
}

/// A call's outcome as the load tool counts it: an answer, a throttle, or
/// another error.
pub enum Answer {
    Ok(Value),
    Throttled,
    Failed(String),
}

impl Client {
    pub fn new(endpoint: &str) -> Client {
        Client {
            agent: crate::cli_http::agent(Duration::from_secs(60)),
            endpoint: endpoint.trim_end_matches('/').to_string(),
        }
    }

    pub fn call(&self, operation: &str, body: &Value) -> Answer {
        match self.send(operation, body) {
            Ok(response) => self.answer(response),
            Err(error) => Answer::Failed(format!("{error:#}")),
        }
    }

    /// A call that must succeed (setup and teardown).
    pub fn must(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        match self.call(operation, body) {
            Answer::Ok(value) => Ok(value),
            Answer::Throttled => bail!("{operation} was throttled"),
            Answer::Failed(message) => bail!("{operation} failed: {message}"),
        }
    }

    /// The raw response, for SubscribeToShard's event stream.
    pub fn send(
        &self,
        operation: &str,
        body: &Value,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        crate::cli_http::kinesis_post(&self.agent, &self.endpoint, operation, body)
    }

    fn answer(&self, response: ureq::http::Response<ureq::Body>) -> Answer {
        match crate::cli_http::read(response) {
            Ok((200, _, value)) => Answer::Ok(value),
            Ok((_, text, value)) => {
                let kind = value["__type"].as_str().unwrap_or_default();
                if kind.ends_with("ProvisionedThroughputExceededException")
                    || kind.ends_with("LimitExceededException")
                {
                    Answer::Throttled
                } else {
                    Answer::Failed(format!(
                        "{kind}: {}",
                        value["message"].as_str().unwrap_or(&text)
                    ))
                }
            }
            Err(error) => Answer::Failed(format!("{error:#}")),
        }
    }
}
