//! Which body encoding a request speaks, so errors answer in kind.

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `application/x-amz-json-1.0` / `-1.1`: what boto3 and the aws CLI send.
    Json,
    /// `application/x-amz-cbor-1.1`: what the Java SDK and the KCL send.
    Cbor,
}

impl Protocol {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type.starts_with("application/x-amz-cbor") {
            Protocol::Cbor
        } else {
            Protocol::Json
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Json => "application/x-amz-json-1.1",
            Protocol::Cbor => "application/x-amz-cbor-1.1",
        }
    }
}
