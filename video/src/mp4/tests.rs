use super::audio::unlace;
use super::*;
use crate::mkv::{Frame, Header, Track};

/// An AVCDecoderConfigurationRecord: Main profile, level 3.0, one SPS
/// and one PPS (their bytes are not parsed here).
const AVCC: &[u8] = &[
    1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x4d, 0x40, 0x1e, 1, 0, 2, 0x68, 0xee,
];

fn header(codec_id: &str, codec_private: &[u8]) -> Header {
    Header {
        timecode_scale: 1_000_000,
        info: Vec::new(),
        tracks_element: Vec::new(),
        tracks: vec![
            Track {
                number: 2,
                codec_id: "A_AAC".into(),
                codec_private: vec![0x12, 0x10],
                width: None,
                height: None,
            },
            Track {
                number: 1,
                codec_id: codec_id.into(),
                codec_private: codec_private.to_vec(),
                width: Some(640),
                height: Some(360),
            },
        ],
    }
}

fn avc_track() -> VideoTrack {
    VideoTrack::of(&header("V_MPEG4/ISO/AVC", AVCC)).expect("an H.264 track")
}

fn video_only(video: VideoTrack) -> Tracks {
    Tracks { video, audio: None }
}

/// The boxes laid end to end in `data`, as (type, body); fails unless
/// their sizes add up to exactly `data`.
fn walk(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        assert!(
            size >= 8 && at + size <= data.len(),
            "box at {at} of size {size} overruns {}",
            data.len()
        );
        let kind = String::from_utf8(data[at + 4..at + 8].to_vec()).expect("a four-letter type");
        out.push((kind, &data[at + 8..at + size]));
        at += size;
    }
    out
}

/// How many bytes of a box's body come before its child boxes.
fn children_at(kind: &str) -> usize {
    match kind {
        "stsd" | "dref" => 8,  // version, flags, entry count
        "avc1" | "hvc1" => 78, // the VisualSampleEntry fields
        "mp4a" => 28,          // the AudioSampleEntry fields
        "esds" => 4,           // version, flags
        _ => 0,
    }
}

/// The body of the box at `path` (container types descended into).
fn find<'a>(data: &'a [u8], path: &[&str]) -> &'a [u8] {
    let (first, rest) = path.split_first().expect("a path");
    let (kind, body) = walk(data)
        .into_iter()
        .find(|(kind, _)| kind == first)
        .unwrap_or_else(|| panic!("no {first} box"));
    if rest.is_empty() {
        body
    } else {
        find(&body[children_at(&kind)..], rest)
    }
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[test]
fn the_init_segment_is_ftyp_and_a_moov_with_one_avc_track() {
    let init = init_segment(&video_only(avc_track()), None).expect("init segment");
    let top: Vec<String> = walk(&init).into_iter().map(|(k, _)| k).collect();
    assert_eq!(top, ["ftyp", "moov"]);
    assert_eq!(find(&init, &["ftyp"]), b"iso6\0\0\0\0iso6isommp41");
    let moov: Vec<String> = walk(find(&init, &["moov"]))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(moov, ["mvhd", "trak", "mvex"]);

    let tkhd = find(&init, &["moov", "trak", "tkhd"]);
    assert_eq!(be32(tkhd, 12), 1, "track id");
    assert_eq!((be32(tkhd, 76) >> 16, be32(tkhd, 80) >> 16), (640, 360));
    let mdhd = find(&init, &["moov", "trak", "mdia", "mdhd"]);
    assert_eq!(be32(mdhd, 12), TIMESCALE);
    assert_eq!(
        &find(&init, &["moov", "trak", "mdia", "hdlr"])[8..12],
        b"vide"
    );
    find(&init, &["moov", "trak", "mdia", "minf", "vmhd"]);
    find(
        &init,
        &["moov", "trak", "mdia", "minf", "dinf", "dref", "url "],
    );

    let stbl: Vec<String> = walk(find(&init, &["moov", "trak", "mdia", "minf", "stbl"]))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(stbl, ["stsd", "stts", "stsc", "stsz", "stco"]);
    let avc1 = find(
        &init,
        &["moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1"],
    );
    assert_eq!(u16::from_be_bytes([avc1[24], avc1[25]]), 640);
    assert_eq!(u16::from_be_bytes([avc1[26], avc1[27]]), 360);
    let avcc = find(
        &init,
        &[
            "moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1", "avcC",
        ],
    );
    assert_eq!(avcc, AVCC, "avcC is the CodecPrivate as it came");
    let trex = find(&init, &["moov", "mvex", "trex"]);
    assert_eq!((be32(trex, 4), be32(trex, 8)), (1, 1));
    assert!(
        walk(find(&init, &["moov", "mvex"]))
            .iter()
            .all(|(k, _)| k != "mehd"),
        "no duration without one given"
    );
}

