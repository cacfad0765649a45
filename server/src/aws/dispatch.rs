//! Routes `X-Amz-Target: <Service>_<Version>.<Operation>` to the handler a
//! service registered for it, and REST operations (Kinesis Video's
//! `POST /createStream`, `/putMedia`, ...) by their path. A REST handler gets
//! the body as a stream: PutMedia's body has no end while a camera sends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use super::{AwsError, Protocol};
use crate::metrics::Metrics;

#[allow(
    dead_code,
    reason = "headers and request_id are part of the handler contract; no handler reads them yet"
)]
pub struct AwsRequest {
    pub protocol: Protocol,
    pub operation: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub request_id: String,
}

pub type Handler = Arc<
    dyn Fn(AwsRequest) -> Pin<Box<dyn Future<Output = Result<Response, AwsError>> + Send>>
        + Send
        + Sync,
>;

/// A REST operation's request: its body is read by the handler, as it
/// arrives.
#[allow(
    dead_code,
    reason = "query and request_id are part of the handler contract; no handler reads them yet"
)]
pub struct RestRequest {
    pub operation: &'static str,
    /// It came over TLS: URLs the answer hands out say `https`.
    pub over_tls: bool,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: axum::body::Body,
    pub request_id: String,
}

pub type RestHandler = Arc<
    dyn Fn(RestRequest) -> Pin<Box<dyn Future<Output = Result<Response, AwsError>> + Send>>
        + Send
        + Sync,
>;

/// A registered REST path: its service and operation, for metrics, and
/// its handler.
#[derive(Clone)]
struct RestRoute {
    service: &'static str,
    operation: &'static str,
    handler: RestHandler,
}

/// Services known by their target prefix, so metrics can name the service of
/// an unknown operation without echoing arbitrary client input as a label.
const SERVICES: &[(&str, &str)] = &[
    ("Kinesis_20131202", "streams"),
    ("Firehose_20150804", "firehose"),
    ("KinesisAnalytics_20180523", "analytics"),
];

#[derive(Default, Clone)]
pub struct AwsRouter {
    handlers: HashMap<String, Handler>,
    rest: HashMap<String, RestRoute>,
}

impl AwsRouter {
    /// Registers `handler` for `POST path`, e.g. `/putMedia` of
    /// `kinesisvideo`'s `PutMedia`.
    pub fn register_rest(
        &mut self,
        service: &'static str,
        path: &str,
        operation: &'static str,
        handler: RestHandler,
    ) {
        self.rest.insert(
            path.to_string(),
            RestRoute {
                service,
                operation,
                handler,
            },
        );
    }

    pub fn has_rest(&self, path: &str) -> bool {
        self.rest.contains_key(path)
    }

    /// Every registered REST path, for the auth layer to tell them apart.
    pub fn rest_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.rest.keys().cloned()
    }

    /// Runs the REST operation at `path`; a path nothing registered is a
    /// 404 in the AWS error shape.
    pub async fn dispatch_rest(
        &self,
        path: &str,
        query: Option<String>,
        headers: HeaderMap,
        body: axum::body::Body,
        over_tls: bool,
        metrics: &Metrics,
    ) -> Response {
        let protocol = Protocol::from_headers(&headers);
        let request_id = uuid::Uuid::new_v4().to_string();
        let Some(route) = self.rest.get(path).cloned() else {
            let mut error = AwsError::unknown_operation(format!("No operation at POST {path}"));
            error.status = axum::http::StatusCode::NOT_FOUND;
            return error.into_response(protocol, &request_id);
        };
        let request = RestRequest {
            operation: route.operation,
            over_tls,
            headers,
            query,
            body,
            request_id: request_id.clone(),
        };
        let result = (route.handler)(request).await;
        let response = answer(
            result,
            protocol,
            &request_id,
            route.service,
            route.operation,
        );
        metrics.record_request(route.service, route.operation, response.status().as_u16());
        response
    }

    /// Registers one handler for every operation of a service (it reads
    /// `AwsRequest::operation` to tell them apart).
    pub fn register_each(&mut self, prefix: &str, operations: &[&str], handler: Handler) {
        for operation in operations {
            self.register(&format!("{prefix}.{operation}"), handler.clone());
        }
    }

    /// Registers `handler` for `target`, e.g. `Kinesis_20131202.PutRecord`.
    pub fn register(&mut self, target: &str, handler: Handler) {
        self.handlers.insert(target.to_string(), handler);
    }

    pub async fn dispatch(&self, headers: HeaderMap, body: Bytes, metrics: &Metrics) -> Response {
        let protocol = Protocol::from_headers(&headers);
        let request_id = uuid::Uuid::new_v4().to_string();
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let service = SERVICES
            .iter()
            .find(|(prefix, _)| target.split_once('.').is_some_and(|(p, _)| p == *prefix))
            .map_or("unknown", |(_, name)| *name);

        let (operation, result) = match self.handlers.get(&target) {
            Some(handler) => {
                let operation = target.split_once('.').map_or("", |(_, op)| op).to_string();
                let request = AwsRequest {
                    protocol,
                    operation: operation.clone(),
                    headers,
                    body,
                    request_id: request_id.clone(),
                };
                (operation, handler(request).await)
            }
            None if target.is_empty() => (
                "unknown".to_string(),
                Err(AwsError::unknown_operation("Missing X-Amz-Target header")),
            ),
            None => (
                "unknown".to_string(),
                Err(AwsError::unknown_operation(format!(
                    "Operation {target} is not supported by this endpoint"
                ))),
            ),
        };

        let response = answer(result, protocol, &request_id, service, &operation);
        metrics.record_request(service, &operation, response.status().as_u16());
        response
    }
}

