//! GetClip: the fragments of a time range as one fragmented MP4 file (an
//! init segment, then a media segment per fragment), sent as it is
//! written.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use runnel_video::mp4::{self, Mp4Error, Tracks};
use runnel_video::{FragmentMeta, Stream, Video, VideoError};
use tokio::sync::mpsc;

use super::fmp4::{self, Media, Placement};
use super::selector::{Clock, TimeRange, fragments_in};
use super::{Api, blocking, invalid, stream_ref, streamed};
use crate::aws::AwsError;
use crate::aws::request::Req;

/// Kinesis Video's clip holds the first 200 fragments or 100 MB of the
/// range, whichever comes first.
const MAX_FRAGMENTS: usize = 200;
const MAX_BYTES: u64 = 100 * 1024 * 1024;

pub async fn get_clip(api: Arc<Api>, mut req: Req) -> Result<Response, AwsError> {
    let selector = req.opt_object("ClipFragmentSelector")?;
    if selector.is_none() {
        req.problem(None, "clipFragmentSelector", "Member must not be null");
    }
    let reference = stream_ref(&mut req)?;
    let selector = selector.ok_or_else(|| invalid("ClipFragmentSelector must be specified"))?;
    let clock = Clock::read(&selector, None)?;
    let range = selector
        .opt_object("TimestampRange")?
        .ok_or_else(|| invalid("ClipFragmentSelector needs a TimestampRange"))?;
    let range = TimeRange::read(clock, &range, true)?;
    range.check_span()?;
    let stream = api.video.stream(&reference)?;
    fmp4::require_retention(&stream)?;
    let (video, s) = (api.video.clone(), stream.clone());
    let clip = blocking(move || plan(&video, &s, &range)).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(send(api.video.clone(), stream, clip, tx));
    Ok(streamed(rx, "video/mp4"))
}

struct Clip {
    init: Vec<u8>,
    fragments: Vec<FragmentMeta>,
    /// The producer time of the fragment after the clip's last, if any.
    next_producer_ms: Option<u64>,
}

/// The clip's fragments and init segment: everything that can fail
/// before the answer's 200 is sent.
fn plan(video: &Video, stream: &Stream, range: &TimeRange) -> Result<Clip, VideoError> {
    let mut found = fragments_in(video, stream, range)?;
    if found.is_empty() {
        return Err(VideoError::NotFound(
            "No fragments were found in the requested time range".into(),
        ));
    }
    let mut bytes = 0;
    let keep = found
        .iter()
        .take(MAX_FRAGMENTS)
        .take_while(|f| {
            bytes += f.at.len;
            bytes <= MAX_BYTES
        })
        .count()
        .max(1);
    let after = found.get(keep).map(|f| f.producer_ms);
    found.truncate(keep);
    let fragments = found;
    let first = &fragments[0];
    let tracks = fmp4::tracks(video, stream, first.header)?;
    let mut checked = vec![first.header];
    for fragment in &fragments {
        if !checked.contains(&fragment.header) {
            check_same_tracks(&tracks, &fmp4::tracks(video, stream, fragment.header)?)?;
            checked.push(fragment.header);
        }
    }
    let last = &fragments[fragments.len() - 1];
    let next_producer_ms = match after {
        Some(at) => Some(at),
        None => video
            .fragment(stream, last.seq + 1)?
            .map(|next| next.producer_ms),
    };
    let span = (last.producer_ms + last.duration_ms).saturating_sub(first.producer_ms);
    let total: u64 = fragments.iter().map(|f| f.duration_ms).sum();
    let init = mp4::init_segment(&tracks, Some(span.max(total)))?;
    Ok(Clip {
        init,
        fragments,
        next_producer_ms,
    })
}

fn check_same_tracks(first: &Tracks, other: &Tracks) -> Result<(), Mp4Error> {
    let (a, b) = (&first.video, &other.video);
    let same_audio =
        first.audio.as_ref().map(|t| &t.config) == other.audio.as_ref().map(|t| &t.config);
    if a.codec == b.codec && a.config == b.config && same_audio {
        Ok(())
    } else {
        Err(Mp4Error::CodecChanged)
    }
}

/// Writes the clip into the answer's body, a fragment at a time; a read
/// failing now can only cut the body short.
async fn send(video: Arc<Video>, stream: Arc<Stream>, clip: Clip, tx: mpsc::Sender<Bytes>) {
    if tx.send(Bytes::from(clip.init)).await.is_err() {
        return;
    }
    let origin_ms = clip.fragments[0].producer_ms;
    let mut end = fmp4::Ends::default();
    for (i, fragment) in clip.fragments.iter().enumerate() {
        let next = clip
            .fragments
            .get(i + 1)
            .map(|f| f.producer_ms)
            .or(clip.next_producer_ms);
        let placement = Placement {
            origin_ms,
            not_before: end.video,
            audio_not_before: end.audio,
            sequence: i as u32 + 1,
            media: Media::VideoAndAudio,
        };
        let (v, s, f) = (video.clone(), stream.clone(), fragment.clone());
        let rendered =
            tokio::task::spawn_blocking(move || fmp4::media_segment(&v, &s, &f, next, placement))
                .await;
        let segment = match rendered {
            Ok(Ok((segment, segment_end))) => {
                end = segment_end;
                segment
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "GetClip could not write a fragment");
                return;
            }
            Err(_) => return,
        };
        if tx.send(Bytes::from(segment)).await.is_err() {
            return;
        }
    }
}
