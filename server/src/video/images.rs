//! GetImages: a picture every `SamplingInterval` of a time range, each
//! from the latest keyframe at or before its time (keyframes decode on
//! their own), scaled and written as JPEG or PNG.

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_video::images::{self, Format, Size};
use runnel_video::mkv::frames_of;
use runnel_video::{FragmentMeta, Stream, Video, VideoError};
use serde_json::{Value, json};

use super::selector::{Clock, TimeRange, fragments_in};
use super::{Api, blocking, invalid, seconds, stream_ref};
use crate::aws::request::Req;
use crate::aws::{AwsError, codec};

/// GetImages' bounds: the range's span, the smallest interval, and the
/// images in one answer.
const MAX_SPAN_MS: u64 = 300_000;
const MIN_INTERVAL_MS: i64 = 200;
const DEFAULT_PAGE: i64 = 25;
/// A fragment lasts at most this: one that starts this long before the
/// range may still cover its start.
const MAX_FRAGMENT_MS: u64 = 10_000;

struct Request {
    clock: Clock,
    start_ms: u64,
    end_ms: u64,
    interval_ms: u64,
    format: Format,
    quality: u8,
    size: Size,
    page: usize,
    first_sample: u64,
}

fn read(req: &mut Req) -> Result<Request, AwsError> {
    let clock = match req.opt_str("ImageSelectorType")?.as_deref() {
        Some("PRODUCER_TIMESTAMP") => Clock::Producer,
        Some("SERVER_TIMESTAMP") => Clock::Server,
        other => {
            return Err(invalid(format!(
                "ImageSelectorType {} must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP",
                other.unwrap_or("(none)")
            )));
        }
    };
    let start_ms = req
        .opt_time_ms("StartTimestamp")?
        .ok_or_else(|| invalid("StartTimestamp is required"))?;
    let end_ms = req
        .opt_time_ms("EndTimestamp")?
        .ok_or_else(|| invalid("EndTimestamp is required"))?;
    if end_ms < start_ms || end_ms - start_ms > MAX_SPAN_MS {
        return Err(invalid(
            "EndTimestamp must be after StartTimestamp and at most 300 seconds later",
        ));
    }
    let interval = req.int_range(
        "SamplingInterval",
        "samplingInterval",
        MIN_INTERVAL_MS,
        i64::MAX,
    )?;
    let format = match req.opt_str("Format")?.as_deref() {
        Some("JPEG") => Format::Jpeg,
        Some("PNG") => Format::Png,
        other => {
            return Err(invalid(format!(
                "Format {} must be JPEG or PNG",
                other.unwrap_or("(none)")
            )));
        }
    };
    let quality = match req
        .opt_str_map("FormatConfig")?
        .unwrap_or_default()
        .as_slice()
    {
        [] => 80,
        [(key, value)] if key == "JPEGQuality" => value
            .parse::<u8>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| invalid("JPEGQuality must be a whole number from 1 to 100"))?,
        _ => return Err(invalid("FormatConfig takes one key, JPEGQuality")),
    };
    let width = req.int_range("WidthPixels", "widthPixels", 1, 3840)?;
    let height = req.int_range("HeightPixels", "heightPixels", 1, 2160)?;
    let page = req
        .int_range("MaxResults", "maxResults", 1, 100)?
        .unwrap_or(DEFAULT_PAGE)
        .min(DEFAULT_PAGE);
    let token = req.opt_str("NextToken")?;
    req.finish()?;
    let first_sample = match token {
        Some(text) => STANDARD
            .decode(&text)
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| invalid("NextToken is not a token GetImages issued"))?,
        None => 0,
    };
    Ok(Request {
        clock,
        start_ms,
        end_ms,
        interval_ms: interval.map_or(end_ms - start_ms + 1, |i| i as u64),
        format,
        quality,
        size: Size {
            width: width.map(|w| w as u32),
            height: height.map(|h| h as u32),
        },
        page: page as usize,
        first_sample,
    })
}

