//! Stored fragments as fragmented MP4, the part GetClip and HLS share:
//! which streams may be played this way, their video track, one
//! fragment as a media segment, and the sample timing HLS's MPEG-TS
//! segments share with it.

use axum::http::StatusCode;
use runnel_video::mkv::frames_of;
use runnel_video::mp4::{self, FragmentSamples, TICKS_PER_MS, VideoTrack};
use runnel_video::{FragmentMeta, Stream, Video, VideoError};

use crate::aws::AwsError;

/// MP4 playback reads the archive: Kinesis Video refuses it for streams
/// that keep none.
pub fn require_retention(stream: &Stream) -> Result<(), AwsError> {
    if stream.meta().retention_hours == 0 {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "NoDataRetentionException",
            format!(
                "The stream {} has a DataRetentionInHours of 0: it keeps no media to play back",
                stream.meta().name
            ),
        ));
    }
    Ok(())
}

/// The video track of the Info and Tracks numbered `header`.
pub fn video_track(video: &Video, stream: &Stream, header: u64) -> Result<VideoTrack, VideoError> {
    let header = video.header(stream, header)?;
    Ok(VideoTrack::of(&header)?)
}

/// Where a media segment goes on the presentation's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// The producer time (epoch ms) that is decode time 0.
    pub origin_ms: u64,
    /// The earliest decode time (ticks) the segment may start at: the end
    /// of the one before it, so a clip's timeline never goes back.
    pub not_before: u64,
    /// The `mfhd` sequence number.
    pub sequence: u32,
}

/// `fragment` as `moof` + `mdat`, decoded from its producer time on, the
/// last frame lasting until `next_producer_ms` (the next fragment's
/// start) when that is known. Returns the segment and where it ends.
pub fn media_segment(
    video: &Video,
    stream: &Stream,
    fragment: &FragmentMeta,
    next_producer_ms: Option<u64>,
    placement: Placement,
) -> Result<(Vec<u8>, u64), VideoError> {
    let timing = Timing {
        next_producer_ms,
        origin_ms: placement.origin_ms,
    };
    with_samples(video, stream, fragment, timing, |_, start, timed| {
        let base = start.max(placement.not_before);
        let segment = mp4::media_segment(placement.sequence, base, &timed.samples)?;
        Ok((segment, base + timed.duration))
    })
}

/// What places a fragment's samples on a session's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The next fragment's start, which the last frame lasts until.
    pub next_producer_ms: Option<u64>,
    /// The producer time (epoch ms) that is decode time 0.
    pub origin_ms: u64,
}

/// Reads `fragment` and hands `write` its video track, its first
/// sample's decode time (ticks from the origin) and its samples: the
/// timing every container the fragment is packaged in shares.
pub fn with_samples<R>(
    video: &Video,
    stream: &Stream,
    fragment: &FragmentMeta,
    timing: Timing,
    write: impl FnOnce(&VideoTrack, u64, &FragmentSamples<'_>) -> Result<R, VideoError>,
) -> Result<R, VideoError> {
    let (header, body) = video.read(stream, fragment)?;
    let track = VideoTrack::of(&header)?;
    let frames =
        frames_of(&body, header.timecode_scale).map_err(|e| VideoError::Corrupt(e.to_string()))?;
    let next_start_ms = timing
        .next_producer_ms
        .map(|next| next as i64 - fragment.producer_ms as i64);
    let timed = mp4::samples(&body, &frames, track.number, next_start_ms)?;
    let start = (fragment.producer_ms as i64 - timing.origin_ms as i64)
        .saturating_mul(TICKS_PER_MS)
        .saturating_add(timed.first_decode);
    write(&track, u64::try_from(start).unwrap_or(0), &timed)
}

/// An `mfhd` sequence number for a fragment: its sequence, from 1.
pub fn sequence_number(seq: u64) -> u32 {
    u32::try_from(seq.saturating_add(1)).unwrap_or(u32::MAX)
}
