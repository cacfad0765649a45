//! The AAC audio track, when a stream has one: Matroska's `A_AAC`
//! CodecPrivate is the AudioSpecificConfig (ISO/IEC 14496-3) that MP4's
//! `esds` carries, and each Matroska frame of it is one raw AAC frame,
//! an MP4 sample as it is.

use super::segment::Sample;
use crate::mkv::{Frame, Header};

/// PCM samples per AAC frame (AAC-LC and the core of HE-AAC): each
/// sample's duration in the track's timescale, its sampling rate.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// ISO/IEC 14496-3's samplingFrequencyIndex table.
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The Matroska track number, which frames are matched by.
    pub number: u64,
    /// The AudioSpecificConfig.
    pub config: Vec<u8>,
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u16,
    /// The config's channelConfiguration as written: 0 means a program
    /// config element defines the channels, which ADTS cannot carry.
    pub channel_configuration: u8,
}

impl AudioTrack {
    /// The first AAC track of `header` whose AudioSpecificConfig can be
    /// read; other audio codecs are left out of MP4 output.
    pub fn of(header: &Header) -> Option<AudioTrack> {
        header
            .tracks
            .iter()
            .filter(|t| t.codec_id == "A_AAC" || t.codec_id.starts_with("A_AAC/"))
            .find_map(|t| {
                let (object_type, sample_rate, channel_configuration) =
                    read_config(&t.codec_private)?;
                Some(AudioTrack {
                    number: t.number,
                    config: t.codec_private.clone(),
                    object_type,
                    sample_rate,
                    channels: u16::from(channel_configuration.max(1)),
                    channel_configuration,
                })
            })
    }

    /// The RFC 6381 codec name (`mp4a.40.2` for AAC-LC).
    pub fn codecs(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Ticks of this track's timescale (its sampling rate) in `ms`.
    pub fn ticks(&self, ms: i64) -> i64 {
        ms.saturating_mul(i64::from(self.sample_rate)) / 1000
    }

    /// How an MPEG-TS stream carries this track's frames, when it can:
    /// ADTS (ISO/IEC 13818-7) has two bits for the object type (AAC Main,
    /// LC, SSR, LTP), an index into the rate table and a channel
    /// configuration; HE-AAC's extension, explicit rates and program
    /// config elements do not fit.
    pub fn adts(&self) -> Option<Adts> {
        let profile = self.object_type.checked_sub(1).filter(|p| *p < 4)?;
        let rate_index = RATES.iter().position(|r| *r == self.sample_rate)? as u8;
        let channels = Some(self.channel_configuration).filter(|c| (1..8).contains(c))?;
        Some(Adts {
            profile,
            rate_index,
            channels,
        })
    }
}

/// The fixed part of every ADTS header of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adts {
    profile: u8,
    rate_index: u8,
    channels: u8,
}

impl Adts {
    /// Bytes of a header without a CRC.
    pub const HEADER_LEN: usize = 7;
    /// The most a frame with its header may hold: frame_length is 13 bits.
    pub const MAX_FRAME_LEN: usize = (1 << 13) - 1;

    /// The header of one raw frame of `payload_len` bytes; `None` when
    /// the frame is too long for ADTS to state.
    pub fn header(&self, payload_len: usize) -> Option<[u8; Adts::HEADER_LEN]> {
        let length = payload_len + Adts::HEADER_LEN;
        if length > Adts::MAX_FRAME_LEN {
            return None;
        }
        // Buffer fullness all ones: a variable bit rate.
        let fullness = 0x7ff_usize;
        Some([
            0xff,
            // syncword's last 4 bits, MPEG-4, layer 0, no CRC.
            0xf1,
            (self.profile << 6) | (self.rate_index << 2) | (self.channels >> 2),
            ((self.channels & 0x3) << 6) | (length >> 11) as u8,
            (length >> 3) as u8,
            (((length & 0x7) << 5) | (fullness >> 6)) as u8,
            // One raw data block per frame.
            ((fullness & 0x3f) << 2) as u8,
        ])
    }
}

