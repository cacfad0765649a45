//! Stored fragments as fragmented MP4, the part GetClip, HLS and DASH
//! share: which streams may be played this way, their tracks, one
//! fragment as a media segment, and the sample timing HLS's MPEG-TS
//! segments share with it.

use axum::http::StatusCode;
use runnel_video::mkv::frames_of;
use runnel_video::mp4::{
    self, AUDIO_TRACK_ID, AudioSamples, FragmentSamples, Run, TICKS_PER_MS, Tracks, VIDEO_TRACK_ID,
    VideoTrack,
};
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
    Ok(tracks(video, stream, header)?.video)
}

/// The tracks MP4 output holds of the Info and Tracks numbered `header`.
pub fn tracks(video: &Video, stream: &Stream, header: u64) -> Result<Tracks, VideoError> {
    let header = video.header(stream, header)?;
    Ok(Tracks::of(&header)?)
}

/// Where a media segment goes on the presentation's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// The producer time (epoch ms) that is decode time 0.
    pub origin_ms: u64,
    /// The earliest decode time (ticks) the segment may start at: the end
    /// of the one before it, so a clip's timeline never goes back.
    pub not_before: u64,
    /// The same for the audio, in its own timescale.
    pub audio_not_before: u64,
    /// The `mfhd` sequence number.
    pub sequence: u32,
    pub media: Media,
}

/// Which of a stream's tracks a media segment holds: both for GetClip and
/// HLS, one each for DASH, whose players take no muxed representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    VideoAndAudio,
    Video,
    Audio,
}

/// Where a media segment's tracks end: the next one's `not_before`s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ends {
    pub video: u64,
    pub audio: u64,
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
) -> Result<(Vec<u8>, Ends), VideoError> {
    let timing = Timing {
        next_producer_ms,
        origin_ms: placement.origin_ms,
    };
    with_samples(video, stream, fragment, timing, |timed| {
        let base = timed.start.max(placement.not_before);
        let mut runs = Vec::with_capacity(2);
        let mut ends = Ends {
            video: placement.not_before,
            audio: placement.audio_not_before,
        };
        if placement.media != Media::Audio {
            runs.push(Run {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: base,
                samples: &timed.video.samples,
            });
            ends.video = base + timed.video.duration;
        }
        let audio = timed
            .audio
            .as_ref()
            .filter(|_| placement.media != Media::Video);
        match audio {
            Some((start, audio)) if !audio.samples.is_empty() => {
                let base = (*start).max(placement.audio_not_before);
                runs.push(Run {
                    track_id: AUDIO_TRACK_ID,
                    base_decode_time: base,
                    samples: &audio.samples,
                });
                ends.audio = base + audio.samples.len() as u64 * u64::from(mp4::SAMPLES_PER_FRAME);
            }
            // A fragment without audio frames is still a segment of the
            // audio representation: an empty one, at its time.
            Some((start, _)) if placement.media == Media::Audio => runs.push(Run {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: (*start).max(placement.audio_not_before),
                samples: &[],
            }),
            _ => {}
        }
        if runs.is_empty() {
            return Err(no_audio_track());
        }
        let segment = mp4::media_segment(placement.sequence, &runs)?;
        Ok((segment, ends))
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

/// A fragment's samples, timed.
pub struct Timed<'a> {
    pub tracks: Tracks,
    /// The first video sample's decode time, in ticks from the origin.
    pub start: u64,
    pub video: FragmentSamples<'a>,
    /// The first audio sample's decode time (ticks of the audio's
    /// timescale from the origin) and the audio samples, when the stream
    /// has an AAC track.
    pub audio: Option<(u64, AudioSamples<'a>)>,
}

/// Reads `fragment` and hands `write` its samples, timed: the timing
/// every container the fragment is packaged in shares.
pub fn with_samples<R>(
    video: &Video,
    stream: &Stream,
    fragment: &FragmentMeta,
    timing: Timing,
    write: impl FnOnce(&Timed<'_>) -> Result<R, VideoError>,
) -> Result<R, VideoError> {
    let (header, body) = video.read(stream, fragment)?;
    let tracks = Tracks::of(&header)?;
    let frames =
        frames_of(&body, header.timecode_scale).map_err(|e| VideoError::Corrupt(e.to_string()))?;
    let next_start_ms = timing
        .next_producer_ms
        .map(|next| next as i64 - fragment.producer_ms as i64);
    let video_samples = mp4::samples(&body, &frames, tracks.video.number, next_start_ms)?;
    let from_origin_ms = fragment.producer_ms as i64 - timing.origin_ms as i64;
    let start = from_origin_ms
        .saturating_mul(TICKS_PER_MS)
        .saturating_add(video_samples.first_decode);
    let audio = tracks.audio.as_ref().map(|track| {
        let samples = mp4::audio_samples(&body, &frames, track.number);
        let start = track.ticks(from_origin_ms.saturating_add(samples.first_ms));
        (u64::try_from(start).unwrap_or(0), samples)
    });
    write(&Timed {
        tracks,
        start: u64::try_from(start).unwrap_or(0),
        video: video_samples,
        audio,
    })
}

/// Asked for the audio of a stream that has none that plays as MP4.
pub fn no_audio_track() -> VideoError {
    VideoError::NotFound("The stream has no AAC audio track to play".into())
}

/// An `mfhd` sequence number for a fragment: its sequence, from 1.
pub fn sequence_number(seq: u64) -> u32 {
    u32::try_from(seq.saturating_add(1)).unwrap_or(u32::MAX)
}
