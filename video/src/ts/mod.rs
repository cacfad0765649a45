//! MPEG-2 transport stream (ISO/IEC 13818-1) for HLS sessions whose
//! ContainerFormat is MPEG_TS: one self-contained segment per stored
//! fragment, as Kinesis Video's GetTSFragment serves it. A segment opens
//! with a PAT and a PMT, so a player can start at any of them, and then
//! carries one PES packet per video frame on the video's elementary
//! stream, which also carries the PCR, and, when the stream has an AAC
//! track ADTS can describe, one PES packet per AAC frame (behind its ADTS
//! header) on an audio stream, the two interleaved by decode time.
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

use crate::mp4::{AudioTrack, Codec, SAMPLES_PER_FRAME, Sample, TIMESCALE, VideoTrack};
use packet::{Extras, Pid};

pub use psi::crc32;

/// The PIDs ffmpeg's muxer uses by default, which tools and people
/// reading dumps expect.
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
/// The PMT's stream_type of AAC in ADTS.
const ADTS_STREAM_TYPE: u8 = 0x0f;
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

/// A segment's audio: AAC frames of `track`, the first decoded at
/// `start` ticks of the track's own timescale (its sampling rate).
#[derive(Debug, Clone, Copy)]
pub struct AudioRun<'a, 'b> {
    pub track: &'b AudioTrack,
    pub start: u64,
    pub samples: &'b [Sample<'a>],
}

/// Whether `track`'s frames can go into a transport stream, so that a
/// playlist names its codec only when its segments carry it.
pub fn carries_audio(track: &AudioTrack) -> bool {
    track.adts().is_some()
}

/// One transport stream segment of `samples` (in decode order, as
/// `mp4::samples` times them), the first decoded at `base_decode_time`
/// ticks. Frames become Annex B access units, each with an access unit
/// delimiter and, on keyframes, the track's parameter sets, so that a
/// decoder can start at any segment. `audio`'s frames go beside the
/// video when ADTS can describe its track (see `carries_audio`), its
/// times placed on the same 90 kHz clock as the video's.
pub fn media_segment(
    track: &VideoTrack,
    base_decode_time: u64,
    samples: &[Sample<'_>],
    audio: Option<AudioRun<'_, '_>>,
) -> Result<Vec<u8>, TsError> {
    let config = nal::Config::of(track)?;
    let audio = audio.and_then(|run| Some((run, run.track.adts()?)));
    let payload: usize = samples.iter().map(|s| s.data.len()).sum::<usize>()
        + audio.map_or(0, |(run, _)| {
            run.samples.iter().map(|s| s.data.len() + 32).sum()
        });
    let mut out = Vec::with_capacity(payload + payload / 16 + 1024);
    Pid::new(0).write(&mut out, &psi::pat(PMT_PID), Extras::default());
    let mut streams = vec![(VIDEO_PID, stream_type(track.codec))];
    if audio.is_some() {
        streams.push((AUDIO_PID, ADTS_STREAM_TYPE));
    }
    Pid::new(PMT_PID).write(&mut out, &psi::pmt(VIDEO_PID, &streams), Extras::default());
    // A PTS may not precede its DTS: with reordered frames decode times
    // start early by the largest negative composition offset.
    let shift = samples
        .iter()
        .map(|s| u64::from(s.composition_offset.min(0).unsigned_abs()))
        .max()
        .unwrap_or(0);
    let mut video = Pid::new(VIDEO_PID);
    let mut sound = Pid::new(AUDIO_PID);
    let mut audio_frames = audio
        .map(|(run, adts)| {
            let rate = u64::from(run.track.sample_rate.max(1));
            run.samples.iter().enumerate().map(move |(i, sample)| {
                let ticks = run.start + i as u64 * u64::from(SAMPLES_PER_FRAME);
                // Exact in 128 bits: a day of 96 kHz ticks times 90 000
                // overflows nothing, but an epoch-based start would.
                let at = (u128::from(ticks) * u128::from(TIMESCALE) / u128::from(rate)) as u64;
                (at, adts, sample.data)
            })
        })
        .into_iter()
        .flatten()
        .peekable();
    let mut write_audio_until = |out: &mut Vec<u8>, until: Option<u64>| {
        while let Some(&(at, adts, data)) = audio_frames.peek() {
            if until.is_some_and(|until| at > until) {
                break;
            }
            audio_frames.next();
            // A frame ADTS cannot state the length of (over 8 KB, which
            // no AAC encoder writes) is left out rather than cut.
            let Some(header) = adts.header(data.len()) else {
                continue;
            };
            let mut frame = Vec::with_capacity(header.len() + data.len());
            frame.extend_from_slice(&header);
            frame.extend_from_slice(data);
            let pes = pes::packet(pes::AUDIO_STREAM_ID, wrap(at), None, &frame);
            sound.write(out, &pes, Extras::default());
        }
    };
    let mut decode = base_decode_time;
    let mut access_unit = Vec::new();
    for sample in samples {
        let dts_unwrapped = decode.wrapping_sub(shift);
        write_audio_until(&mut out, Some(dts_unwrapped));
        access_unit.clear();
        nal::access_unit(&config, sample.data, sample.keyframe, &mut access_unit)?;
        let pts = wrap(decode.wrapping_add_signed(i64::from(sample.composition_offset)));
        let dts = wrap(dts_unwrapped);
        let pes = pes::packet(
            pes::VIDEO_STREAM_ID,
            pts,
            (dts != pts).then_some(dts),
            &access_unit,
        );
        let extras = Extras {
            pcr: Some(wrap(dts.wrapping_sub(PCR_LEAD))),
            random_access: sample.keyframe,
        };
        video.write(&mut out, &pes, extras);
        decode = decode.wrapping_add(u64::from(sample.duration));
    }
    write_audio_until(&mut out, None);
    Ok(out)
}

fn wrap(ticks: u64) -> u64 {
    ticks % WRAP
}
