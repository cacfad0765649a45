//! Kinesis Video Streams on the AWS port: REST-JSON POSTs to paths
//! (`/createStream`, `/putMedia`, `/getMedia`, ...), in front of
//! `runnel-video`. Control operations read a JSON body; PutMedia,
//! GetMedia and GetClip stream theirs. HLS's playlists, DASH's manifest
//! and their fragments are GETs of their own (`playback_routes`).

mod archive;
mod clip;
mod control;
mod dash;
mod fmp4;
mod hls;
mod images;
mod playback;
mod put_media;
mod selector;
mod streaming;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use runnel_video::mp4::Mp4Error;
use runnel_video::ts::TsError;
use runnel_video::{StreamRef, Video, VideoError};

use crate::aws::request::Req;
use crate::aws::shapes::{self, Model};
use crate::aws::{AwsError, AwsRouter, Protocol, RestHandler, RestRequest, codec};

pub use self::streaming::Streaming;

/// A control request's JSON body is small; anything larger is refused
/// before it is read whole.
const MAX_CONTROL_BODY: usize = 1024 * 1024;

pub struct Api {
    video: Arc<Video>,
    streaming: Arc<Streaming>,
}

/// Every REST path and its operation.
const ROUTES: &[(&str, &str)] = &[
    ("/createStream", "CreateStream"),
    ("/describeStream", "DescribeStream"),
    ("/listStreams", "ListStreams"),
    ("/deleteStream", "DeleteStream"),
    ("/updateStream", "UpdateStream"),
    ("/updateDataRetention", "UpdateDataRetention"),
    ("/getDataEndpoint", "GetDataEndpoint"),
    ("/tagStream", "TagStream"),
    ("/untagStream", "UntagStream"),
    ("/listTagsForStream", "ListTagsForStream"),
    ("/TagResource", "TagResource"),
    ("/UntagResource", "UntagResource"),
    ("/ListTagsForResource", "ListTagsForResource"),
    ("/putMedia", "PutMedia"),
    ("/getMedia", "GetMedia"),
    ("/getMediaForFragmentList", "GetMediaForFragmentList"),
    ("/listFragments", "ListFragments"),
    ("/getClip", "GetClip"),
    ("/getImages", "GetImages"),
    ("/getHLSStreamingSessionURL", "GetHLSStreamingSessionURL"),
    ("/getDASHStreamingSessionURL", "GetDASHStreamingSessionURL"),
];

pub fn register(router: &mut AwsRouter, video: Arc<Video>, streaming: Arc<Streaming>) {
    let api = Arc::new(Api { video, streaming });
    for &(path, operation) in ROUTES {
        let api = api.clone();
        let handler: RestHandler = Arc::new(move |request: RestRequest| {
            let api = api.clone();
            Box::pin(async move { api.handle(request).await })
        });
        router.register_rest("video", path, operation, handler);
    }
}

impl Api {
    /// Kinesis Video reports constraint failures as
    /// `InvalidArgumentException`; it has no `ValidationException`.
    async fn handle(
        self: Arc<Self>,
        request: RestRequest,
    ) -> Result<axum::response::Response, AwsError> {
        self.route(request).await.map_err(|mut error| {
            if error.kind == "ValidationException" {
                error.kind = "InvalidArgumentException";
            }
            error
        })
    }

    async fn route(
        self: Arc<Self>,
        request: RestRequest,
    ) -> Result<axum::response::Response, AwsError> {
        let scheme = if request.over_tls { "https" } else { "http" };
        let host = request
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("{scheme}://{host}"));
        let operation = request.operation;
        let model = match operation {
            "PutMedia" => return put_media::put_media(self, request).await,
            "GetMedia" => &shapes::KINESIS_VIDEO_MEDIA,
            "GetMediaForFragmentList"
            | "ListFragments"
            | "GetClip"
            | "GetImages"
            | "GetHLSStreamingSessionURL"
            | "GetDASHStreamingSessionURL" => &shapes::KINESIS_VIDEO_ARCHIVED,
            _ => &shapes::KINESIS_VIDEO,
        };
        let req = read_json(request, model).await?;
        match operation {
            "GetMedia" => playback::get_media(self, req).await,
            "GetMediaForFragmentList" => playback::get_media_for_fragment_list(self, req).await,
            "ListFragments" => archive::list_fragments(&self, req).await,
            "GetClip" => clip::get_clip(self, req).await,
            "GetImages" => images::get_images(&self, req).await,
            "GetHLSStreamingSessionURL" => {
                hls::get_hls_streaming_session_url(self.streaming.clone(), req, host).await
            }
            "GetDASHStreamingSessionURL" => {
                dash::get_dash_streaming_session_url(self.streaming.clone(), req, host).await
            }
            _ => control::handle(&self, operation, req, host).await,
        }
    }
}

