//! HLS over fragmented MP4 or MPEG-TS: GetHLSStreamingSessionURL (a REST
//! POST, in `session`) hands out a master playlist URL whose token is the
//! session; the player then GETs the playlists (`resources`) and the
//! media (`segments`: MP4 init and media fragments, or TS fragments)
//! under `/hls/v1/`, outside the AWS REST dispatch.

mod playlist;
mod resources;
mod segments;
mod session;

use std::sync::Arc;

use axum::Router;

pub use session::get_hls_streaming_session_url;

use super::streaming::token::Protocol;
use super::streaming::{Streaming, route};

pub fn routes(streaming: Arc<Streaming>) -> Router {
    Router::new()
        .route(
            "/hls/v1/getHLSMasterPlaylist.m3u8",
            route(Protocol::Hls, resources::master_playlist),
        )
        .route(
            "/hls/v1/getHLSMediaPlaylist.m3u8",
            route(Protocol::Hls, resources::media_playlist),
        )
        .route(
            "/hls/v1/getMP4InitFragment.mp4",
            route(Protocol::Hls, segments::mp4_init),
        )
        .route(
            "/hls/v1/getMP4MediaFragment.mp4",
            route(Protocol::Hls, segments::mp4_media),
        )
        .route(
            "/hls/v1/getTSFragment.ts",
            route(Protocol::Hls, segments::ts_fragment),
        )
        .with_state(streaming)
}
