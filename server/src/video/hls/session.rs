//! GetHLSStreamingSessionURL: the shared session members
//! (`streaming::request`) and HLS's own, ContainerFormat and
//! DiscontinuityMode; the answer is the master playlist's URL with the
//! session sealed into its token.

use std::sync::Arc;

use axum::response::Response;
use serde_json::json;

use crate::aws::request::Req;
use crate::aws::{AwsError, codec};
use crate::video::selector::Clock;
use crate::video::streaming::Streaming;
use crate::video::streaming::request::{Members, Request, one_of};
use crate::video::streaming::token::{Container, DiscontinuityMode, Format};

const MEMBERS: Members = Members {
    selector: "HLSFragmentSelector",
    max_results: (
        "MaxMediaPlaylistFragmentResults",
        "maxMediaPlaylistFragmentResults",
    ),
};

pub async fn get_hls_streaming_session_url(
    streaming: Arc<Streaming>,
    mut req: Req,
    // `scheme://host` of the request, which the URLs handed out are on.
    base: Option<String>,
) -> Result<Response, AwsError> {
    let container = one_of(
        &mut req,
        "ContainerFormat",
        "containerFormat",
        &["FRAGMENTED_MP4", "MPEG_TS"],
    )?;
    let discontinuity = one_of(
        &mut req,
        "DiscontinuityMode",
        "discontinuityMode",
        &["ALWAYS", "NEVER", "ON_DISCONTINUITY"],
    )?;
    let request = Request::read(&mut req, &MEMBERS)?;
    let container = match container {
        Some("MPEG_TS") => Container::MpegTs,
        _ => Container::FragmentedMp4,
    };
    // Server times of fragments put one after another have gaps: marked by
    // default, as Kinesis Video does.
    let discontinuity = match (discontinuity, request.clock) {
        (Some("ALWAYS"), _) | (None, Clock::Server) => DiscontinuityMode::Always,
        (Some("ON_DISCONTINUITY"), _) => DiscontinuityMode::OnDiscontinuity,
        _ => DiscontinuityMode::Never,
    };
    let session = request
        .start(&streaming, |_| Format::Hls {
            discontinuity,
            container,
        })
        .await?;
    let token = streaming.seal(&session);
    let base = base.unwrap_or_else(|| "http://127.0.0.1:4567".into());
    Ok(codec::json_ok(
        json!({
            "HLSStreamingSessionURL":
                format!("{base}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}")
        })
        .to_string(),
    ))
}
