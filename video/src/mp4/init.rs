//! The init segment: `ftyp`, then a `moov` whose tracks (the video, and
//! the AAC audio when there is one) have empty sample tables (the samples
//! are in the fragments) and whose `mvex` says fragments follow.

use super::audio::AudioTrack;
use super::boxes::{u16, u32, u64, unity_matrix, write_box, write_full_box, zeros};
use super::{AUDIO_TRACK_ID, Mp4Error, TIMESCALE, Tracks, VIDEO_TRACK_ID, VideoTrack};

/// `mvhd`'s timescale: milliseconds, which `mehd` is in too.
const MOVIE_TIMESCALE: u32 = 1000;

/// `ftyp` and `moov` for `tracks`. `duration_ms`, when the whole
/// presentation is known (a clip), goes into `mehd` so players show it
/// before reading every fragment.
pub fn init_segment(tracks: &Tracks, duration_ms: Option<u64>) -> Result<Vec<u8>, Mp4Error> {
    init(Some(&tracks.video), tracks.audio.as_ref(), duration_ms)
}

/// The init segment of the audio track alone, for players that take
/// each track as a representation of its own (DASH's audio
/// AdaptationSet).
pub fn audio_init_segment(audio: &AudioTrack) -> Result<Vec<u8>, Mp4Error> {
    init(None, Some(audio), None)
}

fn init(
    video: Option<&VideoTrack>,
    audio: Option<&AudioTrack>,
    duration_ms: Option<u64>,
) -> Result<Vec<u8>, Mp4Error> {
    let configs = video.map_or(0, |v| v.config.len()) + audio.map_or(0, |a| a.config.len());
    let mut out = Vec::with_capacity(1024 + configs);
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
        if let Some(video) = video {
            video_trak(out, video)?;
        }
        if let Some(audio) = audio {
            audio_trak(out, audio)?;
        }
        write_box(out, b"mvex", |out| {
            if let Some(ms) = duration_ms {
                write_full_box(out, b"mehd", 1, 0, |out| {
                    u64(out, ms);
                    Ok(())
                })?;
            }
            let ids = [video.map(|_| VIDEO_TRACK_ID), audio.map(|_| AUDIO_TRACK_ID)];
            for id in ids.into_iter().flatten() {
                write_full_box(out, b"trex", 0, 0, |out| {
                    u32(out, id);
                    u32(out, 1); // default_sample_description_index
                    zeros(out, 12); // default duration, size, flags: each trun gives its own
                    Ok(())
                })?;
            }
            Ok(())
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
        u32(out, AUDIO_TRACK_ID + 1); // next_track_ID
        Ok(())
    })
}

/// What differs between a video and an audio `trak`.
struct Kind<'a> {
    id: u32,
    /// 1.0 for audio, 0 for video.
    volume: u16,
    width: u16,
    height: u16,
    timescale: u32,
    handler: &'a [u8; 4],
    handler_name: &'a [u8],
    media_header: fn(&mut Vec<u8>) -> Result<(), Mp4Error>,
}

fn video_trak(out: &mut Vec<u8>, track: &VideoTrack) -> Result<(), Mp4Error> {
    let kind = Kind {
        id: VIDEO_TRACK_ID,
        volume: 0,
        width: track.width,
        height: track.height,
        timescale: TIMESCALE,
        handler: b"vide",
        handler_name: b"VideoHandler\0",
        media_header: |out| {
            write_full_box(out, b"vmhd", 0, 1, |out| {
                zeros(out, 8); // graphicsmode, opcolor
                Ok(())
            })
        },
    };
    trak(out, &kind, |out| video_sample_entry(out, track))
}

fn audio_trak(out: &mut Vec<u8>, track: &AudioTrack) -> Result<(), Mp4Error> {
    let kind = Kind {
        id: AUDIO_TRACK_ID,
        volume: 0x0100,
        width: 0,
        height: 0,
        timescale: track.sample_rate,
        handler: b"soun",
        handler_name: b"SoundHandler\0",
        media_header: |out| {
            write_full_box(out, b"smhd", 0, 0, |out| {
                zeros(out, 4); // balance, reserved
                Ok(())
            })
        },
    };
    trak(out, &kind, |out| audio_sample_entry(out, track))
}

