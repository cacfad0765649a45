//! The web console: pages for streams, delivery streams, jobs and video,
//! served from the binary itself (`server/console/`, embedded at build
//! time: no CDN, no build step, works offline).
//!
//! The pages call the AWS APIs as an SDK does (`POST /` with
//! `X-Amz-Target`, Video's REST paths) and `/v1/jobs`; what those do not
//! tell, this module's `/v1/console/*` endpoints do: a stream's shards
//! with its records and bytes per second, a delivery stream's figures and
//! its newest objects. Signing in (`/v1/console/session`) is the auth
//! module's.

mod assets;
mod firehose;
mod streams;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::config::ServerConfig;
use crate::kinesis::Rates;

pub use assets::index;

/// What the console's endpoints read.
pub struct Console {
    streams: Arc<runnel_streams::Streams>,
    firehose: Arc<runnel_firehose::Firehose>,
    rates: Arc<Rates>,
    /// Set when Firehose writes to a remote S3 endpoint: its objects are
    /// not on this machine to list.
    s3_endpoint: Option<String>,
}

impl Console {
    pub fn new(
        streams: Arc<runnel_streams::Streams>,
        firehose: Arc<runnel_firehose::Firehose>,
        rates: Arc<Rates>,
        config: &ServerConfig,
    ) -> Arc<Console> {
        Arc::new(Console {
            streams,
            firehose,
            rates,
            s3_endpoint: config.firehose.s3_endpoint.clone(),
        })
    }
}

pub fn routes(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console/{*file}", get(assets::asset))
        .route("/v1/console/streams/{name}", get(streams::overview))
        .route("/v1/console/firehose/{name}", get(firehose::figures))
        .route(
            "/v1/console/firehose/{name}/objects",
            get(firehose::objects),
        )
        .with_state(console)
}

/// An error as `/v1/jobs` answers them.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"message": message.into()}))).into_response()
}
