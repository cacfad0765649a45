//! The MPEG-DASH manifest's text (ISO/IEC 23009-1): one Period, a video
//! AdaptationSet and, when the stream has AAC audio, an audio one, each
//! with one Representation whose SegmentList names each stored fragment
//! by its fragment number (the audio's with `TrackNumber=2`), with a
//! SegmentTimeline giving each its own start and duration. Both sets
//! share the timeline: a fragment is one segment of each.
//!
//! A SegmentList rather than a SegmentTemplate: `$Number$` counts up by
//! one per segment, and a session's fragments are not numbered so (cut
//! Clusters leave sequence gaps, producer-time order deduplicates and
//! reorders), while a name per segment lets each GET find its fragment
//! without listing the session again. The isoff-main profile allows
//! SegmentList (isoff-live requires templates). URIs are relative to the
//! manifest's and carry the session token.

use std::fmt::Write;

use crate::video::streaming::text::{date_time, duration};

pub const CONTENT_TYPE: &str = "application/dash+xml";
/// The namespace of the `kvs:fn` and `kvs:ts` attributes.
pub const KVS_NAMESPACE: &str = "https://kinesisvideo.amazonaws.com/dash";

/// Ticks per second of the SegmentTimeline: fragments are stored to the
/// millisecond.
const TIMESCALE: u64 = 1000;

pub struct Segment {
    pub fragment_number: String,
    /// Producer time (epoch ms), where the media fragment's decode time
    /// puts it.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// `kvs:ts`: the fragment's time by the session's clock.
    pub shown_ms: Option<u64>,
}

pub enum Presentation {
    /// Every fragment the session will list is listed.
    Static,
    /// A live window: players reload the manifest for more.
    Dynamic {
        /// The wall-clock moment of presentation time 0.
        availability_start_ms: u64,
        publish_ms: u64,
        update_period_ms: u64,
        time_shift_ms: u64,
    },
}

/// The audio AdaptationSet's attributes.
pub struct AudioSet {
    pub codecs: String,
    pub sample_rate: u32,
    pub channels: u16,
}

/// The audio Representation's `@bandwidth`, which the schema requires:
/// what AAC-LC encoders default to per channel. Players rank
/// representations within a set by it, and this set has one.
const AUDIO_BANDWIDTH_PER_CHANNEL: u64 = 64_000;

pub struct Manifest {
    pub presentation: Presentation,
    /// The producer time that is presentation time 0.
    pub origin_ms: u64,
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
    pub bandwidth: u64,
    pub audio: Option<AudioSet>,
    /// `kvs:fn` on each `S`.
    pub show_numbers: bool,
    pub segments: Vec<Segment>,
}

pub fn render(manifest: &Manifest, token: &str) -> String {
    let longest = manifest
        .segments
        .iter()
        .map(|s| s.duration_ms)
        .max()
        .unwrap_or(1000)
        .max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:kvs=\"{KVS_NAMESPACE}\" \
         profiles=\"urn:mpeg:dash:profile:isoff-main:2011\""
    );
    match &manifest.presentation {
        Presentation::Static => {
            let end = manifest
                .segments
                .iter()
                .map(|s| s.start_ms + s.duration_ms)
                .max()
                .unwrap_or(manifest.origin_ms);
            let _ = write!(
                out,
                " type=\"static\" mediaPresentationDuration=\"{}\"",
                duration(end.saturating_sub(manifest.origin_ms))
            );
        }
        Presentation::Dynamic {
            availability_start_ms,
            publish_ms,
            update_period_ms,
            time_shift_ms,
        } => {
            let date = |ms: u64| date_time(ms).unwrap_or_default();
            let _ = write!(
                out,
                " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
                 minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\"",
                date(*availability_start_ms),
                date(*publish_ms),
                duration(*update_period_ms),
                duration(*time_shift_ms)
            );
        }
    }
    let _ = writeln!(out, " minBufferTime=\"{}\">", duration(longest));
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    let _ = write!(
        out,
        "    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" codecs=\"{}\"",
        escape(&manifest.codecs)
    );
    if let Some((width, height)) = manifest.resolution {
        let _ = write!(out, " width=\"{width}\" height=\"{height}\"");
    }
    out.push_str(" segmentAlignment=\"true\" startWithSAP=\"1\">\n");
    let _ = writeln!(
        out,
        "      <Representation id=\"1\" bandwidth=\"{}\">",
        manifest.bandwidth
    );
    segment_list(&mut out, manifest, token, "");
    out.push_str("      </Representation>\n    </AdaptationSet>\n");
    if let Some(audio) = &manifest.audio {
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"1\" contentType=\"audio\" mimeType=\"audio/mp4\" codecs=\"{}\" \
             audioSamplingRate=\"{}\" lang=\"und\" segmentAlignment=\"true\" startWithSAP=\"1\">",
            escape(&audio.codecs),
            audio.sample_rate
        );
        let _ = writeln!(
            out,
            "      <AudioChannelConfiguration \
             schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
            audio.channels
        );
        let _ = writeln!(
            out,
            "      <Representation id=\"2\" bandwidth=\"{}\">",
            AUDIO_BANDWIDTH_PER_CHANNEL * u64::from(audio.channels.max(1))
        );
        segment_list(&mut out, manifest, token, "&amp;TrackNumber=2");
        out.push_str("      </Representation>\n    </AdaptationSet>\n");
    }
    out.push_str("  </Period>\n");
    // A live player keeps its clock to the server's: the manifest carries
    // the server's time itself (ISO/IEC 23009-1's `direct` scheme), so a
    // player needs no time server of its own (dash.js otherwise asks a
    // public one).
    if let Presentation::Dynamic { publish_ms, .. } = &manifest.presentation {
        let _ = writeln!(
            out,
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>",
            date_time(*publish_ms).unwrap_or_default()
        );
    }
    out.push_str("</MPD>\n");
    out
}

