//! A media segment: `moof` (the samples' sizes, durations and flags) and
//! the `mdat` holding them, for one stored fragment.

use super::Mp4Error;
use super::boxes::{u32, u64, write_box, write_full_box};

const TRACK_ID: u32 = 1;

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

/// `moof` + `mdat` of `samples`, in decode order, the first decoded at
/// `base_decode_time` ticks. `sequence_number` orders the fragments of a
/// presentation.
pub fn media_segment(
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample<'_>],
) -> Result<Vec<u8>, Mp4Error> {
    let reordered = samples.iter().any(|s| s.composition_offset != 0);
    let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
    if reordered {
        flags |= TRUN_COMPOSITION_OFFSET;
    }
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let sample_count =
        u32::try_from(samples.len()).map_err(|_| Mp4Error::TooLarge("trun".into()))?;
    let mut out = Vec::with_capacity(payload + 128 + samples.len() * 16);
    let mut data_offset_at = 0;
    write_box(&mut out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| {
            u32(out, sequence_number);
            Ok(())
        })?;
        write_box(out, b"traf", |out| {
            write_full_box(out, b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |out| {
                u32(out, TRACK_ID);
                Ok(())
            })?;
            write_full_box(out, b"tfdt", 1, 0, |out| {
                u64(out, base_decode_time);
                Ok(())
            })?;
            // Version 1 makes composition offsets signed.
            let version = u8::from(reordered);
            write_full_box(out, b"trun", version, flags, |out| {
                u32(out, sample_count);
                data_offset_at = out.len();
                u32(out, 0); // patched below, once the moof's size is known
                for sample in samples {
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
        })
    })?;
    // The first sample follows the moof and the mdat's 8-byte header.
    let data_offset =
        u32::try_from(out.len() + 8).map_err(|_| Mp4Error::TooLarge("moof".into()))?;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    write_box(&mut out, b"mdat", |out| {
        for sample in samples {
            out.extend_from_slice(sample.data);
        }
        Ok(())
    })?;
    Ok(out)
}