pub async fn get_images(api: &Arc<Api>, mut req: Req) -> Result<Response, AwsError> {
    let reference = stream_ref(&mut req)?;
    let request = read(&mut req)?;
    let stream = api.video.stream(&reference)?;
    let video = api.video.clone();
    let (images, next) = blocking(move || render_page(&video, &stream, &request)).await?;
    let mut out = json!({ "Images": images });
    if let Some(next) = next {
        out["NextToken"] = json!(STANDARD.encode(next.to_be_bytes()));
    }
    Ok(codec::json_ok(out.to_string()))
}

/// One page of images, and the sample the next page starts at.
fn render_page(
    video: &Video,
    stream: &Stream,
    request: &Request,
) -> Result<(Vec<Value>, Option<u64>), VideoError> {
    let range = TimeRange {
        clock: request.clock,
        start_ms: request.start_ms.saturating_sub(MAX_FRAGMENT_MS),
        end_ms: Some(request.end_ms),
    };
    let fragments = fragments_in(video, stream, &range)?;
    // Keyframes sampled many times (every 200 ms of a 2 s fragment) are
    // decoded once.
    let mut pictures: HashMap<(u64, u32), Option<String>> = HashMap::new();
    let mut images = Vec::new();
    let mut sample = request.first_sample;
    loop {
        let at = request.start_ms + sample * request.interval_ms;
        if at > request.end_ms {
            return Ok((images, None));
        }
        if images.len() == request.page {
            return Ok((images, Some(sample)));
        }
        let containing = fragments.iter().rev().find(|f| {
            let start = request.clock.at(f);
            start <= at && at < start + f.duration_ms.max(1)
        });
        let mut image = json!({ "TimeStamp": seconds(at) });
        match containing {
            None => image["Error"] = json!("NO_MEDIA"),
            Some(fragment) => match picture(
                video,
                stream,
                fragment,
                at - request.clock.at(fragment),
                request,
                &mut pictures,
            ) {
                Some(content) => image["ImageContent"] = json!(content),
                None => image["Error"] = json!("MEDIA_ERROR"),
            },
        }
        images.push(image);
        sample += 1;
    }
}

/// The picture of the latest keyframe at or before `offset_ms` into
/// `fragment`, base64, or `None` when there is none or it does not decode.
fn picture(
    video: &Video,
    stream: &Stream,
    fragment: &FragmentMeta,
    offset_ms: u64,
    request: &Request,
    pictures: &mut HashMap<(u64, u32), Option<String>>,
) -> Option<String> {
    let (header, body) = video.read(stream, fragment).ok()?;
    let frames = frames_of(&body, header.timecode_scale).ok()?;
    let track = header
        .tracks
        .iter()
        .find(|t| t.codec_id == "V_MPEG4/ISO/AVC")?;
    let (index, frame) = frames.iter().enumerate().rfind(|(_, f)| {
        f.track == track.number && f.keyframe && f.timecode_ms <= offset_ms as i64
    })?;
    let key = (fragment.seq, index as u32);
    if let Some(done) = pictures.get(&key) {
        return done.clone();
    }
    let bytes = body.get(frame.offset as usize..(frame.offset + frame.len) as usize)?;
    let encoded = images::decode_keyframe(&track.codec_private, bytes)
        .and_then(|(width, height, rgb)| {
            let (to_width, to_height) = images::target_size(width, height, request.size);
            let scaled = images::scale(&rgb, width, height, to_width, to_height);
            images::encode(
                &scaled,
                to_width,
                to_height,
                request.format,
                request.quality,
            )
        })
        .map(|image| STANDARD.encode(image))
        .map_err(|error| tracing::debug!(%error, "GetImages could not make a picture"))
        .ok();
    pictures.insert(key, encoded.clone());
    encoded
}
