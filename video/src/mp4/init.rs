//! The init segment: `ftyp`, then a `moov` whose one track has an empty
//! sample table (the samples are in the fragments) and whose `mvex` says
//! fragments follow.

use super::boxes::{u16, u32, u64, unity_matrix, write_box, write_full_box, zeros};
use super::{Mp4Error, TIMESCALE, VideoTrack};

/// `mvhd`'s timescale: milliseconds, which `mehd` is in too.
const MOVIE_TIMESCALE: u32 = 1000;
const TRACK_ID: u32 = 1;

/// `ftyp` and `moov` for `track`. `duration_ms`, when the whole
/// presentation is known (a clip), goes into `mehd` so players show it
/// before reading every fragment.
pub fn init_segment(track: &VideoTrack, duration_ms: Option<u64>) -> Result<Vec<u8>, Mp4Error> {
    let mut out = Vec::with_capacity(768 + track.config.len());
    write_box(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        u32(out, 0);
        for brand in [b"iso6", b"isom", b"mp41"] {
            out.extend_from_slice(brand);
        }
        Ok(())
    })?;
    write_box(&mut out, b"moov", |out| {
        mvhd(out)?;
        trak(out, track)?;
        write_box(out, b"mvex", |out| {
            if let Some(ms) = duration_ms {
                write_full_box(out, b"mehd", 1, 0, |out| {
                    u64(out, ms);
                    Ok(())
                })?;
            }
            write_full_box(out, b"trex", 0, 0, |out| {
                u32(out, TRACK_ID);
                u32(out, 1); // default_sample_description_index
                zeros(out, 12); // default duration, size, flags: each trun gives its own
                Ok(())
            })
        })
    })?;
    Ok(out)
}

fn mvhd(out: &mut Vec<u8>) -> Result<(), Mp4Error> {
    write_full_box(out, b"mvhd", 0, 0, |out| {
        zeros(out, 8); // creation, modification time
        u32(out, MOVIE_TIMESCALE);
        u32(out, 0); // duration: of the moov's own samples, none
        u32(out, 0x0001_0000); // rate 1.0
        u16(out, 0x0100); // volume 1.0
        zeros(out, 10);
        unity_matrix(out);
        zeros(out, 24); // pre_defined
        u32(out, TRACK_ID + 1); // next_track_ID
        Ok(())
    })
}

fn trak(out: &mut Vec<u8>, track: &VideoTrack) -> Result<(), Mp4Error> {
    write_box(out, b"trak", |out| {
        // Flags: enabled, in movie, in preview.
        write_full_box(out, b"tkhd", 0, 0x7, |out| {
            zeros(out, 8); // creation, modification time
            u32(out, TRACK_ID);
            zeros(out, 4);
            u32(out, 0); // duration
            zeros(out, 8);
            zeros(out, 4); // layer, alternate_group
            u16(out, 0); // volume: not audio
            zeros(out, 2);
            unity_matrix(out);
            u32(out, u32::from(track.width) << 16);
            u32(out, u32::from(track.height) << 16);
            Ok(())
        })?;
        write_box(out, b"mdia", |out| {
            write_full_box(out, b"mdhd", 0, 0, |out| {
                zeros(out, 8);
                u32(out, TIMESCALE);
                u32(out, 0);
                u16(out, 0x55c4); // language 'und', packed ISO-639-2
                u16(out, 0);
                Ok(())
            })?;
            write_full_box(out, b"hdlr", 0, 0, |out| {
                u32(out, 0);
                out.extend_from_slice(b"vide");
                zeros(out, 12);
                out.extend_from_slice(b"VideoHandler\0");
                Ok(())
            })?;
            write_box(out, b"minf", |out| {
                write_full_box(out, b"vmhd", 0, 1, |out| {
                    zeros(out, 8); // graphicsmode, opcolor
                    Ok(())
                })?;
                write_box(out, b"dinf", |out| {
                    write_full_box(out, b"dref", 0, 0, |out| {
                        u32(out, 1);
                        // Flag 1: the media is in this file.
                        write_full_box(out, b"url ", 0, 1, |_| Ok(()))
                    })
                })?;
                stbl(out, track)
            })
        })
    })
}

fn stbl(out: &mut Vec<u8>, track: &VideoTrack) -> Result<(), Mp4Error> {
    write_box(out, b"stbl", |out| {
        write_full_box(out, b"stsd", 0, 0, |out| {
            u32(out, 1);
            sample_entry(out, track)
        })?;
        let empty = |out: &mut Vec<u8>| -> Result<(), Mp4Error> {
            u32(out, 0); // entry_count
            Ok(())
        };
        write_full_box(out, b"stts", 0, 0, empty)?;
        write_full_box(out, b"stsc", 0, 0, empty)?;
        write_full_box(out, b"stsz", 0, 0, |out| {
            zeros(out, 8); // sample_size, sample_count
            Ok(())
        })?;
        write_full_box(out, b"stco", 0, 0, empty)
    })
}

/// A VisualSampleEntry (`avc1`/`hvc1`) holding the codec's configuration.
fn sample_entry(out: &mut Vec<u8>, track: &VideoTrack) -> Result<(), Mp4Error> {
    let (entry, config) = track.codec.boxes();
    write_box(out, entry, |out| {
        zeros(out, 6);
        u16(out, 1); // data_reference_index
        zeros(out, 16); // pre_defined, reserved
        u16(out, track.width);
        u16(out, track.height);
        u32(out, 0x0048_0000); // 72 dpi
        u32(out, 0x0048_0000);
        zeros(out, 4);
        u16(out, 1); // frame_count
        zeros(out, 32); // compressorname
        u16(out, 0x0018); // depth
        u16(out, 0xffff); // pre_defined -1
        write_box(out, config, |out| {
            out.extend_from_slice(&track.config);
            Ok(())
        })
    })
}
