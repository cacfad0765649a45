//! MPEG-DASH over fragmented MP4: GetDASHStreamingSessionURL (a REST
//! POST, in `session`) hands out a manifest URL whose token is the
//! session; the player then GETs the manifest (`resources`, written by
//! `manifest`) and the MP4 init and media fragments under `/dash/v1/`,
//! the same fragments HLS serves, one track at a time: a stream with AAC
//! audio has an audio AdaptationSet beside the video's, since dash.js
//! plays no muxed representation.

mod manifest;
mod resources;
mod session;

use std::sync::Arc;

use axum::Router;

pub use session::get_dash_streaming_session_url;

use super::streaming::token::Protocol;
use super::streaming::{Streaming, route};

pub fn routes(streaming: Arc<Streaming>) -> Router {
    Router::new()
        .route(
            "/dash/v1/getDASHManifest.mpd",
            route(Protocol::Dash, resources::manifest),
        )
        .route(
            "/dash/v1/getMP4InitFragment.mp4",
            route(Protocol::Dash, resources::init),
        )
        .route(
            "/dash/v1/getMP4MediaFragment.mp4",
            route(Protocol::Dash, resources::media),
        )
        .with_state(streaming)
}