/// A Representation's SegmentList: the init fragment, the timeline and
/// a URL per fragment, each URL's query ending in `track` (already
/// escaped).
fn segment_list(out: &mut String, manifest: &Manifest, token: &str, track: &str) {
    let _ = writeln!(
        out,
        "        <SegmentList timescale=\"{TIMESCALE}\" presentationTimeOffset=\"{}\">",
        manifest.origin_ms
    );
    let _ = writeln!(
        out,
        "          <Initialization sourceURL=\"getMP4InitFragment.mp4?SessionToken={}{track}\"/>",
        escape(token)
    );
    // The schema wants at least one S in a SegmentTimeline: an empty live
    // window has none, and no SegmentURL either.
    if !manifest.segments.is_empty() {
        out.push_str("          <SegmentTimeline>\n");
        for segment in &manifest.segments {
            let _ = write!(
                out,
                "            <S t=\"{}\" d=\"{}\"",
                segment.start_ms, segment.duration_ms
            );
            if manifest.show_numbers {
                let _ = write!(out, " kvs:fn=\"{}\"", escape(&segment.fragment_number));
            }
            if let Some(shown) = segment.shown_ms {
                let _ = write!(out, " kvs:ts=\"{shown}\"");
            }
            out.push_str("/>\n");
        }
        out.push_str("          </SegmentTimeline>\n");
    }
    for segment in &manifest.segments {
        let _ = writeln!(
            out,
            "          <SegmentURL media=\"getMP4MediaFragment.mp4?FragmentNumber={}&amp;SessionToken={}{track}\"/>",
            escape(&segment.fragment_number),
            escape(token)
        );
    }
    out.push_str("        </SegmentList>\n");
}