fn trak(
    out: &mut Vec<u8>,
    kind: &Kind<'_>,
    sample_entry: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    write_box(out, b"trak", |out| {
        // Flags: enabled, in movie, in preview.
        write_full_box(out, b"tkhd", 0, 0x7, |out| {
            zeros(out, 8); // creation, modification time
            u32(out, kind.id);
            zeros(out, 4);
            u32(out, 0); // duration
            zeros(out, 8);
            zeros(out, 4); // layer, alternate_group
            u16(out, kind.volume);
            zeros(out, 2);
            unity_matrix(out);
            u32(out, u32::from(kind.width) << 16);
            u32(out, u32::from(kind.height) << 16);
            Ok(())
        })?;
        write_box(out, b"mdia", |out| {
            write_full_box(out, b"mdhd", 0, 0, |out| {
                zeros(out, 8);
                u32(out, kind.timescale);
                u32(out, 0);
                u16(out, 0x55c4); // language 'und', packed ISO-639-2
                u16(out, 0);
                Ok(())
            })?;
            write_full_box(out, b"hdlr", 0, 0, |out| {
                u32(out, 0);
                out.extend_from_slice(kind.handler);
                zeros(out, 12);
                out.extend_from_slice(kind.handler_name);
                Ok(())
            })?;
            write_box(out, b"minf", |out| {
                (kind.media_header)(out)?;
                write_box(out, b"dinf", |out| {
                    write_full_box(out, b"dref", 0, 0, |out| {
                        u32(out, 1);
                        // Flag 1: the media is in this file.
                        write_full_box(out, b"url ", 0, 1, |_| Ok(()))
                    })
                })?;
                stbl(out, sample_entry)
            })
        })
    })
}

fn stbl(
    out: &mut Vec<u8>,
    sample_entry: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    write_box(out, b"stbl", |out| {
        write_full_box(out, b"stsd", 0, 0, |out| {
            u32(out, 1);
            sample_entry(out)
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
fn video_sample_entry(out: &mut Vec<u8>, track: &VideoTrack) -> Result<(), Mp4Error> {
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

/// An AudioSampleEntry (`mp4a`) whose `esds` holds the
/// AudioSpecificConfig (ISO/IEC 14496-1 descriptors).
fn audio_sample_entry(out: &mut Vec<u8>, track: &AudioTrack) -> Result<(), Mp4Error> {
    write_box(out, b"mp4a", |out| {
        zeros(out, 6);
        u16(out, 1); // data_reference_index
        zeros(out, 8); // reserved
        u16(out, track.channels);
        u16(out, 16); // samplesize
        zeros(out, 4); // pre_defined, reserved
        // 16.16 fixed point; a rate past 65535 Hz does not fit, and the
        // esds says it anyway.
        u32(
            out,
            u32::from(u16::try_from(track.sample_rate).unwrap_or(0)) << 16,
        );
        write_full_box(out, b"esds", 0, 0, |out| {
            let mut specific = Vec::new();
            descriptor(&mut specific, 0x05, &track.config);
            let mut decoder = vec![
                0x40, // objectTypeIndication: audio ISO/IEC 14496-3
                0x15, // streamType audio (5) << 2, reserved bit 1
            ];
            decoder.extend_from_slice(&[0; 3]); // bufferSizeDB
            decoder.extend_from_slice(&[0; 8]); // maxBitrate, avgBitrate: unknown
            decoder.extend_from_slice(&specific);
            let mut es = vec![0, 0, 0]; // ES_ID, flags
            descriptor(&mut es, 0x04, &decoder);
            descriptor(&mut es, 0x06, &[0x02]); // SLConfig: predefined MP4
            descriptor(out, 0x03, &es);
            Ok(())
        })
    })
}

/// A descriptor: its tag, its size in the expandable 7-bits-a-byte form,
/// its body.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let size = body.len();
    let mut groups = Vec::new();
    let mut rest = size;
    loop {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, group) in groups.iter().rev().enumerate() {
        let more = if i + 1 < groups.len() { 0x80 } else { 0 };
        out.push(group | more);
    }
    out.extend_from_slice(body);
}
