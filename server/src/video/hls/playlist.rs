//! The HLS playlists' text (RFC 8216), with URIs relative to the master
//! playlist's, each carrying the session token. The session's container
//! decides the segments: fragmented MP4 behind an `EXT-X-MAP` init
//! segment, or self-contained MPEG-TS fragments, named as Kinesis Video
//! names them.

use std::fmt::Write;

use crate::video::streaming::text::date_time;
use crate::video::streaming::token::Container;

pub const CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

pub struct Entry {
    pub fragment_number: String,
    pub duration_ms: u64,
    /// A discontinuity tag before this fragment.
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME`, when the session displays timestamps.
    pub date_ms: Option<u64>,
}

pub struct MediaPlaylist {
    pub media_sequence: u64,
    pub discontinuity_sequence: Option<u64>,
    /// ON_DEMAND's fixed list.
    pub vod: bool,
    /// No fragment will be added: `EXT-X-ENDLIST`.
    pub ended: bool,
    pub container: Container,
    pub entries: Vec<Entry>,
}

/// The lowest protocol version whose features a playlist uses: MP4
/// segments need version 6 or later for `EXT-X-MAP` (7 is what Kinesis
/// Video states); MPEG-TS playlists need only version 3's decimal
/// durations, which keeps them open to the older players TS is for.
fn version(container: Container) -> u8 {
    match container {
        Container::FragmentedMp4 => 7,
        Container::MpegTs => 3,
    }
}

pub fn master(
    container: Container,
    bandwidth: u64,
    codecs: &str,
    resolution: Option<(u16, u16)>,
    token: &str,
) -> String {
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        version(container)
    );
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{codecs}\""
    );
    if let Some((width, height)) = resolution {
        let _ = write!(out, ",RESOLUTION={width}x{height}");
    }
    let _ = write!(out, "\ngetHLSMediaPlaylist.m3u8?SessionToken={token}\n");
    out
}

pub fn media(playlist: &MediaPlaylist, token: &str) -> String {
    // Every EXTINF, rounded, must be at most the target duration.
    let target = playlist
        .entries
        .iter()
        .map(|e| e.duration_ms.div_ceil(1000))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{}\n", version(playlist.container));
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", playlist.media_sequence);
    if let Some(sequence) = playlist.discontinuity_sequence {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{sequence}");
    }
    if playlist.vod {
        out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let segment = match playlist.container {
        Container::FragmentedMp4 => {
            let _ = writeln!(
                out,
                "#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?SessionToken={token}\""
            );
            "getMP4MediaFragment.mp4"
        }
        Container::MpegTs => "getTSFragment.ts",
    };
    for entry in &playlist.entries {
        if entry.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(date) = entry.date_ms.and_then(date_time) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{date}");
        }
        let _ = writeln!(
            out,
            "#EXTINF:{}.{:03},\n{segment}?FragmentNumber={}&SessionToken={token}",
            entry.duration_ms / 1000,
            entry.duration_ms % 1000,
            entry.fragment_number
        );
    }
    if playlist.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_playlist_names_the_codec_and_the_media_playlist() {
        assert_eq!(
            master(
                Container::FragmentedMp4,
                2_000_000,
                "avc1.4d401e",
                Some((640, 360)),
                "T"
            ),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.4d401e\",RESOLUTION=640x360\n\
             getHLSMediaPlaylist.m3u8?SessionToken=T\n"
        );
        assert!(
            !master(Container::FragmentedMp4, 1, "avc1.42c01f", None, "T").contains("RESOLUTION")
        );
        assert!(
            master(Container::MpegTs, 1, "avc1.42c01f", None, "T")
                .starts_with("#EXTM3U\n#EXT-X-VERSION:3\n")
        );
    }

    #[test]
    fn a_media_playlist_lists_fragments_after_the_init_segment() {
        let playlist = MediaPlaylist {
            media_sequence: 4,
            discontinuity_sequence: None,
            vod: true,
            ended: true,
            container: Container::FragmentedMp4,
            entries: vec![
                Entry {
                    fragment_number: "11".into(),
                    duration_ms: 2000,
                    discontinuity: false,
                    date_ms: Some(1_700_000_000_000),
                },
                Entry {
                    fragment_number: "12".into(),
                    duration_ms: 2033,
                    discontinuity: true,
                    date_ms: Some(1_700_000_002_000),
                },
            ],
        };
        assert_eq!(
            media(&playlist, "T"),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:4\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"getMP4InitFragment.mp4?SessionToken=T\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n\
             #EXTINF:2.000,\ngetMP4MediaFragment.mp4?FragmentNumber=11&SessionToken=T\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n\
             #EXTINF:2.033,\ngetMP4MediaFragment.mp4?FragmentNumber=12&SessionToken=T\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn an_mpeg_ts_playlist_names_ts_fragments_and_no_init_segment() {
        let playlist = MediaPlaylist {
            media_sequence: 0,
            discontinuity_sequence: None,
            vod: false,
            ended: false,
            container: Container::MpegTs,
            entries: vec![Entry {
                fragment_number: "11".into(),
                duration_ms: 2000,
                discontinuity: false,
                date_ms: None,
            }],
        };
        assert_eq!(
            media(&playlist, "T"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXTINF:2.000,\ngetTSFragment.ts?FragmentNumber=11&SessionToken=T\n"
        );
    }

    #[test]
    fn a_live_playlist_has_no_end_and_may_be_empty() {
        let playlist = MediaPlaylist {
            media_sequence: 9,
            discontinuity_sequence: Some(9),
            vod: false,
            ended: false,
            container: Container::FragmentedMp4,
            entries: Vec::new(),
        };
        let text = media(&playlist, "T");
        assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:9\n"), "{text}");
        assert!(
            !text.contains("ENDLIST") && !text.contains("PLAYLIST-TYPE"),
            "{text}"
        );
    }
}