/// Text safe inside a double-quoted attribute. Tokens, numbers and codec
/// strings need none of it today; the manifest stays well-formed if that
/// changes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments() -> Vec<Segment> {
        vec![
            Segment {
                fragment_number: "11".into(),
                start_ms: 1_700_000_000_000,
                duration_ms: 2000,
                shown_ms: Some(1_700_000_000_000),
            },
            Segment {
                fragment_number: "12".into(),
                start_ms: 1_700_000_002_000,
                duration_ms: 2033,
                shown_ms: Some(1_700_000_002_000),
            },
        ]
    }

    fn on_demand() -> Manifest {
        Manifest {
            presentation: Presentation::Static,
            origin_ms: 1_700_000_000_000,
            codecs: "avc1.4d401e".into(),
            resolution: Some((640, 360)),
            bandwidth: 2_000_000,
            audio: None,
            show_numbers: true,
            segments: segments(),
        }
    }

    #[test]
    fn an_on_demand_manifest_lists_each_fragment_with_its_own_time() {
        assert_eq!(
            render(&on_demand(), "T"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             xmlns:kvs=\"https://kinesisvideo.amazonaws.com/dash\" \
             profiles=\"urn:mpeg:dash:profile:isoff-main:2011\" type=\"static\" \
             mediaPresentationDuration=\"PT4.033S\" minBufferTime=\"PT2.033S\">\n\
             \x20 <Period id=\"0\" start=\"PT0S\">\n\
             \x20   <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" \
             codecs=\"avc1.4d401e\" width=\"640\" height=\"360\" segmentAlignment=\"true\" \
             startWithSAP=\"1\">\n\
             \x20     <Representation id=\"1\" bandwidth=\"2000000\">\n\
             \x20       <SegmentList timescale=\"1000\" presentationTimeOffset=\"1700000000000\">\n\
             \x20         <Initialization sourceURL=\"getMP4InitFragment.mp4?SessionToken=T\"/>\n\
             \x20         <SegmentTimeline>\n\
             \x20           <S t=\"1700000000000\" d=\"2000\" kvs:fn=\"11\" kvs:ts=\"1700000000000\"/>\n\
             \x20           <S t=\"1700000002000\" d=\"2033\" kvs:fn=\"12\" kvs:ts=\"1700000002000\"/>\n\
             \x20         </SegmentTimeline>\n\
             \x20         <SegmentURL media=\"getMP4MediaFragment.mp4?FragmentNumber=11&amp;SessionToken=T\"/>\n\
             \x20         <SegmentURL media=\"getMP4MediaFragment.mp4?FragmentNumber=12&amp;SessionToken=T\"/>\n\
             \x20       </SegmentList>\n\
             \x20     </Representation>\n\
             \x20   </AdaptationSet>\n\
             \x20 </Period>\n\
             </MPD>\n"
        );
    }

    #[test]
    fn fragment_numbers_and_timestamps_are_shown_only_when_asked() {
        let mut manifest = on_demand();
        manifest.show_numbers = false;
        for segment in &mut manifest.segments {
            segment.shown_ms = None;
        }
        let text = render(&manifest, "T");
        assert!(
            text.contains("<S t=\"1700000000000\" d=\"2000\"/>"),
            "{text}"
        );
        assert!(
            !text.contains("kvs:fn=") && !text.contains("kvs:ts="),
            "{text}"
        );
        manifest.resolution = None;
        assert!(!render(&manifest, "T").contains(" width=\""));
    }

    #[test]
    fn a_live_manifest_is_dynamic_and_may_be_empty() {
        let mut manifest = on_demand();
        manifest.presentation = Presentation::Dynamic {
            availability_start_ms: 1_700_000_010_000,
            publish_ms: 1_700_000_012_500,
            update_period_ms: 1000,
            time_shift_ms: 12_500,
        };
        let text = render(&manifest, "T");
        assert!(
            text.contains(
                " type=\"dynamic\" availabilityStartTime=\"2023-11-14T22:13:30.000Z\" \
                 publishTime=\"2023-11-14T22:13:32.500Z\" minimumUpdatePeriod=\"PT1.000S\" \
                 timeShiftBufferDepth=\"PT12.500S\" minBufferTime=\"PT2.033S\">"
            ),
            "{text}"
        );
        assert!(!text.contains("mediaPresentationDuration"), "{text}");
        assert!(
            text.ends_with(
                "  </Period>\n  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" \
                 value=\"2023-11-14T22:13:32.500Z\"/>\n</MPD>\n"
            ),
            "{text}"
        );

        manifest.segments.clear();
        let empty = render(&manifest, "T");
        assert!(
            !empty.contains("SegmentTimeline") && !empty.contains("SegmentURL"),
            "{empty}"
        );
        assert!(empty.contains("<Initialization "), "{empty}");
        assert!(empty.contains("minBufferTime=\"PT1.000S\""), "{empty}");
    }

    #[test]
    fn aac_audio_is_an_adaptation_set_of_its_own_on_the_same_timeline() {
        let mut manifest = on_demand();
        manifest.audio = Some(AudioSet {
            codecs: "mp4a.40.2".into(),
            sample_rate: 48_000,
            channels: 2,
        });
        let text = render(&manifest, "T");
        let (video, audio) = text
            .split_once("<AdaptationSet id=\"1\"")
            .expect("a second AdaptationSet");
        assert!(
            audio.starts_with(
                " contentType=\"audio\" mimeType=\"audio/mp4\" codecs=\"mp4a.40.2\" \
                 audioSamplingRate=\"48000\" lang=\"und\""
            ),
            "{text}"
        );
        assert!(
            audio.contains("<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>"),
            "{text}"
        );
        assert!(
            audio.contains("<Representation id=\"2\" bandwidth=\"128000\">"),
            "{text}"
        );
        assert!(
            audio.contains(
                "<Initialization sourceURL=\"getMP4InitFragment.mp4?SessionToken=T&amp;TrackNumber=2\"/>"
            ),
            "{text}"
        );
        assert!(
            audio.contains(
                "<SegmentURL media=\"getMP4MediaFragment.mp4?FragmentNumber=12&amp;SessionToken=T&amp;TrackNumber=2\"/>"
            ),
            "{text}"
        );
        // The same timeline as the video's, and the video's URLs as they were.
        let timeline = |set: &str| {
            set.lines()
                .filter(|l| l.trim_start().starts_with("<S "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(timeline(video).len(), 2);
        assert_eq!(timeline(video), timeline(audio));
        assert!(!video.contains("TrackNumber"), "{text}");
        assert!(
            text.ends_with("    </AdaptationSet>\n  </Period>\n</MPD>\n"),
            "{text}"
        );
    }

    #[test]
    fn attribute_text_is_escaped() {
        assert_eq!(escape("a&b<\"c\">"), "a&amp;b&lt;&quot;c&quot;&gt;");
        assert_eq!(escape("avc1.4d401e"), "avc1.4d401e");
    }
}