/// The GETs players make with a session's token: HLS's under `/hls/v1/`,
/// DASH's under `/dash/v1/`.
pub fn playback_routes(streaming: Arc<Streaming>) -> Router {
    hls::routes(streaming.clone())
        .merge(dash::routes(streaming))
        // A layer on this router only: the AWS API's POSTs stay same-origin.
        .layer(axum::middleware::map_response(streaming::allow_any_origin))
}

/// Reads a REST request's JSON body (bounded) and checks it against the
/// operation's input shape.
async fn read_json(request: RestRequest, model: &Model) -> Result<Req, AwsError> {
    let limited = http_body_util::Limited::new(request.body, MAX_CONTROL_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            codec::serialization_error(format!("The request body could not be read: {e}"))
        })?
        .to_bytes();
    let map = codec::decode(Protocol::Json, &bytes, model, request.operation)?;
    Ok(Req::new(map))
}

/// `StreamName` or `StreamARN`: exactly one, as Kinesis Video asks.
fn stream_ref(req: &mut Req) -> Result<StreamRef, AwsError> {
    let name = req.opt_str("StreamName")?;
    let arn = req.opt_str("StreamARN")?;
    if let Some(name) = &name {
        req.check_len(name, "streamName", 1, 256);
    }
    if let Some(arn) = &arn {
        req.check_len(arn, "streamARN", 1, 1024);
    }
    req.finish()?;
    match (name, arn) {
        (Some(name), None) => Ok(StreamRef::Name(name)),
        (None, Some(arn)) => Ok(StreamRef::Arn(arn)),
        (Some(_), Some(_)) => Err(invalid("Specify either StreamName or StreamARN, not both")),
        (None, None) => Err(invalid("StreamName or StreamARN must be specified")),
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
}

impl From<VideoError> for AwsError {
    fn from(error: VideoError) -> Self {
        let (status, kind) = match &error {
            VideoError::NotFound(_) | VideoError::NotActive(_) => {
                (StatusCode::NOT_FOUND, "ResourceNotFoundException")
            }
            VideoError::InUse(_) => (StatusCode::BAD_REQUEST, "ResourceInUseException"),
            VideoError::VersionMismatch(_) => (StatusCode::BAD_REQUEST, "VersionMismatchException"),
            VideoError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "InvalidArgumentException"),
            VideoError::LimitExceeded(_) => {
                (StatusCode::BAD_REQUEST, "ClientLimitExceededException")
            }
            VideoError::Mp4(error) => (StatusCode::BAD_REQUEST, mp4_error_kind(error)),
            VideoError::Ts(TsError::InvalidCodecPrivate(_)) => {
                (StatusCode::BAD_REQUEST, "InvalidCodecPrivateDataException")
            }
            VideoError::Ts(TsError::NalOutOfRange) => {
                (StatusCode::BAD_REQUEST, "InvalidMediaFrameException")
            }
            VideoError::Corrupt(_)
            | VideoError::Io(_)
            | VideoError::Store(_)
            | VideoError::Rocks(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        };
        AwsError::new(status, kind, error.to_string())
    }
}

/// Kinesis Video's names for why media cannot be played as MP4.
fn mp4_error_kind(error: &Mp4Error) -> &'static str {
    match error {
        Mp4Error::UnsupportedCodec(_) => "UnsupportedStreamMediaTypeException",
        Mp4Error::MissingCodecPrivate(_) => "MissingCodecPrivateDataException",
        Mp4Error::InvalidCodecPrivate { .. } | Mp4Error::CodecChanged => {
            "InvalidCodecPrivateDataException"
        }
        Mp4Error::FrameOutOfRange | Mp4Error::TooLarge(_) => "InvalidMediaFrameException",
    }
}

/// Runs blocking store work (fsync, RocksDB) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, VideoError> + Send + 'static,
) -> Result<T, AwsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                e.to_string(),
            )
        })?
        .map_err(AwsError::from)
}

/// A 200 whose body is whatever a task sends into the channel, as it
/// sends it; the body ends when the task drops its sender.
fn streamed(
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    content_type: &'static str,
) -> axum::response::Response {
    let body =
        axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
        }));
    let mut response = axum::response::Response::new(body);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// Epoch seconds with milliseconds, as REST-JSON timestamps are written.
fn seconds(ms: u64) -> serde_json::Value {
    serde_json::json!(ms as f64 / 1000.0)
}

/// Spawns retention: fragments past each stream's retention are removed
/// once a minute.
pub fn spawn_retention(video: Arc<Video>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let video = video.clone();
            let now = runnel_video::now_ms();
            match tokio::task::spawn_blocking(move || video.trim_expired(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(removed)) => tracing::info!(removed, "video retention removed fragments"),
                Ok(Err(error)) => tracing::warn!(%error, "video retention failed"),
                Err(error) => tracing::warn!(%error, "video retention task failed"),
            }
        }
    });
}
