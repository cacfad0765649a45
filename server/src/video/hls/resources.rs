//! What the session token's GETs answer: the playlists and the MP4
//! fragments, each checked against the session.

use runnel_video::mp4;
use runnel_video::{Stream, Video, VideoError, now_ms, parse_fragment_number};

use super::listing::listing;
use super::playlist::{self, Entry, MediaPlaylist};
use super::token::{Mode, Session};
use crate::video::fmp4::{self, Placement};

/// The master playlist's BANDWIDTH when no fragment is listed yet.
const DEFAULT_BANDWIDTH: u64 = 2_000_000;
/// Fragments the master playlist's BANDWIDTH is measured over.
const BANDWIDTH_SAMPLE: usize = 10;

type Answer = Result<(&'static str, Vec<u8>), VideoError>;

pub fn master_playlist(video: &Video, stream: &Stream, session: &Session, token: &str) -> Answer {
    let track = fmp4::video_track(video, stream, session.header)?;
    let listed = listing(video, stream, session, now_ms())?;
    // The peak rate, as BANDWIDTH means.
    let bandwidth = listed
        .fragments
        .iter()
        .take(BANDWIDTH_SAMPLE)
        .map(|(f, _)| f.at.len * 8 * 1000 / f.duration_ms.max(1))
        .max()
        .unwrap_or(DEFAULT_BANDWIDTH);
    let text = playlist::master(bandwidth, &track.codecs(), track.resolution(), token);
    Ok((playlist::CONTENT_TYPE, text.into_bytes()))
}

pub fn media_playlist(video: &Video, stream: &Stream, session: &Session, token: &str) -> Answer {
    let listed = listing(video, stream, session, now_ms())?;
    let playlist = MediaPlaylist {
        media_sequence: listed.media_sequence,
        discontinuity_sequence: listed.discontinuity_sequence,
        vod: session.mode == Mode::OnDemand,
        ended: listed.ended,
        entries: listed
            .fragments
            .iter()
            .map(|(f, discontinuity)| Entry {
                fragment_number: video.fragment_number(stream, f.seq),
                duration_ms: f.duration_ms,
                discontinuity: *discontinuity,
                date_ms: session.display_timestamp.then(|| session.clock.at(f)),
            })
            .collect(),
    };
    let text = playlist::media(&playlist, token);
    Ok((playlist::CONTENT_TYPE, text.into_bytes()))
}

/// The init segment, from the Info and Tracks the session began with.
pub fn init_fragment(video: &Video, stream: &Stream, session: &Session) -> Answer {
    let track = fmp4::video_track(video, stream, session.header)?;
    Ok(("video/mp4", mp4::init_segment(&track, None)?))
}

/// One fragment as `moof` + `mdat`, its decode times the producer's, so
/// that the fragments of a session follow one another on one timeline.
pub fn media_fragment(video: &Video, stream: &Stream, session: &Session, number: &str) -> Answer {
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
    if session
        .range
        .is_some_and(|range| !range.contains(&fragment))
    {
        return Err(not_found());
    }
    let next = video.fragment(stream, seq + 1)?.map(|f| f.producer_ms);
    let placement = Placement {
        origin_ms: 0,
        not_before: 0,
        sequence: fmp4::sequence_number(seq),
    };
    let (segment, _) = fmp4::media_segment(video, stream, &fragment, next, placement)?;
    Ok(("video/mp4", segment))
}
