//! The MP4 answers HLS and DASH share: the init fragment and one stored
//! fragment as a media fragment, each checked against the session, and
//! the bit rate a playlist or manifest announces.

use runnel_video::mp4;
use runnel_video::{FragmentMeta, VideoError, parse_fragment_number};

use super::Opened;
use crate::video::fmp4::{self, Media, Placement};

/// The announced bit rate when no fragment is listed yet.
const DEFAULT_BANDWIDTH: u64 = 2_000_000;
/// Fragments the announced bit rate is measured over.
const BANDWIDTH_SAMPLE: usize = 10;

pub const MP4: &str = "video/mp4";

pub type Answer = Result<(&'static str, Vec<u8>), VideoError>;

/// The peak rate of the first listed fragments, in bits per second, as
/// HLS's BANDWIDTH and DASH's `@bandwidth` both mean it.
pub fn peak_bandwidth<'a>(listed: impl IntoIterator<Item = &'a FragmentMeta>) -> u64 {
    listed
        .into_iter()
        .take(BANDWIDTH_SAMPLE)
        .map(|f| f.at.len * 8 * 1000 / f.duration_ms.max(1))
        .max()
        .unwrap_or(DEFAULT_BANDWIDTH)
}

/// The init segment of `media`, from the Info and Tracks the session
/// began with.
pub fn init(opened: &Opened, media: Media) -> Answer {
    let tracks = fmp4::tracks(&opened.video, &opened.stream, opened.session.header)?;
    let segment = match media {
        Media::VideoAndAudio => mp4::init_segment(&tracks, None)?,
        Media::Video => mp4::init_segment(&tracks.video_only(), None)?,
        Media::Audio => {
            mp4::audio_init_segment(tracks.audio.as_ref().ok_or_else(fmp4::no_audio_track)?)?
        }
    };
    Ok((MP4, segment))
}

/// One fragment's `media` as `moof` + `mdat`, its decode times the
/// producer's, so that the fragments of a session follow one another on
/// one timeline.
pub fn media(opened: &Opened, media: Media) -> Answer {
    let (fragment, next) = session_fragment(opened)?;
    let placement = Placement {
        origin_ms: 0,
        not_before: 0,
        audio_not_before: 0,
        sequence: fmp4::sequence_number(fragment.seq),
        media,
    };
    let (segment, _) =
        fmp4::media_segment(&opened.video, &opened.stream, &fragment, next, placement)?;
    Ok((MP4, segment))
}

/// The fragment a GET's FragmentNumber names, if it is in the session,
/// and the producer time of the one after it.
pub fn session_fragment(opened: &Opened) -> Result<(FragmentMeta, Option<u64>), VideoError> {
    let number = opened
        .fragment_number
        .as_deref()
        .ok_or_else(|| VideoError::InvalidArgument("FragmentNumber is required".into()))?;
    let (video, stream) = (&opened.video, &opened.stream);
    let not_found = || VideoError::NotFound(format!("Fragment {number} is not in this session"));
    let seq = match parse_fragment_number(number) {
        Some((id, seq)) if id == stream.id() => seq,
        Some(_) => return Err(not_found()),
        None => {
            return Err(VideoError::InvalidArgument(format!(
                "FragmentNumber {number:?} is not a fragment number"
            )));
        }
    };
    let fragment = video.fragment(stream, seq)?.ok_or_else(not_found)?;
    if opened
        .session
        .range
        .is_some_and(|range| !range.contains(&fragment))
    {
        return Err(not_found());
    }
    let next = video.fragment(stream, seq + 1)?.map(|f| f.producer_ms);
    Ok((fragment, next))
}
