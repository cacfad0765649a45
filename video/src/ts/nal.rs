//! From Matroska's H.264/H.265 framing to Annex B: frames hold NAL units
//! each behind a big-endian length, and the parameter sets live only in
//! the track's `avcC`/`hvcC` (CodecPrivate). A transport stream has no
//! such side channel, so NAL units get start codes and every keyframe is
//! preceded by the parameter sets.

use super::TsError;
use crate::mp4::{Codec, VideoTrack};

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What converting a track's frames needs from its configuration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub codec: Codec,
    /// Bytes of each NAL unit's length prefix: 1, 2, 3 or 4.
    pub length_size: usize,
    /// VPS (H.265), SPS and PPS, in that order.
    pub parameter_sets: Vec<Vec<u8>>,
}

impl Config {
    pub fn of(track: &VideoTrack) -> Result<Config, TsError> {
        let parsed = match track.codec {
            Codec::H264 => avcc(&track.config),
            Codec::H265 => hvcc(&track.config),
        };
        let config = parsed.ok_or(TsError::InvalidCodecPrivate(match track.codec {
            Codec::H264 => "AVCDecoderConfigurationRecord",
            Codec::H265 => "HEVCDecoderConfigurationRecord",
        }))?;
        Ok(Config {
            codec: track.codec,
            length_size: config.0,
            parameter_sets: config.1,
        })
    }

    fn kind(&self, nal: &[u8]) -> Kind {
        let Some(&first) = nal.first() else {
            return Kind::Other;
        };
        match (self.codec, first) {
            (Codec::H264, b) if b & 0x1f == 9 => Kind::Delimiter,
            (Codec::H264, b) if b & 0x1f == 7 => Kind::ParameterSet,
            (Codec::H265, b) if (b >> 1) & 0x3f == 35 => Kind::Delimiter,
            (Codec::H265, b) if (32..=34).contains(&((b >> 1) & 0x3f)) => Kind::ParameterSet,
            _ => Kind::Other,
        }
    }

    /// An access unit delimiter allowing any slice type: H.264 needs one
    /// at the start of each access unit in a transport stream (ISO/IEC
    /// 13818-1 2.14), and HLS asks it of H.265 too.
    fn delimiter(&self) -> &'static [u8] {
        match self.codec {
            // nal_unit_type 9, primary_pic_type 7, stop bit.
            Codec::H264 => &[0x09, 0xf0],
            // nal_unit_type 35, layer 0, temporal id 1; pic_type 2.
            Codec::H265 => &[0x46, 0x01, 0x50],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Delimiter,
    ParameterSet,
    Other,
}

/// `frame` as an Annex B access unit appended to `out`: its delimiter
/// (its own, or one written here) first, then on a keyframe the track's
/// parameter sets unless the frame carries its own, then its NAL units.
pub fn access_unit(
    config: &Config,
    frame: &[u8],
    keyframe: bool,
    out: &mut Vec<u8>,
) -> Result<(), TsError> {
    let units = split(frame, config.length_size)?;
    let delimiter = units
        .iter()
        .copied()
        .find(|nal| config.kind(nal) == Kind::Delimiter)
        .unwrap_or(config.delimiter());
    push(out, delimiter);
    if keyframe
        && !units
            .iter()
            .any(|nal| config.kind(nal) == Kind::ParameterSet)
    {
        for set in &config.parameter_sets {
            push(out, set);
        }
    }
    for nal in units {
        if config.kind(nal) != Kind::Delimiter {
            push(out, nal);
        }
    }
    Ok(())
}

fn push(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// The NAL units of a length-prefixed frame; empty ones, which Annex B
/// cannot express, are dropped.
pub fn split(frame: &[u8], length_size: usize) -> Result<Vec<&[u8]>, TsError> {
    let mut units = Vec::new();
    let mut rest = frame;
    while !rest.is_empty() {
        let (prefix, after) = rest
            .split_at_checked(length_size)
            .ok_or(TsError::NalOutOfRange)?;
        let len = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let (nal, after) = after.split_at_checked(len).ok_or(TsError::NalOutOfRange)?;
        if !nal.is_empty() {
            units.push(nal);
        }
        rest = after;
    }
    Ok(units)
}

/// A configuration record's bytes, read front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A NAL unit behind a 16-bit length.
    fn nal(&mut self) -> Option<Vec<u8>> {
        let len = self.u16()?;
        self.take(usize::from(len)).map(<[u8]>::to_vec)
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1): the length
/// size, then the SPSs and PPSs.
fn avcc(record: &[u8]) -> Option<(usize, Vec<Vec<u8>>)> {
    let mut r = Reader(record);
    let head = r.take(5)?;
    if head[0] != 1 {
        return None;
    }
    let length_size = usize::from(head[4] & 0x03) + 1;
    let mut sets = Vec::new();
    let sps = r.u8()? & 0x1f;
    for _ in 0..sps {
        sets.push(r.nal()?);
    }
    let pps = r.u8()?;
    for _ in 0..pps {
        sets.push(r.nal()?);
    }
    // Without an SPS and a PPS no frame can be decoded.
    (sps > 0 && pps > 0).then_some((length_size, sets))
}

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1): the length
/// size, then arrays of NAL units by type, of which the VPS, SPS and PPS
/// are kept, in that order.
fn hvcc(record: &[u8]) -> Option<(usize, Vec<Vec<u8>>)> {
    let mut r = Reader(record);
    let head = r.take(22)?;
    if head[0] != 1 {
        return None;
    }
    let length_size = usize::from(head[21] & 0x03) + 1;
    let mut by_type: [Vec<Vec<u8>>; 3] = Default::default();
    for _ in 0..r.u8()? {
        let kind = r.u8()? & 0x3f;
        for _ in 0..r.u16()? {
            let nal = r.nal()?;
            if let Some(slot) = kind
                .checked_sub(32)
                .and_then(|i| by_type.get_mut(usize::from(i)))
            {
                slot.push(nal);
            }
        }
    }
    if by_type.iter().any(Vec::is_empty) {
        return None;
    }
    Some((length_size, by_type.concat()))
}
