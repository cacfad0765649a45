//! The one place AWS-shaped errors are made: `{"__type", "message"}` in the
//! request's own encoding, with the status AWS uses and a request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Protocol;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    /// The exception name clients match on, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            message,
        )
    }

    pub fn into_response(self, protocol: Protocol, request_id: &str) -> Response {
        let body = match protocol {
            Protocol::Json => serde_json::json!({ "__type": self.kind, "message": self.message })
                .to_string()
                .into_bytes(),
            Protocol::Cbor => {
                let value = ciborium::Value::Map(vec![
                    (
                        ciborium::Value::Text("__type".into()),
                        ciborium::Value::Text(self.kind.into()),
                    ),
                    (
                        ciborium::Value::Text("message".into()),
                        ciborium::Value::Text(self.message),
                    ),
                ]);
                let mut bytes = Vec::new();
                // Writing a small map into a Vec cannot fail.
                let _ = ciborium::into_writer(&value, &mut bytes);
                bytes
            }
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(protocol.content_type()),
        );
        if let Ok(kind) = HeaderValue::from_str(self.kind) {
            headers.insert("x-amzn-ErrorType", kind);
        }
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-RequestId", id);
        }
        response
    }
}