/// A handler's result as the response: its request id on it, an error in
/// the AWS shape (logged when it is the server's fault).
fn answer(
    result: Result<Response, AwsError>,
    protocol: Protocol,
    request_id: &str,
    service: &str,
    operation: &str,
) -> Response {
    match result {
        Ok(mut response) => {
            if let Ok(id) = HeaderValue::from_str(request_id) {
                response.headers_mut().insert("x-amzn-RequestId", id);
            }
            response
        }
        Err(error) => {
            if error.status.is_server_error() {
                tracing::error!(%service, %operation, %request_id, kind = error.kind, message = %error.message, "request failed");
            }
            error.into_response(protocol, request_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    fn headers(target: &str, content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", target.parse().unwrap());
        headers.insert("content-type", content_type.parse().unwrap());
        headers
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn registered_targets_reach_their_handler_with_the_operation_name() {
        let mut router = AwsRouter::default();
        let echo: Handler = Arc::new(|req: AwsRequest| {
            Box::pin(async move { Ok((StatusCode::OK, req.operation).into_response()) })
        });
        router.register("Kinesis_20131202.ListStreams", echo);
        let metrics = Metrics::new();
        let response = router
            .dispatch(
                headers("Kinesis_20131202.ListStreams", "application/x-amz-json-1.1"),
                Bytes::new(),
                &metrics,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-amzn-RequestId"));
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"ListStreams");
        assert!(
            metrics
                .render()
                .contains(r#"service="streams",operation="ListStreams",status="200""#)
        );
    }

    #[tokio::test]
    async fn rest_paths_reach_their_handler_with_the_body_as_a_stream() {
        use http_body_util::BodyExt;
        let mut router = AwsRouter::default();
        let count: RestHandler = Arc::new(|req: RestRequest| {
            Box::pin(async move {
                let mut body = req.body;
                let mut bytes = 0usize;
                let mut frames = 0usize;
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| AwsError::unknown_operation(e.to_string()))?;
                    if let Some(data) = frame.data_ref() {
                        bytes += data.len();
                        frames += 1;
                    }
                }
                Ok((
                    StatusCode::OK,
                    format!("{} {bytes} {}", req.operation, frames > 0),
                )
                    .into_response())
            })
        });
        router.register_rest("video", "/putMedia", "PutMedia", count);
        let metrics = Metrics::new();
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
        ];
        let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
        let response = router
            .dispatch_rest("/putMedia", None, HeaderMap::new(), body, false, &metrics)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&text[..], b"PutMedia 5 true");
        assert!(
            metrics
                .render()
                .contains(r#"service="video",operation="PutMedia",status="200""#)
        );
        let missing = router
            .dispatch_rest(
                "/getMedia",
                None,
                HeaderMap::new(),
                axum::body::Body::empty(),
                false,
                &metrics,
            )
            .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            missing.headers()["x-amzn-ErrorType"],
            "UnknownOperationException"
        );
    }

    #[tokio::test]
    async fn unknown_targets_get_the_aws_unknown_operation_shape() {
        let router = AwsRouter::default();
        let metrics = Metrics::new();
        let response = router
            .dispatch(
                headers("Kinesis_20131202.NoSuchThing", "application/x-amz-json-1.1"),
                Bytes::new(),
                &metrics,
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "UnknownOperationException"
        );
        let body = body_json(response).await;
        assert_eq!(body["__type"], "UnknownOperationException");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Kinesis_20131202.NoSuchThing")
        );
        assert!(
            metrics
                .render()
                .contains(r#"service="streams",operation="unknown",status="400""#)
        );
    }
}
