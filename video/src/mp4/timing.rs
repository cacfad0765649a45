//! From a stored fragment's frames to MP4 samples: Matroska gives each
//! frame its presentation time, in decode order; MP4 wants decode times
//! (as durations) and, for reordered frames, the presentation offset.

use super::segment::Sample;
use super::{Mp4Error, TICKS_PER_MS};
use crate::mkv::Frame;

/// A frame duration for a fragment of one frame with nothing after it:
/// 1/30 s.
const LONE_FRAME_TICKS: i64 = 3000;
/// A gap to the next fragment longer than this many average frames is a
/// pause in the recording, not the last frame's duration.
const MAX_GAP_FRAMES: i64 = 10;

/// The video samples of one stored fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentSamples<'a> {
    /// The first sample's decode time, in ticks from the fragment's
    /// start (its Cluster's timecode).
    pub first_decode: i64,
    pub samples: Vec<Sample<'a>>,
    /// Ticks from the first sample's decode time to the end of the last.
    pub duration: u64,
}

/// The samples of `track` among `frames` (as `mkv::frames_of` reads them
/// from `body`). `next_start_ms` is where the following fragment's first
/// frame is, in ms from this fragment's start, when there is one: the
/// last sample lasts until then; otherwise as long as the average frame.
pub fn samples<'a>(
    body: &'a [u8],
    frames: &[Frame],
    track: u64,
    next_start_ms: Option<i64>,
) -> Result<FragmentSamples<'a>, Mp4Error> {
    let frames: Vec<&Frame> = frames.iter().filter(|f| f.track == track).collect();
    let presented: Vec<i64> = frames
        .iter()
        .map(|f| f.timecode_ms.saturating_mul(TICKS_PER_MS))
        .collect();
    // Decode times are the presentation times in order: with B-frames
    // each frame is shown at or after the slot it is decoded in.
    let mut decoded = presented.clone();
    decoded.sort_unstable();
    let (Some(&first), Some(&last)) = (decoded.first(), decoded.last()) else {
        return Ok(FragmentSamples {
            first_decode: 0,
            samples: Vec::new(),
            duration: 0,
        });
    };
    let average = match decoded.len() {
        1 => LONE_FRAME_TICKS,
        n => ((last - first) / (n as i64 - 1)).max(1),
    };
    let last_duration = next_start_ms
        .map(|ms| ms.saturating_mul(TICKS_PER_MS) - last)
        .filter(|gap| *gap > 0 && *gap <= average.saturating_mul(MAX_GAP_FRAMES))
        .unwrap_or(average);
    let mut samples = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let start = frame.offset as usize;
        let data = body
            .get(start..start + frame.len as usize)
            .ok_or(Mp4Error::FrameOutOfRange)?;
        let duration = match decoded.get(i + 1) {
            Some(next) => next - decoded[i],
            None => last_duration,
        };
        samples.push(Sample {
            data,
            duration: u32::try_from(duration).unwrap_or(u32::MAX),
            composition_offset: i32::try_from(presented[i] - decoded[i]).unwrap_or(0),
            keyframe: frame.keyframe,
        });
    }
    let duration = samples.iter().map(|s| u64::from(s.duration)).sum();
    Ok(FragmentSamples {
        first_decode: first,
        samples,
        duration,
    })
}
