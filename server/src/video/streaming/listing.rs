//! Which fragments a session's media playlist or manifest lists at a
//! given moment: LIVE the newest, ON_DEMAND the oldest of its range,
//! LIVE_REPLAY those of its range that a clock started at the session's
//! creation has reached.

use runnel_video::{FragmentMeta, Stream, Video, VideoError};

use super::token::{DiscontinuityMode, Mode, Session};
use crate::video::selector::fragments_in;

/// ON_DISCONTINUITY marks gaps and overlaps longer than this.
const GAP_MS: u64 = 50;

pub struct Listing {
    pub media_sequence: u64,
    pub discontinuity_sequence: Option<u64>,
    /// The fragments, each with whether a discontinuity precedes it.
    pub fragments: Vec<(FragmentMeta, bool)>,
    pub ended: bool,
}

pub fn listing(
    video: &Video,
    stream: &Stream,
    session: &Session,
    now_ms: u64,
) -> Result<Listing, VideoError> {
    let max = session.max_results as usize;
    let (media_sequence, fragments, ended) = match (session.mode, &session.range) {
        (Mode::OnDemand, Some(range)) => {
            let mut found = fragments_in(video, stream, range)?;
            found.truncate(max);
            (0, found, true)
        }
        (Mode::LiveReplay, Some(range)) => {
            let replayed_to = range
                .start_ms
                .saturating_add(now_ms.saturating_sub(session.created_ms));
            let found = fragments_in(video, stream, range)?;
            let reached = found.partition_point(|f| range.clock.at(f) <= replayed_to);
            let from = reached.saturating_sub(max);
            let ended = range.end_ms.is_some_and(|end| replayed_to >= end);
            (from as u64, found[from..reached].to_vec(), ended)
        }
        // LIVE: a fragment's sequence is its media sequence number, so a
        // player reloading the playlist finds each where it was.
        _ => {
            let latest = video.latest_fragments(stream, max)?;
            let first = latest
                .first()
                .map_or_else(|| stream.persisted_until(), |f| f.seq);
            (first, latest, false)
        }
    };
    let mut listed = Vec::with_capacity(fragments.len());
    let mut previous: Option<&FragmentMeta> = None;
    for fragment in &fragments {
        let discontinuity = match (session.discontinuity(), previous) {
            (_, None) | (DiscontinuityMode::Never, _) => false,
            (DiscontinuityMode::Always, Some(_)) => true,
            (DiscontinuityMode::OnDiscontinuity, Some(p)) => {
                (p.producer_ms + p.duration_ms).abs_diff(fragment.producer_ms) > GAP_MS
            }
        };
        listed.push((fragment.clone(), discontinuity));
        previous = Some(fragment);
    }
    // With a discontinuity between every two fragments, those before the
    // first listed number as many as the fragments before it.
    let discontinuity_sequence = (session.discontinuity() == DiscontinuityMode::Always
        && session.mode != Mode::OnDemand)
        .then_some(media_sequence);
    Ok(Listing {
        media_sequence,
        discontinuity_sequence,
        fragments: listed,
        ended,
    })
}
