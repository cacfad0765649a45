//! The playlists a session's token GETs; its MP4 fragments are
//! `streaming::fragments`, its MPEG-TS ones `ts`.

use runnel_video::{fragment_number, now_ms, ts};

use super::playlist::{self, Entry, MediaPlaylist};
use crate::video::fmp4;
use crate::video::streaming::Opened;
use crate::video::streaming::fragments::{Answer, peak_bandwidth};
use crate::video::streaming::listing::listing;
use crate::video::streaming::token::{Container, Mode};

pub fn master_playlist(opened: &Opened) -> Answer {
    let Opened {
        video,
        stream,
        session,
        token,
        ..
    } = opened;
    let tracks = fmp4::tracks(video, stream, session.header)?;
    let listed = listing(video, stream, session, now_ms())?;
    let bandwidth = peak_bandwidth(listed.fragments.iter().map(|(f, _)| f));
    // MPEG-TS fragments carry the audio only where ADTS can describe it.
    let codecs = match session.container() {
        Container::MpegTs if !tracks.audio.as_ref().is_some_and(ts::carries_audio) => {
            tracks.video.codecs()
        }
        Container::FragmentedMp4 | Container::MpegTs => tracks.codecs(),
    };
    let text = playlist::master(
        session.container(),
        bandwidth,
        &codecs,
        tracks.video.resolution(),
        token,
    );
    Ok((playlist::CONTENT_TYPE, text.into_bytes()))
}

pub fn media_playlist(opened: &Opened) -> Answer {
    let Opened {
        video,
        stream,
        session,
        token,
        ..
    } = opened;
    let listed = listing(video, stream, session, now_ms())?;
    let playlist = MediaPlaylist {
        media_sequence: listed.media_sequence,
        discontinuity_sequence: listed.discontinuity_sequence,
        vod: session.mode == Mode::OnDemand,
        ended: listed.ended,
        container: session.container(),
        entries: listed
            .fragments
            .iter()
            .map(|(f, discontinuity)| Entry {
                fragment_number: fragment_number(stream.id(), f.seq),
                duration_ms: f.duration_ms,
                discontinuity: *discontinuity,
                date_ms: session.display_timestamp.then(|| session.clock.at(f)),
            })
            .collect(),
    };
    let text = playlist::media(&playlist, token);
    Ok((playlist::CONTENT_TYPE, text.into_bytes()))
}
