//! What the commands that talk to a running server (`runnel streams`,
//! `runnel jobs`) share: an HTTP agent and the reading of its answers.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// An agent that hands back error statuses instead of failing on them;
/// `None`: no overall timeout (a stream of results).
pub fn agent(timeout: impl Into<Option<Duration>>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout.into())
        .tls_config(tls_config())
        .build()
        .into()
}

/// The system's TLS, trusting the platform's roots or, when
/// `AWS_CA_BUNDLE` (as the aws CLI reads it) or `RUNNEL_CA_BUNDLE` names a
/// PEM file, its certificates: a server's `--tls self-signed` one, say.
fn tls_config() -> ureq::tls::TlsConfig {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
    let builder = TlsConfig::builder().provider(TlsProvider::NativeTls);
    let bundle = ["RUNNEL_CA_BUNDLE", "AWS_CA_BUNDLE"]
        .iter()
        .find_map(|name| std::env::var_os(name).filter(|v| !v.is_empty()));
    let Some(path) = bundle else {
        return builder.build();
    };
    let certs: Vec<_> = match std::fs::read(&path) {
        Ok(pem) => ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
                _ => None,
            })
            .collect(),
        Err(error) => {
            eprintln!("warning: CA bundle {}: {error}", path.to_string_lossy());
            Vec::new()
        }
    };
    if certs.is_empty() {
        return builder.build();
    }
    builder
        .root_certs(RootCerts::new_with_certs(&certs))
        .build()
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

/// SigV4 headers (`authorization`, `x-amz-date`) for a request to a server
/// that checks signatures, when the environment holds a key
/// (`RUNNEL_ACCESS_KEY_ID`/`RUNNEL_SECRET_ACCESS_KEY`, else the `AWS_*`
/// pair, as the aws CLI reads them); none otherwise. `headers` are the
/// request's own (content type, target), which the signature covers.
pub fn signature_headers(
    method: &str,
    url: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Vec<(String, String)>> {
    use crate::auth::{header::Signed, sigv4};
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(access_key_id), Some(secret)) = (
        env("RUNNEL_ACCESS_KEY_ID").or_else(|| env("AWS_ACCESS_KEY_ID")),
        env("RUNNEL_SECRET_ACCESS_KEY").or_else(|| env("AWS_SECRET_ACCESS_KEY")),
    ) else {
        return Ok(Vec::new());
    };
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let uri: axum::http::Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
    let method: axum::http::Method = method.parse().context("invalid method")?;
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut map = axum::http::HeaderMap::new();
    let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    all.push(("host".into(), host));
    all.push(("x-amz-date".into(), amz_date.clone()));
    all.sort();
    for (name, value) in &all {
        map.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes())?,
            value.parse()?,
        );
    }
    let mut signed = Signed {
        access_key_id,
        scope_date: amz_date[..8].to_string(),
        region,
        service: service.to_string(),
        signed_headers: all.iter().map(|(n, _)| n.clone()).collect(),
        signature: String::new(),
        amz_date: amz_date.clone(),
        expires_seconds: None,
    };
    let arrived = sigv4::Arrived {
        method: &method,
        uri: &uri,
        headers: &map,
    };
    let canonical = sigv4::canonical_request(&arrived, &signed, &sigv4::sha256_hex(body));
    signed.signature = sigv4::signature(&secret, &signed, &canonical);
    Ok(vec![
        (
            "authorization".into(),
            format!(
                "{} Credential={}/{}, SignedHeaders={}, Signature={}",
                crate::auth::header::ALGORITHM,
                signed.access_key_id,
                signed.scope(),
                signed.signed_headers.join(";"),
                signed.signature
            ),
        ),
        ("x-amz-date".into(), amz_date),
    ])
}

pub fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

/// A Kinesis JSON 1.1 call (`Kinesis_20131202.<operation>`) to `endpoint`,
/// signed when the environment holds a key; the raw response, whatever its
/// status (SubscribeToShard's is an event stream).
pub fn kinesis_post(
    agent: &ureq::Agent,
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
    let target = format!("Kinesis_20131202.{operation}");
    let text = body.to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let mut request = agent.post(endpoint);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let signature = signature_headers("POST", endpoint, "kinesis", &headers, text.as_bytes())?;
    with_headers(request, &signature)
        .send(text)
        .with_context(|| format!("cannot reach {endpoint}"))
}
