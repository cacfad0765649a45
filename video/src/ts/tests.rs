use proptest::prelude::*;

use super::packet::{PACKET_LEN, SYNC_BYTE};
use super::pes::read_timestamp;
use super::*;

const SPS: &[u8] = &[0x67, 0x4d, 0x40, 0x1e, 0xaa];
const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];

fn avcc(length_size_minus_one: u8) -> Vec<u8> {
    let mut c = vec![1, 0x4d, 0x40, 0x1e, 0xfc | length_size_minus_one, 0xe1];
    c.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    c.extend_from_slice(SPS);
    c.push(1);
    c.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    c.extend_from_slice(PPS);
    c
}

fn track(codec: Codec, config: Vec<u8>) -> VideoTrack {
    VideoTrack {
        number: 1,
        codec,
        config,
        width: 640,
        height: 360,
    }
}

fn h264() -> VideoTrack {
    track(Codec::H264, avcc(3))
}

/// Length-prefixed (4 bytes) NAL units.
fn frame(units: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in units {
        out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out
}

fn sample(data: &[u8], duration: u32, offset: i32, keyframe: bool) -> Sample<'_> {
    Sample {
        data,
        duration,
        composition_offset: offset,
        keyframe,
    }
}

/// A parsed packet: PID, payload_unit_start, continuity counter, the
/// adaptation field (without its length byte) and the payload.
struct Packet<'a> {
    pid: u16,
    start: bool,
    counter: u8,
    field: Option<&'a [u8]>,
    payload: &'a [u8],
}

fn packets(ts: &[u8]) -> Vec<Packet<'_>> {
    assert_eq!(ts.len() % PACKET_LEN, 0, "{} bytes", ts.len());
    ts.chunks(PACKET_LEN)
        .map(|p| {
            assert_eq!(p[0], SYNC_BYTE);
            let control = (p[3] >> 4) & 0x03;
            assert!(control == 1 || control == 3, "control {control}");
            let (field, payload) = if control == 3 {
                let len = usize::from(p[4]);
                (Some(&p[5..5 + len]), &p[5 + len..])
            } else {
                (None, &p[4..])
            };
            Packet {
                pid: u16::from_be_bytes([p[1], p[2]]) & 0x1fff,
                start: p[1] & 0x40 != 0,
                counter: p[3] & 0x0f,
                field,
                payload,
            }
        })
        .collect()
}

/// The payload units (PES packets, PSI) of `pid`, each with the
/// adaptation field of its first packet.
fn units<'a>(packets: &[Packet<'a>], pid: u16) -> Vec<(Option<&'a [u8]>, Vec<u8>)> {
    let mut out: Vec<(Option<&[u8]>, Vec<u8>)> = Vec::new();
    for p in packets.iter().filter(|p| p.pid == pid) {
        if p.start {
            out.push((p.field, Vec::new()));
        }
        out.last_mut()
            .expect("a unit starts first")
            .1
            .extend_from_slice(p.payload);
    }
    out
}

/// A PSI section from its payload unit: after the pointer field, up to
/// its section_length.
fn section(unit: &[u8]) -> &[u8] {
    let start = 1 + usize::from(unit[0]);
    let len = usize::from(u16::from_be_bytes([unit[start + 1], unit[start + 2]]) & 0x0fff);
    &unit[start..start + 3 + len]
}

/// PTS and DTS of a PES packet.
fn times(pes: &[u8]) -> (u64, Option<u64>) {
    assert_eq!(&pes[..4], &[0, 0, 1, 0xe0]);
    let pts = read_timestamp(&pes[9..14]);
    match pes[7] >> 6 {
        0b10 => (pts, None),
        0b11 => (pts, Some(read_timestamp(&pes[14..19]))),
        flags => panic!("PTS_DTS_flags {flags:02b}"),
    }
}

fn payload_of(pes: &[u8]) -> &[u8] {
    &pes[9 + usize::from(pes[8])..]
}

#[test]
fn crc32_is_the_mpeg2_crc() {
    // The CRC catalogue's check value for CRC-32/MPEG-2.
    assert_eq!(crc32(b"123456789"), 0x0376_e6e7);
    assert_eq!(crc32(b""), 0xffff_ffff);
}

