//! What a DASH session's token GETs: the manifest (the session's listing
//! placed on its timeline) and each AdaptationSet's MP4 fragments, which
//! `streaming::fragments` writes.

use runnel_video::{FragmentMeta, VideoError, fragment_number, now_ms};

use super::manifest::{self, AudioSet, Manifest, Presentation, Segment};
use crate::video::fmp4::{self, Media};
use crate::video::streaming::Opened;
use crate::video::streaming::fragments::{self, Answer, peak_bandwidth};
use crate::video::streaming::listing::listing;
use crate::video::streaming::token::{Anchor, Format, Mode};

/// Kinesis Video asks players to reload a live manifest every second.
const UPDATE_PERIOD_MS: u64 = 1000;
/// The least time-shift window a live manifest announces.
const MIN_TIME_SHIFT_MS: u64 = 1000;

pub fn manifest(opened: &Opened) -> Answer {
    let Opened {
        video,
        stream,
        session,
        token,
        ..
    } = opened;
    let Format::Dash {
        display_fragment_number,
        anchor,
    } = session.format
    else {
        return Err(VideoError::InvalidArgument(
            "The session token is not a DASH session's".into(),
        ));
    };
    let tracks = fmp4::tracks(video, stream, session.header)?;
    let track = &tracks.video;
    let now = now_ms();
    let listed = listing(video, stream, session, now)?;
    let fragments: Vec<&FragmentMeta> = listed.fragments.iter().map(|(f, _)| f).collect();
    let presentation = if session.mode == Mode::OnDemand || listed.ended {
        Presentation::Static
    } else {
        Presentation::Dynamic {
            availability_start_ms: anchor.wall_ms,
            publish_ms: now,
            update_period_ms: UPDATE_PERIOD_MS,
            time_shift_ms: time_shift(anchor, &fragments, now),
        }
    };
    let segments = fragments
        .iter()
        .enumerate()
        .map(|(i, f)| Segment {
            fragment_number: fragment_number(stream.id(), f.seq),
            start_ms: f.producer_ms,
            duration_ms: segment_duration(f, fragments.get(i + 1).copied()),
            shown_ms: session.display_timestamp.then(|| session.clock.at(f)),
        })
        .collect();
    let text = manifest::render(
        &Manifest {
            presentation,
            origin_ms: anchor.producer_ms,
            codecs: track.codecs(),
            resolution: track.resolution(),
            audio: tracks.audio.as_ref().map(|audio| AudioSet {
                codecs: audio.codecs(),
                sample_rate: audio.sample_rate,
                channels: audio.channels,
            }),
            bandwidth: peak_bandwidth(fragments.iter().copied()),
            show_numbers: display_fragment_number,
            segments,
        },
        token,
    );
    Ok((manifest::CONTENT_TYPE, text.into_bytes()))
}

pub fn init(opened: &Opened) -> Answer {
    fragments::init(opened, track(opened)?)
}

pub fn media(opened: &Opened) -> Answer {
    fragments::media(opened, track(opened)?)
}

/// The track a GET asks for, as the manifest's segment URLs name it:
/// `TrackNumber` 2 the audio, 1 or none the video.
fn track(opened: &Opened) -> Result<Media, VideoError> {
    match opened.track_number.as_deref() {
        None | Some("1") => Ok(Media::Video),
        Some("2") => Ok(Media::Audio),
        Some(other) => Err(VideoError::InvalidArgument(format!(
            "TrackNumber {other:?} is not a track of this session: 1 is its video, 2 its audio"
        ))),
    }
}

/// A fragment's length on the timeline: its own, cut short where the
/// next listed fragment starts sooner, since a timeline's segments may
/// not overlap (the media segment's last frame ends there too).
fn segment_duration(fragment: &FragmentMeta, next: Option<&FragmentMeta>) -> u64 {
    match next {
        Some(next) if next.producer_ms > fragment.producer_ms => fragment
            .duration_ms
            .min(next.producer_ms - fragment.producer_ms),
        _ => fragment.duration_ms,
    }
}

/// How far back a live window reaches: to the wall-clock moment its first
/// listed fragment is presented at, and at least the fragments' length.
fn time_shift(anchor: Anchor, fragments: &[&FragmentMeta], now_ms: u64) -> u64 {
    let span: u64 = fragments.iter().map(|f| f.duration_ms).sum();
    let since_first = fragments.first().map_or(0, |first| {
        let presented = (anchor.wall_ms + first.producer_ms).saturating_sub(anchor.producer_ms);
        now_ms.saturating_sub(presented)
    });
    since_first.max(span).max(MIN_TIME_SHIFT_MS)
}

#[cfg(test)]
mod tests {
    use runnel_video::store::segments::Location;

    use super::*;

    fn fragment(producer_ms: u64, duration_ms: u64) -> FragmentMeta {
        FragmentMeta {
            seq: 0,
            at: Location {
                segment: 0,
                offset: 0,
                len: 500_000,
            },
            header: 0,
            timecode_ms: 0,
            producer_ms,
            server_ms: producer_ms,
            duration_ms,
            frames: 60,
            keyframes: 1,
            frame_index: String::new(),
            encrypted: false,
            tags_len: 0,
        }
    }

    #[test]
    fn segments_end_where_the_next_listed_fragment_starts() {
        let first = fragment(10_000, 2_010);
        assert_eq!(
            segment_duration(&first, Some(&fragment(12_000, 2_000))),
            2_000
        );
        assert_eq!(
            segment_duration(&first, Some(&fragment(15_000, 2_000))),
            2_010
        );
        assert_eq!(
            segment_duration(&first, Some(&fragment(9_000, 2_000))),
            2_010
        );
        assert_eq!(segment_duration(&first, None), 2_010);
    }

    #[test]
    fn the_live_window_reaches_back_to_its_first_fragment() {
        // Producer time 10 000 was presented at wall time 100 000.
        let anchor = Anchor {
            producer_ms: 10_000,
            wall_ms: 100_000,
        };
        let listed = [fragment(12_000, 2_000), fragment(14_000, 2_000)];
        let refs: Vec<&FragmentMeta> = listed.iter().collect();
        assert_eq!(time_shift(anchor, &refs, 106_500), 4_500);
        // Never shorter than what is listed, nor than a second.
        assert_eq!(time_shift(anchor, &refs, 102_500), 4_000);
        assert_eq!(time_shift(anchor, &[], 102_500), 1_000);
    }
}
