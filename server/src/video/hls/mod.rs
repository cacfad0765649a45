//! HLS over fragmented MP4: GetHLSStreamingSessionURL (a REST POST, in
//! `session`) hands out a master playlist URL whose token is the session
//! (`token`); the player then GETs the playlists and the MP4 init and
//! media fragments (`resources`) under `/hls/v1/`, outside the AWS REST
//! dispatch.

mod listing;
mod playlist;
mod resources;
mod session;
mod token;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runnel_video::{StreamRef, Video, VideoError, now_ms};

pub use session::get_hls_streaming_session_url;

use self::token::Sealer;
use super::{blocking, invalid};
use crate::aws::{AwsError, Protocol};

pub struct Hls {
    video: Arc<Video>,
    sealer: Sealer,
}

impl Hls {
    pub fn new(video: Arc<Video>) -> Arc<Hls> {
        Arc::new(Hls {
            video,
            sealer: Sealer::random(),
        })
    }
}

pub fn routes(hls: Arc<Hls>) -> Router {
    Router::new()
        .route("/hls/v1/getHLSMasterPlaylist.m3u8", get(master))
        .route("/hls/v1/getHLSMediaPlaylist.m3u8", get(media))
        .route("/hls/v1/getMP4InitFragment.mp4", get(init))
        .route("/hls/v1/getMP4MediaFragment.mp4", get(fragment))
        .with_state(hls)
}

type Params = Query<HashMap<String, String>>;

#[derive(Clone, Copy)]
enum Resource {
    Master,
    Media,
    Init,
    Fragment,
}

async fn master(State(hls): State<Arc<Hls>>, Query(params): Params) -> Response {
    answer(hls, params, Resource::Master).await
}

async fn media(State(hls): State<Arc<Hls>>, Query(params): Params) -> Response {
    answer(hls, params, Resource::Media).await
}

async fn init(State(hls): State<Arc<Hls>>, Query(params): Params) -> Response {
    answer(hls, params, Resource::Init).await
}

async fn fragment(State(hls): State<Arc<Hls>>, Query(params): Params) -> Response {
    answer(hls, params, Resource::Fragment).await
}

/// The resource, or an error in Kinesis Video's JSON shape.
async fn answer(hls: Arc<Hls>, params: HashMap<String, String>, resource: Resource) -> Response {
    match serve(hls, params, resource).await {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(error) => error.into_response(Protocol::Json, &uuid::Uuid::new_v4().to_string()),
    }
}

async fn serve(
    hls: Arc<Hls>,
    mut params: HashMap<String, String>,
    resource: Resource,
) -> Result<(&'static str, Vec<u8>), AwsError> {
    let token = params
        .remove("SessionToken")
        .ok_or_else(|| invalid("SessionToken is required"))?;
    let session = hls.sealer.open(&token, now_ms()).map_err(|e| {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "NotAuthorizedException",
            e.to_string(),
        )
    })?;
    let stream = hls
        .video
        .stream(&StreamRef::Name(session.stream_name.clone()))?;
    if stream.id() != session.stream_id {
        return Err(VideoError::NotFound(format!(
            "The stream {} of this session was deleted",
            session.stream_name
        ))
        .into());
    }
    let fragment_number = params.remove("FragmentNumber");
    let video = hls.video.clone();
    blocking(move || match resource {
        Resource::Master => resources::master_playlist(&video, &stream, &session, &token),
        Resource::Media => resources::media_playlist(&video, &stream, &session, &token),
        Resource::Init => resources::init_fragment(&video, &stream, &session),
        Resource::Fragment => {
            let number = fragment_number
                .ok_or_else(|| VideoError::InvalidArgument("FragmentNumber is required".into()))?;
            resources::media_fragment(&video, &stream, &session, &number)
        }
    })
    .await
}
