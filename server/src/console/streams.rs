//! `GET /v1/console/streams/{name}`: what a stream's page refreshes every
//! second in one request: its status, its shards with their hash ranges
//! and lineage, and its records and bytes per second in and out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runnel_streams::StreamsError;
use runnel_streams::model::{sequence_number, shard_id};
use serde_json::{Value, json};

use super::{Console, error};
use crate::kinesis::rates::WINDOW_SECONDS;

#[derive(serde::Deserialize)]
pub struct Window {
    /// How many seconds of rates; all that are kept by default.
    seconds: Option<usize>,
}

pub async fn overview(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    Query(window): Query<Window>,
) -> Response {
    let info = match console.streams.describe(&name) {
        Ok(info) => info,
        Err(StreamsError::NotFound(message)) => return error(StatusCode::NOT_FOUND, message),
        Err(other) => return error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    };
    let meta = &info.meta;
    let shards: Vec<Value> = meta
        .shards
        .iter()
        .map(|shard| {
            json!({
                "shard_id": shard.shard_id(),
                "parent": shard.parent.map(shard_id),
                "adjacent_parent": shard.adjacent_parent.map(shard_id),
                // Hash keys pass 2^53: as text, or JavaScript rounds them.
                "starting_hash_key": shard.start_hash.to_string(),
                "ending_hash_key": shard.end_hash.to_string(),
                "starting_sequence_number": shard.starting_sequence_number(),
                "ending_sequence_number": shard.end_counter.map(|c| sequence_number(shard.index, c)),
                "open": shard.is_open(),
            })
        })
        .collect();
    let seconds = window.seconds.unwrap_or(WINDOW_SECONDS);
    Json(json!({
        "name": meta.name,
        "arn": info.arn,
        "status": meta.status.as_str(),
        "mode": meta.mode.as_str(),
        "retention_hours": meta.retention_hours,
        "encrypted": meta.encryption_key_id.is_some(),
        "consumers": meta.consumers.len(),
        "shards": shards,
        "rates": console.rates.series(&name, seconds),
    }))
    .into_response()
}
