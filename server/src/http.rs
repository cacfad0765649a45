//! The HTTP port: Runnel's own `/v1` API, `/metrics`, and AWS requests.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::json;

use crate::aws::budget::{self, Budget, MAX_REQUEST_BYTES};
use crate::aws::codec::serialization_error;
use crate::aws::{AwsError, AwsRouter, Protocol};
use crate::metrics::Metrics;

pub struct AppState {
    pub aws: AwsRouter,
    pub jobs: Arc<crate::analytics::JobManager>,
    pub firehose: Arc<runnel_firehose::Firehose>,
    pub budget: Budget,
    pub metrics: Metrics,
    pub started: Instant,
    pub store_id: String,
    pub data_dir: String,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(aws).get(root))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(rest_or_not_found)
        .with_state(state)
}

/// An `X-Amz-Target` request: its body read whole (within the budget of
/// bodies read at once), counted, then dispatched. Errors before the
/// handler runs are in the AWS shape and the request's encoding too.
async fn aws(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let protocol = Protocol::from_headers(&headers);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let early = |error: AwsError| {
        let response = error.into_response(protocol, &uuid::Uuid::new_v4().to_string());
        state
            .metrics
            .record_request("unknown", "unknown", response.status().as_u16());
        response
    };
    if length.is_some_and(|l| l > MAX_REQUEST_BYTES as u64) {
        return early(budget::too_large(MAX_REQUEST_BYTES));
    }
    let _permit = state.budget.reserve(length).await;
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return early(error),
    };
    if let Err(error) = budget::check_values(protocol, &body) {
        return early(error);
    }
    state.aws.dispatch(headers, body, &state.metrics).await
}

/// The body, up to `MAX_REQUEST_BYTES`.
async fn read_body(mut body: Body) -> Result<Bytes, AwsError> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| serialization_error(format!("The request body could not be read: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(budget::too_large(MAX_REQUEST_BYTES));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(bytes))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "store_id": state.store_id,
        "data_dir": state.data_dir,
    });
    state.metrics.record_request("runnel", "health", 200);
    axum::Json(body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.record_jobs(&state.jobs.figures());
    state.metrics.record_firehose(&state.firehose.figures());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// A browser gets the console; curl and scripts, which do not ask for
/// HTML, the banner.
async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains("text/html"));
    let mut response = if wants_html {
        crate::console::index(&headers)
    } else {
        BANNER.into_response()
    };
    // Caches must keep the two answers apart.
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

const BANNER: &str = concat!(
    "Runnel ",
    env!("CARGO_PKG_VERSION"),
    "\n",
    "AWS endpoint: POST / with X-Amz-Target (use this URL as --endpoint-url)\n",
    "Health: GET /v1/health\n",
    "Metrics: GET /metrics\n",
    "Console: open this URL in a browser\n",
);

/// A REST operation (`POST /putMedia`, ...) if a service registered the
/// path, else a 404 in the AWS error shape.
async fn rest_or_not_found(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    over_tls: Option<axum::Extension<crate::listener::OverTls>>,
    mut headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::POST && state.aws.has_rest(uri.path()) {
        let query = uri.query().map(str::to_string);
        // An HTTP/2 request names its host in `:authority`; the URLs an
        // answer hands out (GetDataEndpoint, HLS sessions) are built on it.
        if !headers.contains_key(header::HOST)
            && let Some(host) = uri.authority().and_then(|a| a.as_str().parse().ok())
        {
            headers.insert(header::HOST, host);
        }
        return state
            .aws
            .dispatch_rest(
                uri.path(),
                query,
                headers,
                body,
                over_tls.is_some(),
                &state.metrics,
            )
            .await;
    }
    let mut error = AwsError::unknown_operation(format!("No operation at {method} {}", uri.path()));
    error.status = StatusCode::NOT_FOUND;
    error.into_response(
        Protocol::from_headers(&headers),
        &uuid::Uuid::new_v4().to_string(),
    )
}
