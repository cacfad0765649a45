//! GetHLSStreamingSessionURL: checks the request and that the stream has
//! something to play, then hands out the master playlist's URL with the
//! session sealed into its token.

use std::sync::Arc;

use axum::response::Response;
use runnel_video::{Stream, Video, VideoError, now_ms};
use serde_json::json;

use super::Hls;
use super::token::{DiscontinuityMode, Mode, Session};
use crate::aws::request::Req;
use crate::aws::{AwsError, codec};
use crate::video::fmp4;
use crate::video::selector::{Clock, TimeRange, fragments_in};
use crate::video::{blocking, invalid, stream_ref};

/// A LIVE session needs a fragment ingested this recently.
const LIVE_WINDOW_MS: u64 = 30_000;

pub async fn get_hls_streaming_session_url(
    hls: Arc<Hls>,
    mut req: Req,
    host: Option<String>,
) -> Result<Response, AwsError> {
    let mode = one_of(
        &mut req,
        "PlaybackMode",
        "playbackMode",
        &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
    )?;
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
    let display = one_of(
        &mut req,
        "DisplayFragmentTimestamp",
        "displayFragmentTimestamp",
        &["ALWAYS", "NEVER"],
    )?;
    let expires = req.int_range("Expires", "expires", 300, 43_200)?;
    let max_results = req.int_range(
        "MaxMediaPlaylistFragmentResults",
        "maxMediaPlaylistFragmentResults",
        1,
        5000,
    )?;
    let selector = req.opt_object("HLSFragmentSelector")?;
    let reference = stream_ref(&mut req)?;
    if container == Some("MPEG_TS") {
        return Err(invalid(
            "ContainerFormat MPEG_TS is not supported: Runnel packages HLS as FRAGMENTED_MP4",
        ));
    }
    let mode = match mode {
        Some("LIVE_REPLAY") => Mode::LiveReplay,
        Some("ON_DEMAND") => Mode::OnDemand,
        _ => Mode::Live,
    };
    let clock = match &selector {
        Some(selector) => Clock::read(selector, Some(Clock::Server))?,
        None => Clock::Server,
    };
    let range = match &selector {
        Some(selector) => selector.opt_object("TimestampRange")?,
        None => None,
    };
    let range = match (mode, range) {
        (Mode::Live, None) => None,
        (Mode::Live, Some(_)) => {
            return Err(invalid(
                "TimestampRange must not be set when PlaybackMode is LIVE",
            ));
        }
        (_, None) => {
            return Err(invalid(
                "HLSFragmentSelector with a TimestampRange is required when PlaybackMode is ON_DEMAND or LIVE_REPLAY",
            ));
        }
        (mode, Some(range)) => {
            let range = TimeRange::read(clock, &range, mode == Mode::OnDemand)?;
            range.check_span()?;
            Some(range)
        }
    };
    let discontinuity = match (discontinuity, clock) {
        (Some("ALWAYS"), _) | (None, Clock::Server) => DiscontinuityMode::Always,
        (Some("ON_DISCONTINUITY"), _) => DiscontinuityMode::OnDiscontinuity,
        _ => DiscontinuityMode::Never,
    };
    let max_results = max_results.unwrap_or(match mode {
        Mode::OnDemand => 1000,
        Mode::Live | Mode::LiveReplay => 5,
    });

    let stream = hls.video.stream(&reference)?;
    fmp4::require_retention(&stream)?;
    let created_ms = now_ms();
    let (video, s) = (hls.video.clone(), stream.clone());
    let header = blocking(move || first_header(&video, &s, range.as_ref(), created_ms)).await?;
    let session = Session {
        stream_id: stream.id(),
        stream_name: stream.meta().name,
        mode,
        clock,
        range,
        created_ms,
        expires_ms: created_ms + expires.unwrap_or(300) as u64 * 1000,
        max_results: max_results as u32,
        discontinuity,
        display_timestamp: display == Some("ALWAYS"),
        header,
    };
    let token = hls.sealer.seal(&session);
    let host = host.unwrap_or_else(|| "127.0.0.1:4567".into());
    Ok(codec::json_ok(
        json!({
            "HLSStreamingSessionURL":
                format!("http://{host}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}")
        })
        .to_string(),
    ))
}

/// The Info and Tracks the session's init segment comes from: the first
/// fragment of the range, or for LIVE the newest, which must be recent.
/// Its video track is checked now, so a stream HLS cannot play is refused
/// here rather than by the player.
fn first_header(
    video: &Video,
    stream: &Stream,
    range: Option<&TimeRange>,
    now_ms: u64,
) -> Result<u64, VideoError> {
    let first = match range {
        Some(range) => fragments_in(video, stream, range)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                VideoError::NotFound("No fragments were found in the requested time range".into())
            })?,
        None => video
            .latest_fragments(stream, 1)?
            .into_iter()
            .find(|f| f.server_ms + LIVE_WINDOW_MS >= now_ms)
            .ok_or_else(|| {
                VideoError::NotFound(
                    "No fragments were ingested into the stream in the last 30 seconds".into(),
                )
            })?,
    };
    fmp4::video_track(video, stream, first.header)?;
    Ok(first.header)
}

/// An optional enum member; a value outside `values` is a constraint
/// failure, reported with the others.
fn one_of(
    req: &mut Req,
    field: &str,
    at: &str,
    values: &[&'static str],
) -> Result<Option<&'static str>, AwsError> {
    let Some(value) = req.opt_str(field)? else {
        return Ok(None);
    };
    let known = values.iter().copied().find(|v| *v == value);
    if known.is_none() {
        req.problem(
            Some(&value),
            at,
            &format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ),
        );
    }
    Ok(known)
}