#[test]
fn a_segment_is_188_byte_packets_opening_with_pat_and_pmt() {
    let key = frame(&[&[0x65, 1, 2, 3]]);
    let ts = media_segment(&h264(), 0, &[sample(&key, 3000, 0, true)], None).unwrap();
    let all = packets(&ts);
    assert_eq!((all[0].pid, all[1].pid), (0, PMT_PID));
    assert!(all[0].start && all[1].start);

    let pat = units(&all, 0);
    let pat = section(&pat[0].1);
    assert_eq!(pat[0], 0x00, "table_id");
    assert_eq!(crc32(pat), 0, "a section's CRC makes its CRC 0");
    // Program 1 at the PMT PID.
    assert_eq!(
        &pat[8..12],
        &[0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]
    );

    let pmt = units(&all, PMT_PID);
    let pmt = section(&pmt[0].1);
    assert_eq!(pmt[0], 0x02, "table_id");
    assert_eq!(crc32(pmt), 0);
    let pcr_pid = u16::from_be_bytes([pmt[8], pmt[9]]) & 0x1fff;
    assert_eq!(pcr_pid, VIDEO_PID);
    // The one stream: H.264 at the video PID.
    assert_eq!(pmt[12], 0x1b);
    assert_eq!(u16::from_be_bytes([pmt[13], pmt[14]]) & 0x1fff, VIDEO_PID);

    let h265 = track(Codec::H265, hvcc());
    let ts = media_segment(&h265, 0, &[sample(&key, 3000, 0, true)], None).unwrap();
    let pmt = units(&packets(&ts), PMT_PID);
    assert_eq!(section(&pmt[0].1)[12], 0x24);
}

#[test]
fn continuity_counters_count_each_pid_from_a_marked_start() {
    let big = frame(&[&[0x41; 3000]]);
    let samples: Vec<_> = (0..8).map(|i| sample(&big, 3000, 0, i == 0)).collect();
    let ts = media_segment(&h264(), 0, &samples, None).unwrap();
    let packets = packets(&ts);
    for pid in [0, PMT_PID, VIDEO_PID] {
        let of_pid: Vec<_> = packets.iter().filter(|p| p.pid == pid).collect();
        for (i, p) in of_pid.iter().enumerate() {
            assert_eq!(usize::from(p.counter), i % 16, "pid {pid:#x} packet {i}");
        }
        // The first packet says its counter does not follow anything.
        let first = of_pid[0].field.expect("an adaptation field");
        assert_ne!(
            first[0] & 0x80,
            0,
            "discontinuity_indicator of pid {pid:#x}"
        );
        assert!(
            of_pid[1..]
                .iter()
                .all(|p| p.field.is_none_or(|f| f.is_empty() || f[0] & 0x80 == 0))
        );
    }
    assert!(packets.iter().filter(|p| p.pid == VIDEO_PID).count() > 16);
}

#[test]
fn each_frame_is_a_pes_packet_with_its_times_and_a_pcr() {
    let key = frame(&[&[0x65, 9, 9]]);
    let delta = frame(&[&[0x41, 7]]);
    // Producer epoch ms as ticks, odd so that the PCR's last bit counts.
    let base = 1_700_000_000_001 * 90 + 63_001;
    let samples = [
        sample(&key, 3000, 0, true),
        sample(&delta, 3000, 0, false),
        sample(&delta, 3003, 0, false),
    ];
    let ts = media_segment(&h264(), base, &samples, None).unwrap();
    let packets = packets(&ts);
    let pes = units(&packets, VIDEO_PID);
    assert_eq!(pes.len(), 3);
    let wrapped = base % (1 << 33);
    let expected = [wrapped, wrapped + 3000, wrapped + 6000];
    for ((field, pes), want) in pes.iter().zip(expected) {
        assert_eq!(times(pes), (want, None), "no DTS when it equals the PTS");
        let field = field.expect("a PCR");
        assert_ne!(field[0] & 0x10, 0, "PCR_flag");
        // 33 bits of base after the flags byte, then reserved bits.
        let pcr =
            u64::from_be_bytes([0, 0, 0, field[1], field[2], field[3], field[4], field[5]]) >> 7;
        assert_eq!(pcr, (want - PCR_LEAD) % (1 << 33));
    }
    // Random access marks the keyframe only.
    assert_ne!(pes[0].0.unwrap()[0] & 0x40, 0);
    assert_eq!(pes[1].0.unwrap()[0] & 0x40, 0);
}

