//! The HTTP port: Runnel's own `/v1` API, `/metrics`, and AWS requests.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::aws::{AwsError, AwsRouter, Protocol};
use crate::metrics::Metrics;

/// Large enough for a 5 MiB PutRecords request after base64 inflation.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

pub struct AppState {
    pub aws: AwsRouter,
    pub metrics: Metrics,
    pub started: Instant,
    pub store_id: String,
    pub data_dir: String,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(aws).get(banner))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

async fn aws(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.aws.dispatch(headers, body, &state.metrics).await
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn banner() -> &'static str {
    concat!(
        "Runnel ",
        env!("CARGO_PKG_VERSION"),
        "\n",
        "AWS endpoint: POST / with X-Amz-Target (use this URL as --endpoint-url)\n",
        "Health: GET /v1/health\n",
        "Metrics: GET /metrics\n",
    )
}

async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut error = AwsError::unknown_operation(format!("No operation at {method} {}", uri.path()));
    error.status = StatusCode::NOT_FOUND;
    error.into_response(
        Protocol::from_headers(&headers),
        &uuid::Uuid::new_v4().to_string(),
    )
}
