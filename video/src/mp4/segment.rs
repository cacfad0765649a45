//! A media segment: `moof` (per track, the samples' sizes, durations and
//! flags) and the `mdat` holding them, for one stored fragment.

use super::Mp4Error;
use super::boxes::{u32, u64, write_box, write_full_box};

/// tfhd: the samples' data offsets count from the `moof`'s first byte.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// trun: data-offset, then per sample duration, size and flags.
const TRUN_DATA_OFFSET: u32 = 0x000001;
const TRUN_DURATION: u32 = 0x000100;
const TRUN_SIZE: u32 = 0x000200;
const TRUN_FLAGS: u32 = 0x000400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x000800;

/// sample_depends_on 2: a keyframe needs no other sample.
const SYNC: u32 = 0x0200_0000;
/// sample_depends_on 1 and sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0101_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    pub data: &'a [u8],
    /// Ticks to the next sample's decode time.
    pub duration: u32,
    /// Presentation minus decode time, in ticks; nonzero only when frames
    /// are reordered (B-frames).
    pub composition_offset: i32,
    pub keyframe: bool,
}

/// One track's samples in a media segment, in decode order, the first
/// decoded at `base_decode_time` ticks of the track's timescale.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a, 'b> {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub samples: &'b [Sample<'a>],
}

/// `moof` + `mdat` of `runs` (a `traf` each; the mdat holds their samples
/// in the same order). `sequence_number` orders the fragments of a
/// presentation.
pub fn media_segment(sequence_number: u32, runs: &[Run<'_, '_>]) -> Result<Vec<u8>, Mp4Error> {
    let payload: usize = runs
        .iter()
        .flat_map(|run| run.samples)
        .map(|s| s.data.len())
        .sum();
    let count: usize = runs.iter().map(|run| run.samples.len()).sum();
    let mut out = Vec::with_capacity(payload + 128 * runs.len() + count * 16);
    let mut data_offsets_at = Vec::with_capacity(runs.len());
    write_box(&mut out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| {
            u32(out, sequence_number);
            Ok(())
        })?;
        for run in runs {
            data_offsets_at.push(traf(out, run)?);
        }
        Ok(())
    })?;
    // Each run's first sample follows the moof, the mdat's 8-byte header
    // and the runs before it.
    let mut data_offset = out.len() + 8;
    for (run, at) in runs.iter().zip(data_offsets_at) {
        let offset = u32::try_from(data_offset).map_err(|_| Mp4Error::TooLarge("moof".into()))?;
        out[at..at + 4].copy_from_slice(&offset.to_be_bytes());
        data_offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    write_box(&mut out, b"mdat", |out| {
        for sample in runs.iter().flat_map(|run| run.samples) {
            out.extend_from_slice(sample.data);
        }
        Ok(())
    })?;
    Ok(out)
}

/// One track's `traf`; returns where its trun's data offset is, to patch.
fn traf(out: &mut Vec<u8>, run: &Run<'_, '_>) -> Result<usize, Mp4Error> {
    let reordered = run.samples.iter().any(|s| s.composition_offset != 0);
    let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
    if reordered {
        flags |= TRUN_COMPOSITION_OFFSET;
    }
    let sample_count =
        u32::try_from(run.samples.len()).map_err(|_| Mp4Error::TooLarge("trun".into()))?;
    let mut data_offset_at = 0;
    write_box(out, b"traf", |out| {
        write_full_box(out, b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |out| {
            u32(out, run.track_id);
            Ok(())
        })?;
        write_full_box(out, b"tfdt", 1, 0, |out| {
            u64(out, run.base_decode_time);
            Ok(())
        })?;
        // Version 1 makes composition offsets signed.
        let version = u8::from(reordered);
        write_full_box(out, b"trun", version, flags, |out| {
            u32(out, sample_count);
            data_offset_at = out.len();
            u32(out, 0); // patched once the moof's size is known
            for sample in run.samples {
                u32(out, sample.duration);
                let size = u32::try_from(sample.data.len())
                    .map_err(|_| Mp4Error::TooLarge("sample".into()))?;
                u32(out, size);
                u32(out, if sample.keyframe { SYNC } else { NON_SYNC });
                if reordered {
                    out.extend_from_slice(&sample.composition_offset.to_be_bytes());
                }
            }
            Ok(())
        })
    })?;
    Ok(data_offset_at)
}
