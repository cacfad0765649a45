//! MPEG-2 transport stream (ISO/IEC 13818-1) for HLS sessions whose
//! ContainerFormat is MPEG_TS: one self-contained segment per stored
//! fragment, as Kinesis Video's GetTSFragment serves it. A segment opens
//! with a PAT and a PMT, so a player can start at any of them, and then
//! carries one PES packet per video frame on a single elementary stream,
//! which also carries the PCR. Only the video track is written, as in
//! `mp4`.
//!
//! Written by hand, like `mp4`: the write side of TS for one video
//! stream is a few hundred lines, and owning it keeps what the bytes
//! hold (PIDs, where the PCR and parameter sets go, counter resets)
//! under this crate's tests rather than a crate's defaults.

mod nal;
mod packet;
mod pes;
mod psi;

#[cfg(test)]
mod tests;

use crate::mp4::{Codec, Sample, VideoTrack};
use packet::{Extras, Pid};

pub use psi::crc32;

/// The PIDs ffmpeg's muxer uses by default, which tools and people
/// reading dumps expect.
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
/// PTS, DTS and PCR base are 33-bit counts of a 90 kHz clock, the same
/// ticks as `mp4::TIMESCALE`; producer times past 2^33 ticks (a day)
/// wrap, as players expect them to.
const WRAP: u64 = 1 << 33;
/// How far the PCR runs behind a frame's decode time: the decoder's
/// buffering delay (ffmpeg's default of 0.7 s), so that by the clock a
/// frame's bytes arrive before it is due.
const PCR_LEAD: u64 = 63_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    #[error("the codec private data is not a valid {0}")]
    InvalidCodecPrivate(&'static str),
    #[error("a NAL unit's length runs past the end of its frame")]
    NalOutOfRange,
}

/// The stream_type of the PMT for `codec`.
fn stream_type(codec: Codec) -> u8 {
    match codec {
        Codec::H264 => 0x1b,
        Codec::H265 => 0x24,
    }
}

/// One transport stream segment of `samples` (in decode order, as
/// `mp4::samples` times them), the first decoded at `base_decode_time`
/// ticks. Frames become Annex B access units, each with an access unit
/// delimiter and, on keyframes, the track's parameter sets, so that a
/// decoder can start at any segment.
pub fn media_segment(
    track: &VideoTrack,
    base_decode_time: u64,
    samples: &[Sample<'_>],
) -> Result<Vec<u8>, TsError> {
    let config = nal::Config::of(track)?;
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut out = Vec::with_capacity(payload + payload / 16 + 1024);
    Pid::new(0).write(&mut out, &psi::pat(PMT_PID), Extras::default());
    Pid::new(PMT_PID).write(
        &mut out,
        &psi::pmt(VIDEO_PID, stream_type(track.codec)),
        Extras::default(),
    );
    // A PTS may not precede its DTS: with reordered frames decode times
    // start early by the largest negative composition offset.
    let shift = samples
        .iter()
        .map(|s| u64::from(s.composition_offset.min(0).unsigned_abs()))
        .max()
        .unwrap_or(0);
    let mut video = Pid::new(VIDEO_PID);
    let mut decode = base_decode_time;
    let mut access_unit = Vec::new();
    for sample in samples {
        access_unit.clear();
        nal::access_unit(&config, sample.data, sample.keyframe, &mut access_unit)?;
        let pts = wrap(decode.wrapping_add_signed(i64::from(sample.composition_offset)));
        let dts = wrap(decode.wrapping_sub(shift));
        let pes = pes::packet(pts, (dts != pts).then_some(dts), &access_unit);
        let extras = Extras {
            pcr: Some(wrap(dts.wrapping_sub(PCR_LEAD))),
            random_access: sample.keyframe,
        };
        video.write(&mut out, &pes, extras);
        decode = decode.wrapping_add(u64::from(sample.duration));
    }
    Ok(out)
}

fn wrap(ticks: u64) -> u64 {
    ticks % WRAP
}