#[test]
fn a_clip_init_segment_carries_its_duration_and_hevc_gets_hvc1() {
    let init = init_segment(&video_only(avc_track()), Some(6_000)).expect("init segment");
    let mehd = find(&init, &["moov", "mvex", "mehd"]);
    assert_eq!((mehd[0], be64(mehd, 4)), (1, 6_000));

    let mut hvcc = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d];
    hvcc.extend_from_slice(&[0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]);
    let track = VideoTrack::of(&header("V_MPEGH/ISO/HEVC", &hvcc)).expect("an H.265 track");
    assert_eq!(track.codecs(), "hvc1.1.6.L93.90");
    let init = init_segment(&video_only(track), None).expect("init segment");
    let config = find(
        &init,
        &[
            "moov", "trak", "mdia", "minf", "stbl", "stsd", "hvc1", "hvcC",
        ],
    );
    assert_eq!(config, &hvcc[..]);
}

#[test]
fn the_video_track_is_chosen_and_checked() {
    let track = avc_track();
    assert_eq!((track.number, track.codec), (1, Codec::H264));
    assert_eq!(track.codecs(), "avc1.4d401e");
    assert_eq!(track.resolution(), Some((640, 360)));
    assert!(matches!(
        VideoTrack::of(&header("V_VP8", b"x")),
        Err(Mp4Error::UnsupportedCodec(codecs)) if codecs == "A_AAC, V_VP8"
    ));
    assert_eq!(
        VideoTrack::of(&header("V_MPEG4/ISO/AVC", b"")),
        Err(Mp4Error::MissingCodecPrivate(1))
    );
    assert!(matches!(
        VideoTrack::of(&header(
            "V_MPEG4/ISO/AVC",
            &[0, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0]
        )),
        Err(Mp4Error::InvalidCodecPrivate { track: 1, .. })
    ));
    assert!(matches!(
        VideoTrack::of(&header("V_MPEGH/ISO/HEVC", &[1, 2, 3])),
        Err(Mp4Error::InvalidCodecPrivate { track: 1, .. })
    ));
}

fn frame(track: u64, timecode_ms: i64, keyframe: bool, offset: u32, len: u32) -> Frame {
    Frame {
        track,
        timecode_ms,
        keyframe,
        offset,
        len,
    }
}

#[test]
fn a_media_segment_is_a_moof_pointing_into_its_mdat() {
    let body: Vec<u8> = (0..30).collect();
    let frames = [
        frame(1, 0, true, 0, 10),
        frame(2, 10, true, 10, 5), // audio: left out
        frame(1, 33, false, 15, 7),
        frame(1, 67, false, 22, 8),
    ];
    let timed = samples(&body, &frames, 1, Some(100)).expect("samples");
    assert_eq!(timed.first_decode, 0);
    let durations: Vec<u32> = timed.samples.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [2970, 3060, 2970]);
    assert_eq!(timed.duration, 9000);

    let segment = media_segment(
        7,
        &[Run {
            track_id: VIDEO_TRACK_ID,
            base_decode_time: 123_456_789_000,
            samples: &timed.samples,
        }],
    )
    .expect("segment");
    let top: Vec<String> = walk(&segment).into_iter().map(|(k, _)| k).collect();
    assert_eq!(top, ["moof", "mdat"]);
    let moof_size = 8 + find(&segment, &["moof"]).len();
    assert_eq!(be32(find(&segment, &["moof", "mfhd"]), 4), 7);
    let tfhd = find(&segment, &["moof", "traf", "tfhd"]);
    assert_eq!((be32(tfhd, 0), be32(tfhd, 4)), (0x02_0000, 1));
    let tfdt = find(&segment, &["moof", "traf", "tfdt"]);
    assert_eq!((tfdt[0], be64(tfdt, 4)), (1, 123_456_789_000));
    let trun = find(&segment, &["moof", "traf", "trun"]);
    assert_eq!(
        be32(trun, 0),
        0x000701,
        "version 0: data offset, duration, size, flags"
    );
    assert_eq!(be32(trun, 4), 3);
    let data_offset = be32(trun, 8) as usize;
    assert_eq!(data_offset, moof_size + 8);
    let entries: Vec<(u32, u32, u32)> = (0..3)
        .map(|i| {
            (
                be32(trun, 12 + 12 * i),
                be32(trun, 16 + 12 * i),
                be32(trun, 20 + 12 * i),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (2970, 10, 0x0200_0000),
            (3060, 7, 0x0101_0000),
            (2970, 8, 0x0101_0000)
        ]
    );
    let mdat = find(&segment, &["mdat"]);
    let expected: Vec<u8> = [&body[0..10], &body[15..22], &body[22..30]].concat();
    assert_eq!(mdat, &expected[..]);
    assert_eq!(&segment[data_offset..data_offset + 10], &body[0..10]);
}