/// Object type, sampling rate and channel configuration of an
/// AudioSpecificConfig; `None` unless it is one a player can take.
fn read_config(config: &[u8]) -> Option<(u8, u32, u8)> {
    let mut bits = Bits {
        bytes: config,
        at: 0,
    };
    let mut object_type = bits.read(5)? as u8;
    if object_type == 31 {
        object_type = 32 + bits.read(6)? as u8;
    }
    let index = bits.read(4)? as usize;
    let rate = match index {
        15 => bits.read(24)?,
        _ => *RATES.get(index)?,
    };
    let channel_configuration = bits.read(4)? as u8;
    (object_type != 0 && rate > 0).then_some((object_type, rate, channel_configuration))
}

struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self.bytes.get(self.at / 8)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.at += 1;
        }
        Some(value)
    }
}

/// The audio samples of one stored fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSamples<'a> {
    /// The first frame's time, in ms from the fragment's start.
    pub first_ms: i64,
    pub samples: Vec<Sample<'a>>,
}

/// The frames of `track` among `frames`, each an AAC frame of
/// `SAMPLES_PER_FRAME` samples. A laced block (several frames in one,
/// Xiph, fixed-size or EBML lacing) gives each of its frames; one whose
/// lace sizes do not add up is left out whole.
pub fn audio_samples<'a>(body: &'a [u8], frames: &[Frame], track: u64) -> AudioSamples<'a> {
    let mut first_ms = None;
    let mut samples = Vec::new();
    for frame in frames.iter().filter(|f| f.track == track) {
        let start = frame.offset as usize;
        // The block's flags byte comes just before its data.
        let lacing = start
            .checked_sub(1)
            .and_then(|at| body.get(at))
            .map_or(0, |flags| (flags >> 1) & 0x03);
        let Some(data) = body.get(start..start + frame.len as usize) else {
            continue;
        };
        let parts = match lacing {
            0 => vec![data],
            lacing => unlace(data, lacing).unwrap_or_default(),
        };
        for data in parts.into_iter().filter(|d| !d.is_empty()) {
            first_ms.get_or_insert(frame.timecode_ms);
            samples.push(Sample {
                data,
                duration: SAMPLES_PER_FRAME,
                composition_offset: 0,
                keyframe: true,
            });
        }
    }
    AudioSamples {
        first_ms: first_ms.unwrap_or(0),
        samples,
    }
}

/// A laced block's frames from its data (after the flags byte): the frame
/// count less one, the sizes of all frames but the last as `lacing` writes
/// them (1 Xiph, 2 fixed-size, 3 EBML), then the frames. `None` when the
/// sizes do not fit the data.
pub fn unlace(data: &[u8], lacing: u8) -> Option<Vec<&[u8]>> {
    let (&count, mut rest) = data.split_first()?;
    let count = usize::from(count) + 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        1 => {
            for _ in 1..count {
                let mut size = 0usize;
                loop {
                    let (&byte, after) = rest.split_first()?;
                    rest = after;
                    size += usize::from(byte);
                    if byte != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        2 => {
            if rest.len() % count != 0 {
                return None;
            }
            sizes.resize(count - 1, rest.len() / count);
        }
        3 if count > 1 => {
            let (first, _, after) = vint(rest)?;
            rest = after;
            let mut size = i64::try_from(first).ok()?;
            sizes.push(usize::try_from(size).ok()?);
            for _ in 2..count {
                let (raw, width, after) = vint(rest)?;
                rest = after;
                // Signed: the raw value less half its range.
                let bias = (1i64 << (7 * width - 1)) - 1;
                size = size.checked_add(i64::try_from(raw).ok()? - bias)?;
                sizes.push(usize::try_from(size).ok()?);
            }
        }
        3 => {}
        _ => return None,
    }
    let mut frames = Vec::with_capacity(count);
    for size in sizes {
        let (frame, after) = rest.split_at_checked(size)?;
        frames.push(frame);
        rest = after;
    }
    frames.push(rest);
    Some(frames)
}

/// An EBML variable-size integer at the start of `bytes`: its value (the
/// length marker removed), its width in bytes, and what follows.
fn vint(bytes: &[u8]) -> Option<(u64, u32, &[u8])> {
    let first = *bytes.first()?;
    let width = first.leading_zeros() + 1;
    if width > 8 {
        return None;
    }
    let (head, rest) = bytes.split_at_checked(width as usize)?;
    let marker_cleared = u64::from(first) & (0xff >> width);
    let value = head[1..].iter().fold(marker_cleared, |value, &byte| {
        (value << 8) | u64::from(byte)
    });
    Some((value, width, rest))
}
