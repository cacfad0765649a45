//! Another Kinesis endpoint (`'aws.endpoint'`: AWS itself, kinesis-local,
//! another Runnel) through its API: JSON 1.1 POSTs, SigV4-signed when
//! credentials are known, retried with backoff while the endpoint
//! throttles or fails transiently.

pub mod sigv4;

use std::time::Duration;

use serde_json::{Value, json};
pub use sigv4::Credentials;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::ConnectorError;
use crate::options::Options;

/// The AWS JSON APIs a table can reach on another endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Kinesis,
    Firehose,
    /// REST-JSON: operations are paths, not targets.
    Video,
}

impl Api {
    fn target_prefix(self) -> &'static str {
        match self {
            Api::Kinesis => "Kinesis_20131202",
            Api::Firehose => "Firehose_20150804",
            Api::Video => "",
        }
    }

    /// The SigV4 service name.
    fn service(self) -> &'static str {
        match self {
            Api::Kinesis => "kinesis",
            Api::Firehose => "firehose",
            Api::Video => "kinesisvideo",
        }
    }
}
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// GetRecords answers up to 10 MiB of records, base64 in JSON.
const MAX_RESPONSE: u64 = 64 << 20;
const ATTEMPTS: u32 = 10;
/// A connection that fails is more often a wrong endpoint than a passing
/// fault: fewer tries, so a job is refused in a fraction of a second.
const TRANSPORT_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The endpoint's own error: its `__type` (without a namespace) and
    /// message.
    #[error("{kind}: {message}")]
    Api { kind: String, message: String },
    #[error("{0}")]
    Transport(String),
    #[error("unreadable answer: {0}")]
    Answer(String),
}

impl RemoteError {
    pub fn kind(&self) -> &str {
        match self {
            RemoteError::Api { kind, .. } => kind,
            _ => "",
        }
    }

    /// How many times a call that fails so is tried in all.
    fn attempts(&self) -> u32 {
        match self {
            RemoteError::Transport(_) => TRANSPORT_ATTEMPTS,
            _ => ATTEMPTS,
        }
    }

    fn retryable(&self, status: u16) -> bool {
        match self {
            RemoteError::Api { kind, .. } => {
                status >= 500
                    || matches!(
                        kind.as_str(),
                        "ProvisionedThroughputExceededException"
                            | "LimitExceededException"
                            | "ThrottlingException"
                            | "KMSThrottlingException"
                            | "InternalFailure"
                            | "ServiceUnavailable"
                            | "ServiceUnavailableException"
                    )
            }
            RemoteError::Transport(_) => true,
            RemoteError::Answer(_) => false,
        }
    }
}

pub struct RemoteKinesis {
    api: Api,
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    region: String,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for RemoteKinesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKinesis")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl RemoteKinesis {
    /// The endpoint, region and credentials a table's options name:
    /// `aws.credentials.provider` `BASIC` takes the `basic.*` keys; `AUTO`
    /// (the default) and `ENV_VAR` the standard AWS environment variables.
    /// Without any, requests go unsigned (a Runnel server takes them).
    pub fn from_options(
        endpoint: &str,
        region: &str,
        options: &Options,
    ) -> Result<Self, ConnectorError> {
        Self::for_api(Api::Kinesis, endpoint, region, options)
    }