#[test]
fn reordered_frames_get_a_dts_before_their_pts() {
    let f = frame(&[&[0x41, 1]]);
    // Offsets 0, +3000, -3000: decoding starts 3000 ticks early, so that
    // no PTS precedes its DTS.
    let samples = [
        sample(&f, 3000, 0, true),
        sample(&f, 3000, 3000, false),
        sample(&f, 3000, -3000, false),
    ];
    let ts = media_segment(&h264(), 90_000, &samples, None).unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    let got: Vec<_> = pes.iter().map(|(_, p)| times(p)).collect();
    assert_eq!(
        got,
        [
            (90_000, Some(87_000)),
            (96_000, Some(90_000)),
            (93_000, None),
        ]
    );
}

#[test]
fn timestamps_wrap_at_33_bits() {
    let f = frame(&[&[0x65, 1]]);
    let base = (1 << 33) - 1000;
    let samples = [sample(&f, 3000, 0, true), sample(&f, 3000, 0, false)];
    let ts = media_segment(&h264(), base, &samples, None).unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    assert_eq!(times(&pes[0].1).0, (1 << 33) - 1000);
    assert_eq!(times(&pes[1].1).0, 2000);
}

#[test]
fn frames_become_annex_b_with_delimiters_and_parameter_sets_on_keyframes() {
    let sei: &[u8] = &[0x06, 5, 5];
    let key = frame(&[sei, &[0x65, 1, 2]]);
    let delta = frame(&[&[0x41, 3]]);
    let samples = [sample(&key, 3000, 0, true), sample(&delta, 3000, 0, false)];
    let ts = media_segment(&h264(), 0, &samples, None).unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    let mut want = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
    want.extend_from_slice(SPS);
    want.extend_from_slice(&[0, 0, 0, 1]);
    want.extend_from_slice(PPS);
    want.extend_from_slice(&[0, 0, 0, 1, 0x06, 5, 5, 0, 0, 0, 1, 0x65, 1, 2]);
    assert_eq!(payload_of(&pes[0].1), want.as_slice());
    assert_eq!(
        payload_of(&pes[1].1),
        &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 3]
    );
    // A frame's own delimiter and parameter sets are not doubled.
    let own = frame(&[&[0x09, 0x10], SPS, PPS, &[0x65, 4]]);
    let ts = media_segment(&h264(), 0, &[sample(&own, 3000, 0, true)], None).unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    let mut want = vec![0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1];
    want.extend_from_slice(SPS);
    want.extend_from_slice(&[0, 0, 0, 1]);
    want.extend_from_slice(PPS);
    want.extend_from_slice(&[0, 0, 0, 1, 0x65, 4]);
    assert_eq!(payload_of(&pes[0].1), want.as_slice());
}

#[test]
fn the_length_size_comes_from_the_record() {
    let two = track(Codec::H264, avcc(1));
    let data = [0, 2, 0x65, 7, 0, 1, 0x06];
    let ts = media_segment(&two, 0, &[sample(&data, 3000, 0, false)], None).unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    assert_eq!(
        payload_of(&pes[0].1),
        &[
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 7, 0, 0, 0, 1, 0x06
        ]
    );
}

fn hvcc() -> Vec<u8> {
    let mut c = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d];
    c.extend_from_slice(&[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f]);
    c.push(3);
    for (kind, nal) in [
        (32u8, &[0x40, 0x01, 0xaa][..]),
        (33, &[0x42, 0x01, 0xbb]),
        (34, &[0x44, 0x01, 0xcc]),
    ] {
        c.push(0x80 | kind);
        c.extend_from_slice(&1u16.to_be_bytes());
        c.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        c.extend_from_slice(nal);
    }
    c
}

#[test]
fn h265_keyframes_get_vps_sps_and_pps() {
    let key = frame(&[&[0x26, 0x01, 0xaf]]);
    let ts = media_segment(
        &track(Codec::H265, hvcc()),
        0,
        &[sample(&key, 3000, 0, true)],
        None,
    )
    .unwrap();
    let pes = units(&packets(&ts), VIDEO_PID);
    assert_eq!(
        payload_of(&pes[0].1),
        &[
            0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x40, 0x01, 0xaa, 0, 0, 0, 1, 0x42, 0x01,
            0xbb, 0, 0, 0, 1, 0x44, 0x01, 0xcc, 0, 0, 0, 1, 0x26, 0x01, 0xaf
        ][..]
    );
}

