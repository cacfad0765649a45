//! The media segments an HLS session's token GETs, by its container:
//! the MP4 init and media fragments (shared with DASH, in
//! `streaming::fragments`) for FRAGMENTED_MP4, GetTSFragment's
//! self-contained MPEG-TS fragments for MPEG_TS. Each route serves only
//! its own container's sessions, so a player never mixes the two.

use runnel_video::{VideoError, ts};

use crate::video::fmp4::{self, Media, Timing};
use crate::video::streaming::Opened;
use crate::video::streaming::fragments::{self, Answer, session_fragment};
use crate::video::streaming::token::Container;

pub const MPEG_TS: &str = "video/mp2t";

pub fn mp4_init(opened: &Opened) -> Answer {
    require(opened, Container::FragmentedMp4)?;
    fragments::init(opened, Media::VideoAndAudio)
}

pub fn mp4_media(opened: &Opened) -> Answer {
    require(opened, Container::FragmentedMp4)?;
    fragments::media(opened, Media::VideoAndAudio)
}

/// One fragment as MPEG-TS, its timestamps the producer's times (wrapped
/// to 33 bits), the same decode times its MP4 media fragment has; its
/// AAC frames beside the video when ADTS can carry them.
pub fn ts_fragment(opened: &Opened) -> Answer {
    require(opened, Container::MpegTs)?;
    let (fragment, next) = session_fragment(opened)?;
    let timing = Timing {
        next_producer_ms: next,
        origin_ms: 0,
    };
    let segment =
        fmp4::with_samples(&opened.video, &opened.stream, &fragment, timing, |timed| {
            let audio = timed.tracks.audio.as_ref().zip(timed.audio.as_ref()).map(
                |(track, (start, audio))| ts::AudioRun {
                    track,
                    start: *start,
                    samples: &audio.samples,
                },
            );
            Ok(ts::media_segment(
                &timed.tracks.video,
                timed.start,
                &timed.video.samples,
                audio,
            )?)
        })?;
    Ok((MPEG_TS, segment))
}

fn require(opened: &Opened, container: Container) -> Result<(), VideoError> {
    let name = |c: Container| match c {
        Container::FragmentedMp4 => "FRAGMENTED_MP4",
        Container::MpegTs => "MPEG_TS",
    };
    let session = opened.session.container();
    if session != container {
        return Err(VideoError::InvalidArgument(format!(
            "This session's ContainerFormat is {}: its media is not served as {}",
            name(session),
            name(container)
        )));
    }
    Ok(())
}