#[test]
fn the_last_frame_lasts_the_average_without_a_plausible_next_fragment() {
    let body = [0u8; 4];
    let frames: Vec<Frame> = (0..4)
        .map(|i| frame(1, i * 40, i == 0, i as u32, 1))
        .collect();
    for next in [None, Some(120), Some(100_000)] {
        let timed = samples(&body, &frames, 1, next).expect("samples");
        assert_eq!(timed.samples[3].duration, 3600, "next fragment at {next:?}");
    }
    let lone = samples(&body, &frames[..1], 1, None).expect("samples");
    assert_eq!(lone.samples[0].duration, 3000);
    let none = samples(&body, &frames, 9, None).expect("samples");
    assert!(none.samples.is_empty());
    let outside = [frame(1, 0, true, 2, 3)];
    assert_eq!(
        samples(&body, &outside, 1, None),
        Err(Mp4Error::FrameOutOfRange)
    );
}

#[test]
fn reordered_frames_get_signed_composition_offsets() {
    let body = [0u8; 4];
    // Decode order I P B B, shown I B B P.
    let frames = [
        frame(1, 0, true, 0, 1),
        frame(1, 100, false, 1, 1),
        frame(1, 33, false, 2, 1),
        frame(1, 67, false, 3, 1),
    ];
    let timed = samples(&body, &frames, 1, Some(133)).expect("samples");
    let offsets: Vec<i32> = timed.samples.iter().map(|s| s.composition_offset).collect();
    assert_eq!(offsets, [0, 6030, -3060, -2970]);
    let segment = media_segment(
        1,
        &[Run {
            track_id: VIDEO_TRACK_ID,
            base_decode_time: 0,
            samples: &timed.samples,
        }],
    )
    .expect("segment");
    let trun = find(&segment, &["moof", "traf", "trun"]);
    assert_eq!(
        be32(trun, 0),
        0x01_000f01,
        "version 1 with composition offsets"
    );
    let second_offset = i32::from_be_bytes(trun[12 + 16 + 12..12 + 16 + 16].try_into().expect("4"));
    assert_eq!(second_offset, 6030);
}

/// The boxes of type `kind` laid end to end in `data`.
fn all<'a>(data: &'a [u8], kind: &str) -> Vec<&'a [u8]> {
    walk(data)
        .into_iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn an_aac_track_is_a_second_trak_with_its_config_in_esds() {
    // AudioSpecificConfig 0x12 0x10: AAC-LC, 44.1 kHz, stereo.
    let tracks = Tracks::of(&header("V_MPEG4/ISO/AVC", AVCC)).expect("tracks");
    let audio = tracks.audio.clone().expect("the A_AAC track");
    assert_eq!(
        (
            audio.number,
            audio.object_type,
            audio.sample_rate,
            audio.channels
        ),
        (2, 2, 44_100, 2)
    );
    assert_eq!(tracks.codecs(), "avc1.4d401e,mp4a.40.2");
    assert_eq!(tracks.clone().video_only().codecs(), "avc1.4d401e");

    let init = init_segment(&tracks, None).expect("init segment");
    let moov = find(&init, &["moov"]);
    let kinds: Vec<String> = walk(moov).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["mvhd", "trak", "trak", "mvex"]);
    let trak = all(moov, "trak")[1];
    assert_eq!(be32(find(trak, &["tkhd"]), 12), AUDIO_TRACK_ID);
    assert_eq!(be32(find(trak, &["mdia", "mdhd"]), 12), 44_100);
    assert_eq!(&find(trak, &["mdia", "hdlr"])[8..12], b"soun");
    find(trak, &["mdia", "minf", "smhd"]);
    let mp4a = find(trak, &["mdia", "minf", "stbl", "stsd", "mp4a"]);
    assert_eq!(u16::from_be_bytes([mp4a[16], mp4a[17]]), 2, "channels");
    assert_eq!(be32(mp4a, 24) >> 16, 44_100);
    let esds = find(trak, &["mdia", "minf", "stbl", "stsd", "mp4a", "esds"]);
    // ES_Descriptor > DecoderConfigDescriptor (MPEG-4 audio) >
    // DecoderSpecificInfo holding the config as it came.
    assert_eq!(esds[4], 0x03);
    let decoder = &esds[6 + 3..];
    assert_eq!((decoder[0], decoder[2], decoder[3]), (0x04, 0x40, 0x15));
    let specific = &decoder[2 + 13..];
    assert_eq!(&specific[..4], &[0x05, 2, 0x12, 0x10]);
    assert_eq!(&specific[4..], &[0x06, 1, 0x02], "SLConfigDescriptor");
    let trex = all(find(&init, &["moov", "mvex"]), "trex");
    let ids: Vec<u32> = trex.iter().map(|t| be32(t, 4)).collect();
    assert_eq!(ids, [VIDEO_TRACK_ID, AUDIO_TRACK_ID]);
}