#[test]
fn payloads_are_split_and_stuffed_to_whole_packets() {
    // Lengths around one packet's room, so the last packet is stuffed by
    // 0, 1, 2 and many bytes.
    for len in [
        1, 140, 150, 151, 152, 153, 160, 184, 300, 333, 334, 335, 5000,
    ] {
        let nal = vec![0x41; len];
        let f = frame(&[&nal]);
        let ts = media_segment(&h264(), 0, &[sample(&f, 3000, 0, false)], None).unwrap();
        let pes = units(&packets(&ts), VIDEO_PID);
        assert_eq!(pes.len(), 1);
        let payload = payload_of(&pes[0].1);
        assert_eq!(&payload[10..], nal.as_slice(), "NAL of {len} bytes");
        let stated = usize::from(u16::from_be_bytes([pes[0].1[4], pes[0].1[5]]));
        assert_eq!(stated, pes[0].1.len() - 6);
    }
}

#[test]
fn bad_codec_private_data_is_an_error() {
    let mut no_pps = avcc(3);
    let at = no_pps.len() - PPS.len() - 3;
    no_pps.truncate(at);
    no_pps.push(0);
    let mut wrong_version = avcc(3);
    wrong_version[0] = 0;
    let mut sps_past_end = avcc(3);
    sps_past_end[7] = 200;
    let key = frame(&[&[0x65]]);
    for config in [
        vec![1, 2, 3],
        no_pps,
        wrong_version,
        sps_past_end,
        avcc(3)[..9].to_vec(),
    ] {
        assert_eq!(
            media_segment(
                &track(Codec::H264, config),
                0,
                &[sample(&key, 1, 0, true)],
                None
            ),
            Err(TsError::InvalidCodecPrivate(
                "AVCDecoderConfigurationRecord"
            ))
        );
    }
    let mut short = hvcc();
    short.truncate(30);
    assert_eq!(
        media_segment(
            &track(Codec::H265, short),
            0,
            &[sample(&key, 1, 0, true)],
            None
        ),
        Err(TsError::InvalidCodecPrivate(
            "HEVCDecoderConfigurationRecord"
        ))
    );
}

