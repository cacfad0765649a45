//! Fragmented MP4 (ISO/IEC 14496-12) for GetClip and HLS: an init segment
//! (`ftyp` + `moov` with empty sample tables and `mvex`) and one media
//! segment (`moof` + `mdat`) per stored fragment. The tracks written are
//! the first whose codec is H.264 or H.265 and, when there is one, the
//! first AAC track; other tracks are left out. Matroska keeps H.264/H.265
//! frames as length-prefixed NAL units, exactly what MP4 samples hold, and
//! its CodecPrivate is the `avcC`/`hvcC` payload (for AAC, the
//! AudioSpecificConfig `esds` carries), so frames and configuration pass
//! through as they are.
//!
//! Written by hand rather than with a crate: the one maintained fMP4
//! writer (`mp4-atom`) brings `num`, `derive_more`, `paste` and a second
//! major of `thiserror`, and changes its box structs between minor
//! versions, for the dozen write-only boxes needed here.

mod audio;
mod boxes;
mod init;
mod segment;
mod timing;
mod track;

#[cfg(test)]
mod tests;

pub use audio::{Adts, AudioSamples, AudioTrack, SAMPLES_PER_FRAME, audio_samples};
pub use init::{audio_init_segment, init_segment};
pub use segment::{Run, Sample, media_segment};
pub use timing::{FragmentSamples, samples};
pub use track::{Codec, Tracks, VideoTrack};

/// The `tkhd`/`tfhd` ids of the tracks written.
pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;

/// Ticks per second of the video track: the customary 90 kHz, in which
/// 30 and 25 fps frame durations are whole numbers.
pub const TIMESCALE: u32 = 90_000;
/// Ticks per millisecond of `TIMESCALE`.
pub const TICKS_PER_MS: i64 = (TIMESCALE / 1000) as i64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    #[error(
        "no track is H.264 (V_MPEG4/ISO/AVC) or H.265 (V_MPEGH/ISO/HEVC); the codecs are [{0}]"
    )]
    UnsupportedCodec(String),
    #[error("track {0} has no codec private data")]
    MissingCodecPrivate(u64),
    #[error("the codec private data of track {track} is not a valid {record}")]
    InvalidCodecPrivate { track: u64, record: &'static str },
    #[error(
        "the video or audio track changes its codec or codec private data within the requested media; one MP4 holds one"
    )]
    CodecChanged,
    #[error("a frame lies outside its fragment's bytes")]
    FrameOutOfRange,
    #[error("the {0} box is over 4 GiB")]
    TooLarge(String),
}