#[test]
fn laced_blocks_give_each_frame_in_every_lacing() {
    let (a, b, c) = (vec![1u8; 3], vec![2u8; 300], vec![3u8; 2]);
    let frames = [a.as_slice(), b.as_slice(), c.as_slice()];
    let joined = [a.clone(), b.clone(), c.clone()].concat();
    // Xiph: 300 is 255 + 45.
    let xiph = [vec![2, 3, 255, 45], joined.clone()].concat();
    assert_eq!(unlace(&xiph, 1).unwrap(), frames);
    // EBML: 3, then 300 - 3 as a two-byte signed size (297 + 8191).
    let ebml = [vec![2, 0x83, 0x61, 0x28], joined.clone()].concat();
    assert_eq!(unlace(&ebml, 3).unwrap(), frames);
    let fixed = [vec![2], vec![7; 6]].concat();
    assert_eq!(unlace(&fixed, 2).unwrap(), [&[7, 7][..]; 3]);
    // Sizes past the data, a fixed size that does not divide, truncation.
    assert_eq!(unlace(&[2, 3, 255, 45, 1, 1], 1), None);
    assert_eq!(unlace(&[1, 7, 7, 7], 2), None);
    for cut in 0..4 {
        assert_eq!(unlace(&ebml[..cut], 3), None, "{cut}");
    }
    // Any bytes: frames that cover the data exactly, or none; never a panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes: Vec<u8> = state.to_le_bytes()[..(state % 9) as usize].to_vec();
        for lacing in 0..4 {
            if let Some(frames) = unlace(&bytes, lacing) {
                let total: usize = frames.iter().map(|f| f.len()).sum();
                assert!(total < bytes.len(), "{bytes:?} {lacing}");
                assert_eq!(frames.len(), usize::from(bytes[0]) + 1);
            }
        }
    }
}

#[test]
fn audio_frames_are_whole_aac_frames_after_the_video_in_mdat() {
    // Each frame's data follows its block's flags byte; 0x02 is Xiph
    // lacing, 0x04 fixed-size.
    let body: Vec<u8> = vec![
        0x80, 0xa0, 0xa1, 0xa2, // video keyframe
        0x80, 0xb0, 0xb1, // audio
        0x82, 0x01, 0x01, 0xc0, 0xc1, 0xc2, // audio, two Xiph-laced frames
        0x84, 0x01, 0xe0, 0xe1, 0xe2, // audio, sizes that do not fit: left out
        0x80, 0xd0, // audio
    ];
    let frames = [
        frame(1, 0, true, 1, 3),
        frame(2, 5, true, 5, 2),
        frame(2, 28, true, 8, 5),
        frame(2, 74, true, 14, 4),
        frame(2, 97, true, 19, 1),
    ];
    let audio = audio_samples(&body, &frames, 2);
    assert_eq!(audio.first_ms, 5);
    let data: Vec<&[u8]> = audio.samples.iter().map(|s| s.data).collect();
    assert_eq!(
        data,
        [
            &[0xb0, 0xb1][..],
            &[0xc0][..],
            &[0xc1, 0xc2][..],
            &[0xd0][..]
        ]
    );
    assert!(
        audio
            .samples
            .iter()
            .all(|s| s.duration == SAMPLES_PER_FRAME && s.keyframe)
    );

    let video = samples(&body, &frames, 1, None).expect("samples");
    let segment = media_segment(
        3,
        &[
            Run {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: 0,
                samples: &video.samples,
            },
            Run {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: 220,
                samples: &audio.samples,
            },
        ],
    )
    .expect("segment");
    let moof = find(&segment, &["moof"]);
    let trafs = all(moof, "traf");
    assert_eq!(trafs.len(), 2);
    let audio_traf = trafs[1];
    assert_eq!(be32(find(audio_traf, &["tfhd"]), 4), AUDIO_TRACK_ID);
    assert_eq!(be64(find(audio_traf, &["tfdt"]), 4), 220);
    let video_offset = be32(find(trafs[0], &["trun"]), 8) as usize;
    let audio_offset = be32(find(audio_traf, &["trun"]), 8) as usize;
    assert_eq!(
        &segment[video_offset..video_offset + 3],
        &[0xa0, 0xa1, 0xa2]
    );
    assert_eq!(
        &segment[audio_offset..audio_offset + 6],
        &[0xb0, 0xb1, 0xc0, 0xc1, 0xc2, 0xd0]
    );
    assert_eq!(
        find(&segment, &["mdat"]),
        &[0xa0, 0xa1, 0xa2, 0xb0, 0xb1, 0xc0, 0xc1, 0xc2, 0xd0]
    );
}