#[test]
fn a_nal_length_past_the_frame_is_an_error() {
    let mut f = frame(&[&[0x65, 1, 2, 3]]);
    f[3] = 5;
    assert_eq!(
        media_segment(&h264(), 0, &[sample(&f, 1, 0, true)], None),
        Err(TsError::NalOutOfRange)
    );
    // A length prefix cut short.
    assert_eq!(
        media_segment(&h264(), 0, &[sample(&[0, 0, 1], 1, 0, true)], None),
        Err(TsError::NalOutOfRange)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_give_packets_or_an_error_never_a_panic(
        config in proptest::collection::vec(any::<u8>(), 0..64),
        data in proptest::collection::vec(any::<u8>(), 0..600),
        h265 in any::<bool>(),
        keyframe in any::<bool>(),
    ) {
        let codec = if h265 { Codec::H265 } else { Codec::H264 };
        let frames = [sample(&data, 3000, 0, keyframe)];
        for config in [config.clone(), if h265 { hvcc() } else { avcc(3) }] {
            if let Ok(ts) = media_segment(&track(codec, config), 0, &frames, None) {
                packets(&ts);
            }
        }
    }
}

fn aac_stereo_48k() -> AudioTrack {
    AudioTrack {
        number: 2,
        // AAC-LC, 48 kHz, stereo.
        config: vec![0x11, 0x90],
        object_type: 2,
        sample_rate: 48_000,
        channels: 2,
        channel_configuration: 2,
    }
}

#[test]
fn adts_headers_state_the_profile_rate_channels_and_length() {
    let mut track = aac_stereo_48k();
    track.sample_rate = 44_100;
    let adts = track.adts().expect("AAC-LC fits ADTS");
    // What ffmpeg's ADTS muxer writes for a 100-byte AAC-LC 44.1 kHz
    // stereo frame.
    assert_eq!(
        adts.header(100),
        Some([0xff, 0xf1, 0x50, 0x80, 0x0d, 0x7f, 0xfc])
    );
    assert_eq!(adts.header(crate::mp4::Adts::MAX_FRAME_LEN), None);
    // HE-AAC, explicit rates and channels from a program config element
    // have no ADTS form.
    for broken in [
        AudioTrack {
            object_type: 5,
            ..aac_stereo_48k()
        },
        AudioTrack {
            sample_rate: 47_000,
            ..aac_stereo_48k()
        },
        AudioTrack {
            channel_configuration: 0,
            ..aac_stereo_48k()
        },
    ] {
        assert!(!carries_audio(&broken), "{broken:?}");
    }
}

#[test]
fn aac_frames_are_adts_pes_packets_on_their_own_pid_interleaved_by_time() {
    let key = frame(&[&[0x65, 9, 9]]);
    let delta = frame(&[&[0x41, 7]]);
    // 30 fps video from producer time 1 700 000 000 000 ms.
    let base = 1_700_000_000_000 * 90;
    let video = [
        sample(&key, 3000, 0, true),
        sample(&delta, 3000, 0, false),
        sample(&delta, 3000, 0, false),
    ];
    let aac: [&[u8]; 4] = [&[0x21, 1], &[0x21, 2], &[0x21, 3], &[0x21, 4]];
    let audio: Vec<Sample<'_>> = aac
        .iter()
        .map(|data| sample(data, SAMPLES_PER_FRAME, 0, true))
        .collect();
    let track = aac_stereo_48k();
    let run = AudioRun {
        track: &track,
        // The same producer time in 48 kHz ticks.
        start: 1_700_000_000_000 * 48,
        samples: &audio,
    };
    let ts = media_segment(&h264(), base, &video, Some(run)).unwrap();
    let packets = packets(&ts);

    let pmt = units(&packets, PMT_PID);
    let pmt = section(&pmt[0].1);
    // PCR PID, then (stream_type, PID) per stream.
    assert_eq!(u16::from_be_bytes([pmt[8], pmt[9]]) & 0x1fff, VIDEO_PID);
    assert_eq!(
        (pmt[12], u16::from_be_bytes([pmt[13], pmt[14]]) & 0x1fff),
        (0x1b, VIDEO_PID)
    );
    assert_eq!(
        (pmt[17], u16::from_be_bytes([pmt[18], pmt[19]]) & 0x1fff),
        (0x0f, AUDIO_PID)
    );

    let frames = units(&packets, AUDIO_PID);
    assert_eq!(frames.len(), 4);
    for (i, (field, pes)) in frames.iter().enumerate() {
        assert!(field.is_none_or(|f| f[0] & 0x10 == 0), "no PCR on audio");
        assert_eq!(&pes[..4], &[0, 0, 1, 0xc0]);
        let length = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
        assert_eq!(
            length,
            pes.len() - 6,
            "audio PES packets state their length"
        );
        let pts = read_timestamp(&pes[9..14]);
        // 1024 samples at 48 kHz are 1920 ticks of 90 kHz.
        assert_eq!(pts, (base + i as u64 * 1920) % (1 << 33));
        let body = payload_of(pes);
        assert_eq!(&body[..2], &[0xff, 0xf1]);
        assert_eq!(&body[7..], aac[i]);
    }

    // In the order of their times: audio at 0, 1920, 3840, 5760 ticks;
    // video at 0, 3000, 6000.
    let order: Vec<u16> = packets
        .iter()
        .filter(|p| p.start && (p.pid == VIDEO_PID || p.pid == AUDIO_PID))
        .map(|p| p.pid)
        .collect();
    let (v, a) = (VIDEO_PID, AUDIO_PID);
    assert_eq!(order, [a, v, a, v, a, a, v]);
}

#[test]
fn audio_that_adts_cannot_carry_is_left_out_and_the_pmt_lists_the_video_only() {
    let key = frame(&[&[0x65, 9, 9]]);
    let video = [sample(&key, 3000, 0, true)];
    let aac: &[u8] = &[0x21, 1];
    let audio = [sample(aac, SAMPLES_PER_FRAME, 0, true)];
    let he_aac = AudioTrack {
        object_type: 5,
        ..aac_stereo_48k()
    };
    let run = AudioRun {
        track: &he_aac,
        start: 0,
        samples: &audio,
    };
    let with = media_segment(&h264(), 0, &video, Some(run)).unwrap();
    assert_eq!(with, media_segment(&h264(), 0, &video, None).unwrap());
}