    /// `from_options` for another of the AWS JSON APIs.
    pub fn for_api(
        api: Api,
        endpoint: &str,
        region: &str,
        options: &Options,
    ) -> Result<Self, ConnectorError> {
        let provider = options
            .get("aws.credentials.provider")
            .unwrap_or("AUTO")
            .to_ascii_uppercase();
        let credentials = match provider.as_str() {
            "BASIC" => {
                let key = |name: &str| {
                    options.get(name).map(str::to_string).ok_or_else(|| {
                        ConnectorError::Option(format!(
                            "'aws.credentials.provider' = 'BASIC' needs '{name}'"
                        ))
                    })
                };
                Some(Credentials {
                    access_key_id: key("aws.credentials.basic.accesskeyid")?,
                    secret_access_key: key("aws.credentials.basic.secretkey")?,
                    session_token: None,
                })
            }
            "AUTO" | "ENV_VAR" => match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(access_key_id), Ok(secret_access_key)) => Some(Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
                }),
                _ if provider == "ENV_VAR" => {
                    return Err(ConnectorError::Option(
                        "'aws.credentials.provider' = 'ENV_VAR' needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into(),
                    ));
                }
                _ => None,
            },
            other => {
                return Err(ConnectorError::Option(format!(
                    "option 'aws.credentials.provider' must be AUTO, BASIC or ENV_VAR here, got '{other}'"
                )));
            }
        };
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .ok_or_else(|| {
                ConnectorError::Option(format!(
                    "option 'aws.endpoint' must be an http:// or https:// URL, got '{endpoint}'"
                ))
            })?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let trust_all = options.bool("aws.trust.all.certificates", false)?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
            .disable_verification(trust_all)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build()
            .into();
        Ok(RemoteKinesis {
            api,
            agent,
            endpoint,
            host,
            region: region.to_string(),
            credentials,
        })
    }

    /// One operation, retried with backoff while the endpoint throttles
    /// or fails transiently, at most `RemoteError::attempts` times.
    pub fn call(&self, operation: &str, body: &Value) -> Result<Value, RemoteError> {
        let body = body.to_string();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.call_once(operation, body.as_bytes()) {
                Ok(value) => return Ok(value),
                Err((status, error)) if error.retryable(status) && attempt < error.attempts() => {
                    tracing::debug!(%operation, %error, attempt, "kinesis endpoint: retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err((_, error)) => return Err(error),
            }
        }
    }

    fn call_once(&self, operation: &str, body: &[u8]) -> Result<Value, (u16, RemoteError)> {
        let target = format!("{}.{operation}", self.api.target_prefix());
        let (status, text) = self.send_once("/", Some(&target), CONTENT_TYPE, body)?;
        answer(status, &text)
    }

    /// A REST-JSON operation (Kinesis Video's `/listFragments`, ...): the
    /// answer's bytes, which are media for some operations. Retried as
    /// `call` is.
    pub fn post(&self, path: &str, body: &Value) -> Result<Vec<u8>, RemoteError> {
        let body = body.to_string();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self
                .send_once(path, None, "application/json", body.as_bytes())
                .and_then(|(status, bytes)| {
                    if (200..300).contains(&status) {
                        Ok(bytes)
                    } else {
                        answer(status, &bytes).map(|_| bytes)
                    }
                });
            match result {
                Ok(bytes) => return Ok(bytes),
                Err((status, error)) if error.retryable(status) && attempt < error.attempts() => {
                    tracing::debug!(%path, %error, attempt, "endpoint: retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err((_, error)) => return Err(error),
            }
        }
    }

    fn send_once(
        &self,
        path: &str,
        target: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), (u16, RemoteError)> {
        let mut request = self
            .agent
            .post(&format!("{}{path}", self.endpoint))
            .header("content-type", content_type);
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        if let Some(credentials) = &self.credentials {
            let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
            for (name, value) in sigv4::sign(
                credentials,
                &self.region,
                self.api.service(),
                &self.host,
                path,
                target,
                content_type,
                body,
                &amz_date,
            ) {
                request = request.header(name, value);
            }
        }
        let mut response = request
            .send(body)
            .map_err(|e| (0, RemoteError::Transport(e.to_string())))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| (status, RemoteError::Transport(e.to_string())))?;
        Ok((status, text))
    }
}

/// A JSON answer, or the endpoint's error from it.
fn answer(status: u16, text: &[u8]) -> Result<Value, (u16, RemoteError)> {
    let value: Value = if text.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(text).map_err(|e| {
            (
                status,
                RemoteError::Answer(format!(
                    "HTTP {status}, not JSON ({e}): {}",
                    String::from_utf8_lossy(&text[..text.len().min(200)])
                )),
            )
        })?
    };
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let kind = value
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Err((status, RemoteError::Api { kind, message }))
}
