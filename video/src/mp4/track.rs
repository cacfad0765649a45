//! Which track of a stream is written, and what its codec is called.

use super::Mp4Error;
use super::audio::AudioTrack;
use crate::mkv::Header;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    fn of(codec_id: &str) -> Option<Codec> {
        match codec_id {
            "V_MPEG4/ISO/AVC" => Some(Codec::H264),
            "V_MPEGH/ISO/HEVC" => Some(Codec::H265),
            _ => None,
        }
    }

    /// The sample entry and configuration box types.
    pub(super) fn boxes(self) -> (&'static [u8; 4], &'static [u8; 4]) {
        match self {
            Codec::H264 => (b"avc1", b"avcC"),
            Codec::H265 => (b"hvc1", b"hvcC"),
        }
    }

    fn record(self) -> &'static str {
        match self {
            Codec::H264 => "AVCDecoderConfigurationRecord",
            Codec::H265 => "HEVCDecoderConfigurationRecord",
        }
    }

    /// Bytes a configuration record has before anything variable: the
    /// fields `codecs` reads.
    fn min_record_len(self) -> usize {
        match self {
            Codec::H264 => 7,
            Codec::H265 => 23,
        }
    }
}

/// The video track as MP4 writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The Matroska track number, which frames are matched by.
    pub number: u64,
    pub codec: Codec,
    /// The `avcC` or `hvcC` payload: Matroska's CodecPrivate.
    pub config: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

impl VideoTrack {
    /// The first H.264 or H.265 track of `header`, with its configuration
    /// checked.
    pub fn of(header: &Header) -> Result<VideoTrack, Mp4Error> {
        let (track, codec) = header
            .tracks
            .iter()
            .find_map(|t| Codec::of(&t.codec_id).map(|c| (t, c)))
            .ok_or_else(|| {
                let ids: Vec<&str> = header.tracks.iter().map(|t| t.codec_id.as_str()).collect();
                Mp4Error::UnsupportedCodec(ids.join(", "))
            })?;
        let config = &track.codec_private;
        if config.is_empty() {
            return Err(Mp4Error::MissingCodecPrivate(track.number));
        }
        // configurationVersion is 1 in both records.
        if config.len() < codec.min_record_len() || config[0] != 1 {
            return Err(Mp4Error::InvalidCodecPrivate {
                track: track.number,
                record: codec.record(),
            });
        }
        let dimension = |v: Option<u64>| v.map_or(0, |v| u16::try_from(v).unwrap_or(u16::MAX));
        Ok(VideoTrack {
            number: track.number,
            codec,
            config: config.clone(),
            width: dimension(track.width),
            height: dimension(track.height),
        })
    }

    /// The RFC 6381 codec name HLS's `CODECS` attribute wants, read from
    /// the configuration record (ISO/IEC 14496-15 annex E).
    pub fn codecs(&self) -> String {
        let c = &self.config;
        match self.codec {
            // profile_idc, profile compatibility, level_idc.
            Codec::H264 => format!("avc1.{:02x}{:02x}{:02x}", c[1], c[2], c[3]),
            Codec::H265 => {
                let space = ["", "A", "B", "C"][usize::from(c[1] >> 6)];
                let tier = if c[1] & 0x20 != 0 { 'H' } else { 'L' };
                let profile = c[1] & 0x1f;
                let compatibility = u32::from_be_bytes([c[2], c[3], c[4], c[5]]).reverse_bits();
                let mut name = format!("hvc1.{space}{profile}.{compatibility:X}.{tier}{}", c[12]);
                let constraints = &c[6..12];
                let used = constraints
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |i| i + 1);
                for b in &constraints[..used] {
                    name.push_str(&format!(".{b:X}"));
                }
                name
            }
        }
    }

    /// `WIDTHxHEIGHT`, when the Tracks gave both.
    pub fn resolution(&self) -> Option<(u16, u16)> {
        (self.width > 0 && self.height > 0).then_some((self.width, self.height))
    }
}

/// What MP4 output holds of a stream: its video track and, when it has
/// one, its AAC track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracks {
    pub video: VideoTrack,
    pub audio: Option<AudioTrack>,
}

impl Tracks {
    pub fn of(header: &Header) -> Result<Tracks, Mp4Error> {
        Ok(Tracks {
            video: VideoTrack::of(header)?,
            audio: AudioTrack::of(header),
        })
    }

    /// The RFC 6381 names of the tracks, comma-separated, as HLS's
    /// `CODECS` lists them.
    pub fn codecs(&self) -> String {
        match &self.audio {
            Some(audio) => format!("{},{}", self.video.codecs(), audio.codecs()),
            None => self.video.codecs(),
        }
    }

    /// The same with the audio left out (DASH's video AdaptationSet).
    pub fn video_only(self) -> Tracks {
        Tracks {
            audio: None,
            ..self
        }
    }
}
