//! What HLS and DASH playback share: a session sealed into its token
//! (`token`), the request members both session calls read (`request`),
//! which fragments a session lists (`listing`), the MP4 fragments a
//! player GETs (`fragments`) and the GET plumbing: a token checked for
//! its protocol and stream, then the answer rendered off the async
//! threads, every answer open to pages of any origin (`allow_any_origin`).

pub mod fragments;
pub mod listing;
pub mod request;
pub mod text;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use runnel_video::{Stream, StreamRef, Video, VideoError, now_ms};

use self::fragments::Answer;
use self::token::{Protocol, Sealer, Session};
use super::{blocking, invalid};
use crate::aws::{self, AwsError};

/// The state behind every session call and GET: the store and the key
/// tokens are sealed under.
pub struct Streaming {
    video: Arc<Video>,
    sealer: Sealer,
}

impl Streaming {
    pub fn new(video: Arc<Video>) -> Arc<Streaming> {
        Arc::new(Streaming {
            video,
            sealer: Sealer::random(),
        })
    }

    pub fn video(&self) -> &Arc<Video> {
        &self.video
    }

    pub fn seal(&self, session: &Session) -> String {
        self.sealer.seal(session)
    }
}

/// A GET whose token opened: what rendering an answer needs.
pub struct Opened {
    pub video: Arc<Video>,
    pub stream: Arc<Stream>,
    pub session: Session,
    pub token: String,
    pub fragment_number: Option<String>,
    /// DASH's `TrackNumber`: which AdaptationSet's segments are asked for.
    pub track_number: Option<String>,
}

/// A GET route of `protocol`'s sessions, answered by `render`, and its
/// CORS preflight.
pub fn route(protocol: Protocol, render: fn(&Opened) -> Answer) -> MethodRouter<Arc<Streaming>> {
    get(
        move |State(streaming): State<Arc<Streaming>>,
              Query(params): Query<HashMap<String, String>>| async move {
            match serve(streaming, params, protocol, render).await {
                Ok((content_type, body)) => {
                    ([(header::CONTENT_TYPE, content_type)], body).into_response()
                }
                Err(error) => {
                    error.into_response(aws::Protocol::Json, &uuid::Uuid::new_v4().to_string())
                }
            }
        },
    )
    .options(preflight)
}

/// Players such as hls.js and dash.js run in pages served from another
/// origin than the session URL's (AWS's own KVS test player page is one),
/// and a browser hands them no byte of an answer without this header;
/// Kinesis Video's playback endpoints send it. The token in the URL is the
/// only credential, so there is nothing for a foreign page to ride on.
pub async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// A plain GET needs no preflight, but a page whose player adds a header
/// of its own (`xhrSetup` in hls.js) asks first, without the token.
async fn preflight() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
}

async fn serve(
    streaming: Arc<Streaming>,
    mut params: HashMap<String, String>,
    protocol: Protocol,
    render: fn(&Opened) -> Answer,
) -> Result<(&'static str, Vec<u8>), AwsError> {
    let token = params
        .remove("SessionToken")
        .ok_or_else(|| invalid("SessionToken is required"))?;
    let not_authorized =
        |message: String| AwsError::new(StatusCode::FORBIDDEN, "NotAuthorizedException", message);
    let session = streaming
        .sealer
        .open(&token, now_ms())
        .map_err(|e| not_authorized(e.to_string()))?;
    // Each protocol's routes open only its own sessions, as Kinesis
    // Video's endpoints do.
    if session.format.protocol() != protocol {
        return Err(not_authorized(format!(
            "The session token is for {} playback, not {protocol}",
            session.format.protocol()
        )));
    }
    let stream = streaming
        .video
        .stream(&StreamRef::Name(session.stream_name.clone()))?;
    if stream.id() != session.stream_id {
        return Err(VideoError::NotFound(format!(
            "The stream {} of this session was deleted",
            session.stream_name
        ))
        .into());
    }
    let opened = Opened {
        video: streaming.video.clone(),
        stream,
        session,
        token,
        fragment_number: params.remove("FragmentNumber"),
        track_number: params.remove("TrackNumber"),
    };
    blocking(move || render(&opened)).await
}
